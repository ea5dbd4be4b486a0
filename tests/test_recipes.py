"""Rules as recipes: each numpy rule computes what its declaration says, and every list of
rule names comes from the one in :mod:`sarlearn.recipes`."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import DEFAULT_LR, RelevanceConfig
from sarlearn.engine.put import SUPPORTED_RULES
from sarlearn.recipes import RECIPES, RULE_NAMES, Carrier, SignAt
from sarlearn.stages.network.network import Network
from sarlearn.stages.rules import RULES, make_rule


def _is_sign(a: np.ndarray) -> bool:
    return bool(np.all(np.isin(a, (-1.0, 0.0, 1.0))))


def test_one_list_of_rule_names() -> None:
    assert tuple(RULES) == RULE_NAMES == tuple(RECIPES) == SUPPORTED_RULES
    assert {n: r.default_lr for n, r in RECIPES.items()} == DEFAULT_LR


@pytest.mark.parametrize("name", RULE_NAMES)
def test_numpy_rule_computes_what_its_recipe_declares(name: str) -> None:
    recipe = RECIPES[name]
    rng = np.random.default_rng(0)
    net = Network(6, [5, 4, 3], population=2, zero_output=False, rng=rng)
    rule = make_rule(name, lr=1e-3, relevance=RelevanceConfig(), rng=np.random.default_rng(1))
    rule.bind(net)
    assert rule.name == name and rule.uses_relevance == recipe.relevance
    net.forward(rng.normal(size=(2, 6)))
    e = np.array([1.0, -1.0])  # |e| = 1: the default relevance phi(|e|) = |e| is then 1
    d = rule.teaching_signals(net, e)
    s_out, f_out, f_hid = d[-1], net.slopes[-1], net.slopes[-2]
    e2 = e[:, None]

    # where the sign is taken
    if recipe.carrier is Carrier.NONE:
        for layer, f in zip(d, net.slopes, strict=True):  # sign(e) r f'(h) everywhere
            np.testing.assert_allclose(layer, np.sign(e2) * f)
        return
    if recipe.sign_at is SignAt.NONE:
        np.testing.assert_allclose(s_out, e2 * f_out)
    else:
        np.testing.assert_array_equal(s_out, np.sign(e2 * f_out))
    assert all(_is_sign(x) for x in d) == (recipe.sign_at in (SignAt.PATH, SignAt.LOCAL))

    # what carries the signal back to the last hidden layer
    w = net.weights[-1]  # (P, n_out, n_hidden)
    carried = {
        Carrier.WEIGHTS: np.einsum("po,poi->pi", s_out, w),
        Carrier.WEIGHT_SIGNS: np.einsum("po,poi->pi", s_out, np.sign(w)),
    }
    if recipe.carrier is Carrier.FEEDBACK:
        carried[Carrier.FEEDBACK] = np.einsum("pio,po->pi", rule.feedback[-1], s_out)
    if recipe.carrier is Carrier.DIRECT_FEEDBACK:
        ones = np.ones_like(s_out)  # the scalar error reaches every output
        carried[Carrier.DIRECT_FEEDBACK] = np.einsum("pio,po->pi", rule.feedback[-1], e2 * ones)
    back = carried[recipe.carrier] * f_hid
    if recipe.sign_at is SignAt.PATH:
        np.testing.assert_array_equal(d[-2], np.sign(back))
    elif recipe.sign_at is SignAt.LOCAL:  # the exact error travelled, then its sign
        exact = np.einsum("po,poi->pi", e2 * f_out, w) * f_hid
        np.testing.assert_array_equal(d[-2], np.sign(exact))
    else:
        np.testing.assert_allclose(d[-2], back, rtol=1e-12, atol=1e-15)
