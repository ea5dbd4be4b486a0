"""Property tests of the sign / relevance semantics of the SaR family (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sarlearn.config import RelevanceConfig
from sarlearn.stages.network.network import Network
from sarlearn.stages.rules import make_rule
from sarlearn.stages.rules.relevance import Relevance

LR = 0.01
P = 3

errors = st.lists(
    st.floats(-50, 50, allow_nan=False).filter(lambda v: v == 0 or abs(v) > 1e-6),
    min_size=P,
    max_size=P,
).map(np.array)
seeds = st.integers(0, 2**16)
depths = st.integers(1, 4)
activations = st.sampled_from(["logistic", "tanh", "linear"])


def forward_net(seed: int, depth: int, activation: str = "logistic") -> Network:
    layers = [4] * (depth - 1) + [2]
    net = Network(5, layers, population=P, activation=activation, zero_output=False, rng=seed)
    net.forward(np.random.default_rng(seed + 1).uniform(-1, 1, (P, 5)))
    return net


@settings(max_examples=40, deadline=None)
@given(seed=seeds, depth=depths, e=errors, c=st.floats(0.01, 100))
def test_scaling_the_error_scales_sar_and_leaves_sign_only(seed, depth, e, c) -> None:
    net = forward_net(seed, depth)
    sar = make_rule("sar", lr=LR).updates(net, e)
    sar_c = make_rule("sar", lr=LR).updates(net, c * e)
    sign = make_rule("sign-only", lr=LR).updates(net, e)
    sign_c = make_rule("sign-only", lr=LR).updates(net, c * e)
    for a, b, s, s_c in zip(sar, sar_c, sign, sign_c, strict=True):
        np.testing.assert_allclose(b, c * a, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(s, s_c)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, depth=depths, e=errors, activation=activations)
def test_sign_only_magnitude_is_lr_times_input(seed, depth, e, activation) -> None:
    net = forward_net(seed, depth, activation)
    updates = make_rule("sign-only", lr=LR).updates(net, e)
    for dw, x in zip(updates, net.layer_inputs, strict=True):
        mag = np.abs(dw)
        full = LR * np.abs(x)[:, None, :] * np.ones_like(dw)
        # every synapse either changes by exactly lr |x_j| or not at all, whatever |e|
        assert np.all(np.isclose(mag, full, rtol=1e-14, atol=0) | (mag == 0))


@settings(max_examples=40, deadline=None)
@given(seed=seeds, depth=depths, e=errors, activation=activations)
def test_sar_synapses_change_by_lr_abs_error_x_or_not_at_all(seed, depth, e, activation) -> None:
    net = forward_net(seed, depth, activation)
    updates = make_rule("sar", lr=LR).updates(net, e)
    for dw, x in zip(updates, net.layer_inputs, strict=True):
        full = LR * np.abs(e)[:, None, None] * np.abs(x)[:, None, :] * np.ones_like(dw)
        mag = np.abs(dw)
        assert np.all(np.isclose(mag, full, rtol=1e-14, atol=0) | (mag == 0))


@settings(max_examples=40, deadline=None)
@given(
    seed=seeds,
    depth=depths,
    e=errors,
    name=st.sampled_from(["sar", "sar-local", "sar-exact", "sign-only", "relevance-only"]),
    mode=st.sampled_from(["global", "forward"]),
)
def test_the_sar_family_flips_with_the_error(seed, depth, e, name, mode) -> None:
    net = forward_net(seed, depth)
    rel = RelevanceConfig(mode=mode)
    plus = make_rule(name, lr=LR, relevance=rel).updates(net, e)
    minus = make_rule(name, lr=LR, relevance=rel).updates(net, -e)
    for p, m in zip(plus, minus, strict=True):
        np.testing.assert_array_equal(p, -m)


@settings(max_examples=60, deadline=None)
@given(
    history=st.lists(st.lists(st.floats(0, 1e6), min_size=P, max_size=P), min_size=1, max_size=30),
    gain=st.floats(0, 10),
    lowpass=st.floats(0, 0.99),
    normalise=st.booleans(),
    decay=st.floats(0, 0.999),
)
def test_relevance_is_never_negative(history, gain, lowpass, normalise, decay) -> None:
    rel = Relevance(
        RelevanceConfig(gain=gain, lowpass=lowpass, normalise=normalise, norm_decay=decay)
    )
    rel.bind(P)
    for abs_e in history:
        r = rel(np.array(abs_e))
        assert r.shape == (P,)
        assert np.all(np.isfinite(r)) and np.all(r >= 0)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, depth=depths, e=errors)
def test_forward_relevance_is_never_negative(seed, depth, e) -> None:
    net = forward_net(seed, depth)
    for r_l in Relevance.forward(net, np.abs(e)):
        assert np.all(r_l >= 0)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, depth=depths, e=errors)
def test_sar_relevance_does_not_change_the_sign_of_any_update(seed, depth, e) -> None:
    net = forward_net(seed, depth)
    sar = make_rule("sar", lr=LR).updates(net, e)
    sign = make_rule("sign-only", lr=LR).updates(net, e)
    for a, s in zip(sar, sign, strict=True):
        np.testing.assert_array_equal(np.sign(a), np.sign(s) * np.sign(np.abs(e))[:, None, None])
