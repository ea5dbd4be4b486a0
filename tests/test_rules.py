"""Learning rules against their textbook definitions, written out agent by agent in plain numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sarlearn.config import ConfigError, RelevanceConfig, RuleConfig
from sarlearn.errors import DivergenceError, NonFiniteError, ShapeError
from sarlearn.stages.network.network import Network
from sarlearn.stages.rules import (
    RULE_NAMES,
    fan_in_lr_scale,
    load_learner,
    make_rule,
    make_rule_from_config,
    save_learner,
)
from sarlearn.stages.rules.relevance import Relevance

LR = 0.1


def make_net(layers=(5, 4, 3), n_inputs=6, population=3, seed=0, **kw) -> Network:
    kw.setdefault("zero_output", False)
    return Network(n_inputs, list(layers), population=population, rng=seed, **kw)


def run_forward(net: Network, seed: int = 1) -> np.ndarray:
    x = np.random.default_rng(seed).uniform(-1, 1, (net.population, net.n_inputs))
    net.forward(x)
    return x


def outer_updates(net: Network, signals: list[np.ndarray], lr: float = LR) -> list[np.ndarray]:
    """dW_l = lr d_l x_{l-1}^T per agent."""
    pairs = zip(signals, net.layer_inputs, strict=True)
    return [lr * np.einsum("po,pi->poi", d, x) for d, x in pairs]


def backward(net: Network, top: np.ndarray, transmit, combine) -> list[np.ndarray]:
    """Reference backward recursion, agent by agent with 2-D arrays."""
    out = []
    for k in range(net.population):
        d = [top[k]]
        for i in range(net.n_layers - 2, -1, -1):
            d.insert(0, combine(i, k, transmit(i + 1, k, d[0])))
        out.append(d)
    return [np.stack([o[i] for o in out]) for i in range(net.n_layers)]


def wt(net: Network):
    return lambda i, k, d: net.weights[i][k].T @ d


def times_slope(net: Network):
    return lambda i, k, v: v * net.slopes[i][k]


def assert_updates(actual: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(actual) == len(expected)
    for a, b in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


# -- gdm is gradient descent -----------------------------------------------------------------------


def half_squared_error(net: Network, x: np.ndarray, target: np.ndarray) -> float:
    return 0.5 * float(np.sum((target - net.forward(x)) ** 2))


@pytest.mark.parametrize("layers", [(2,), (4, 2), (4, 3, 4, 2)], ids=["L1", "L2", "L4"])
@pytest.mark.parametrize("activation", ["logistic", "tanh", "linear"])
@pytest.mark.parametrize("bias", [False, True])
def test_gdm_is_minus_lr_times_the_gradient(layers, activation: str, bias: bool) -> None:
    net = make_net(layers, n_inputs=3, population=2, activation=activation, bias=bias,
                   init="scaled", init_gain=1.5)  # fmt: skip
    if net.biases is not None:
        for b in net.biases:
            b[...] = np.random.default_rng(5).normal(0, 0.5, b.shape)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, (2, 3))
    target = rng.uniform(-0.5, 0.5, (2, layers[-1]))
    error = target - net.forward(x)  # e = t - y, one per output neuron
    rule = make_rule("gdm", lr=LR)
    deltas = rule.updates(net, error)
    signals = rule.teaching_signals(net, error)

    eps = 1e-6
    params = [(net.weights, deltas)]
    if net.biases is not None:
        params.append((net.biases, [LR * d for d in signals]))
    for arrays, updates in params:
        for i, (w, dw) in enumerate(zip(arrays, updates, strict=True)):
            grad = np.zeros_like(w)
            for idx in np.ndindex(w.shape):
                old = w[idx]
                w[idx] = old + eps
                up = half_squared_error(net, x, target)
                w[idx] = old - eps
                down = half_squared_error(net, x, target)
                w[idx] = old
                grad[idx] = (up - down) / (2 * eps)
            np.testing.assert_allclose(dw, -LR * grad, rtol=1e-6, atol=1e-10, err_msg=f"layer {i}")


def test_gdm_scalar_error_is_injected_into_every_output() -> None:
    net = make_net()
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    a = make_rule("gdm", lr=LR).updates(net, e)
    b = make_rule("gdm", lr=LR).updates(net, np.repeat(e[:, None], 3, axis=1))
    assert_updates(a, b)


def test_step_applies_updates_in_place_with_bias() -> None:
    net = make_net(bias=True)
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    rule = make_rule("gdm", lr=LR)
    deltas = rule.updates(net, e)
    signals = rule.teaching_signals(net, e)
    before = [w.copy() for w in net.weights]
    rule.step(net, e)
    for w, w0, dw in zip(net.weights, before, deltas, strict=True):
        np.testing.assert_array_equal(w, w0 + dw)
    for b, d in zip(net.biases or [], signals, strict=True):
        np.testing.assert_allclose(b, LR * d, rtol=1e-14)


# -- sar and its ablations -------------------------------------------------------------------------


def sar_sign_path(net: Network, e: np.ndarray) -> list[np.ndarray]:
    top = np.sign(e[:, None] * net.slopes[-1])
    return backward(net, top, wt(net), lambda i, k, v: np.sign(v * net.slopes[i][k]))


def test_sar_is_lr_abs_error_sign_path_x() -> None:
    net = make_net()
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    s = sar_sign_path(net, e)
    expected = outer_updates(net, [np.abs(e)[:, None] * si for si in s])
    assert_updates(make_rule("sar", lr=LR).updates(net, e), expected)
    for si in s:  # pure signs
        assert set(np.unique(si)) <= {-1.0, 0.0, 1.0}


def test_sar_flips_with_the_error_and_is_zero_without_error() -> None:
    net = make_net()
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    plus = make_rule("sar", lr=LR).updates(net, e)
    minus = make_rule("sar", lr=LR).updates(net, -e)
    zero = make_rule("sar", lr=LR).updates(net, np.zeros(3))
    for p, m, z in zip(plus, minus, zero, strict=True):
        np.testing.assert_array_equal(p, -m)
        np.testing.assert_array_equal(z, 0.0)


@pytest.mark.parametrize("activation", ["logistic", "tanh", "linear"])
def test_sar_sign_path_is_sign_of_backprop_with_one_hidden_layer(activation: str) -> None:
    net = make_net((7, 1), n_inputs=5, population=4, activation=activation)
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0, -0.01])
    sar = make_rule("sar", lr=LR).teaching_signals(net, e)
    gdm = make_rule("gdm", lr=LR).teaching_signals(net, e)
    for s, d in zip(sar, gdm, strict=True):
        np.testing.assert_array_equal(np.sign(s), np.sign(d))
        assert np.all(np.sign(d) != 0)


def test_sar_local_keeps_the_sign_of_the_exact_error() -> None:
    net = make_net((5, 4, 4, 3))
    run_forward(net)
    e = np.array([[0.3, -0.2, 1.0], [-1.2, 0.5, 0.1], [2.0, 2.0, -3.0]])
    exact = backward(net, e * net.slopes[-1], wt(net), times_slope(net))
    r = np.abs(e).mean(axis=1)[:, None]  # relevance of a vector error: mean |e_k|
    expected = [r * np.sign(d) for d in exact]
    assert_updates(make_rule("sar-local", lr=LR).teaching_signals(net, e), expected)


def test_sar_exact_takes_the_sign_only_at_the_output() -> None:
    net = make_net((5, 4, 4, 3))
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    s = backward(net, np.sign(e[:, None] * net.slopes[-1]), wt(net), times_slope(net))
    expected = [np.abs(e)[:, None] * si for si in s]
    assert_updates(make_rule("sar-exact", lr=LR).teaching_signals(net, e), expected)


def test_sign_only_is_sar_with_unit_relevance() -> None:
    net = make_net()
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    expected = sar_sign_path(net, e)
    rule = make_rule("sign-only", lr=LR, relevance=RelevanceConfig(gain=7.0))
    assert_updates(rule.teaching_signals(net, e, relevance=np.full(3, 5.0)), expected)


@pytest.mark.parametrize("vector", [False, True])
def test_relevance_only_broadcasts_the_global_error(vector: bool) -> None:
    net = make_net()
    run_forward(net)
    e = np.array([[0.3, 0.1, -0.1], [-1.2, 0.0, 0.3], [2.0, 1.0, 3.0]]) if vector else None
    e = e if vector else np.array([0.3, -1.2, 2.0])
    ebar = e.mean(axis=1) if vector else e
    expected = [ebar[:, None] * f for f in net.slopes]  # d_l = e f'(h_l), every layer
    assert_updates(make_rule("relevance-only", lr=LR).teaching_signals(net, e), expected)


# -- peers -----------------------------------------------------------------------------------------


def test_fa_with_transposed_weights_is_gdm() -> None:
    net = make_net((5, 4, 4, 3))
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    fa = make_rule("fa", lr=LR, rng=0)
    fa.bind(net)
    assert [b.shape for b in fa.feedback] == [(3, 5, 4), (3, 4, 4), (3, 4, 3)]
    fa.feedback = [w.transpose(0, 2, 1).copy() for w in net.weights[1:]]
    assert_updates(fa.updates(net, e), make_rule("gdm", lr=LR).updates(net, e))


def test_fa_uses_its_fixed_random_matrices() -> None:
    net = make_net((5, 4, 3))
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    fa = make_rule("fa", lr=LR, rng=0)
    fa.bind(net)
    B = fa.feedback
    expected = backward(net, e[:, None] * net.slopes[-1],
                        lambda i, k, d: B[i - 1][k] @ d, times_slope(net))  # fmt: skip
    assert_updates(fa.teaching_signals(net, e), expected)
    first = [b.copy() for b in B]
    fa.step(net, e)
    run_forward(net)
    fa.step(net, e)
    for b0, b1 in zip(first, fa.feedback, strict=True):
        np.testing.assert_array_equal(b0, b1)  # fixed: drawn once at bind


def test_dfa_projects_the_error_to_every_hidden_layer() -> None:
    net = make_net((5, 4, 3))
    run_forward(net)
    e = np.array([[0.3, -0.2, 1.0], [-1.2, 0.5, 0.1], [2.0, 2.0, -3.0]])
    dfa = make_rule("dfa", lr=LR, rng=0)
    dfa.bind(net)
    assert [b.shape for b in dfa.feedback] == [(3, 5, 3), (3, 4, 3)]
    pairs = zip(dfa.feedback, net.slopes[:-1], strict=True)
    expected = [np.einsum("pno,po->pn", b, e) * f for b, f in pairs]
    expected.append(e * net.slopes[-1])
    assert_updates(dfa.teaching_signals(net, e), expected)


def test_sign_symmetry_uses_the_signs_of_the_forward_weights() -> None:
    net = make_net((5, 4, 4, 3))
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    expected = backward(net, e[:, None] * net.slopes[-1],
                        lambda i, k, d: np.sign(net.weights[i][k]).T @ d,
                        times_slope(net))  # fmt: skip
    assert_updates(make_rule("sign-symmetry", lr=LR).teaching_signals(net, e), expected)


# -- learning rates, relevance ---------------------------------------------------------------------


@pytest.mark.parametrize("name", RULE_NAMES)
def test_layer_lr_scale(name: str) -> None:
    net = make_net()
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    scale = [0.5, 0.0, 3.0]
    plain = make_rule(name, lr=LR, rng=0).updates(net, e)
    scaled = make_rule(name, lr=LR, layer_lr_scale=scale, rng=0).updates(net, e)
    assert_updates(scaled, [s * d for s, d in zip(scale, plain, strict=True)])


def test_fan_in_lr_scale() -> None:
    assert fan_in_lr_scale(720, [10, 10, 2]) == [1 / 720, 1 / 10, 1 / 10]


def test_forward_relevance_formula() -> None:
    net = make_net((5, 4, 3))
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    r = [np.abs(np.abs(e)[:, None] * net.slopes[0])]
    for i in (1, 2):
        r.append(np.abs(np.einsum("poi,pi->po", net.weights[i], r[-1]) * net.slopes[i]))
    s = sar_sign_path(net, e)
    rule = make_rule("sar", lr=LR, relevance=RelevanceConfig(mode="forward"))
    assert_updates(rule.teaching_signals(net, e), [ri * si for ri, si in zip(r, s, strict=True)])
    assert all(np.all(ri >= 0) for ri in r)


def test_external_relevance_replaces_phi_of_the_error() -> None:
    net = make_net()
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    external = np.array([0.0, 0.5, 10.0])
    s = sar_sign_path(net, e)
    rule = make_rule("sar", lr=LR, relevance=RelevanceConfig(gain=3.0, lowpass=0.5))
    assert_updates(rule.teaching_signals(net, e, relevance=external),
                   [external[:, None] * si for si in s])  # fmt: skip
    # rules without a relevance factor ignore it
    gdm = make_rule("gdm", lr=LR)
    assert_updates(gdm.updates(net, e, relevance=external), gdm.updates(net, e))


def test_external_relevance_is_checked() -> None:
    net = make_net()
    run_forward(net)
    rule = make_rule("sar", lr=LR)
    with pytest.raises(ShapeError, match=r"relevance: expected shape \(3,\)"):
        rule.step(net, np.ones(3), relevance=np.ones(2))
    with pytest.raises(NonFiniteError, match="relevance"):
        rule.step(net, np.ones(3), relevance=np.array([1.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match=">= 0"):
        rule.step(net, np.ones(3), relevance=np.array([1.0, -1.0, 1.0]))


def test_relevance_gain_and_lowpass() -> None:
    rel = Relevance(RelevanceConfig(gain=2.0, lowpass=0.5))
    rel.bind(2)
    seq = [rel(np.array([1.0, 4.0])) for _ in range(1)] + [rel(np.zeros(2)) for _ in range(2)]
    # r_t = a r_{t-1} + (1 - a)|e_t|, from r_0 = 0, times the gain
    np.testing.assert_allclose(np.array(seq), 2.0 * np.array([[0.5, 2.0], [0.25, 1.0],
                                                              [0.125, 0.5]]))  # fmt: skip


def test_relevance_normalisation() -> None:
    rel = Relevance(RelevanceConfig(normalise=True, norm_decay=0.9))
    rel.bind(3)
    # a constant error is normalised to 1 from the first step (bias-corrected mean),
    # whatever its size; an error that was always 0 gives 0 (guarded, no warnings)
    for _ in range(5):
        np.testing.assert_allclose(rel(np.array([0.01, 50.0, 0.0])), [1.0, 1.0, 0.0])
    # after a long stretch of |e| = 1, a jump to 3 is seen as 3x relevant (then fades)
    rel.reset()
    for _ in range(200):
        rel(np.ones(3))
    r = rel(3 * np.ones(3))
    np.testing.assert_allclose(r, 3 / (0.9 * 1 + 0.1 * 3))


def test_relevance_normalisation_makes_sar_independent_of_the_error_scale() -> None:
    net = make_net()
    run_forward(net)
    e = np.array([0.3, -1.2, 2.0])
    cfg = RelevanceConfig(normalise=True)
    a = make_rule("sar", lr=LR, relevance=cfg).updates(net, e)
    b = make_rule("sar", lr=LR, relevance=cfg).updates(net, 50 * e)
    assert_updates(a, b)


def test_relevance_state_is_per_agent_and_advances_once_per_call() -> None:
    net = make_net()
    run_forward(net)
    rule = make_rule("sar", lr=LR, relevance=RelevanceConfig(lowpass=0.5))
    rule.step(net, np.array([2.0, 0.0, -4.0]))
    np.testing.assert_allclose(rule.relevance.lowpassed, [1.0, 0.0, 2.0])
    rule.teaching_signals(net, np.zeros(3))
    np.testing.assert_allclose(rule.relevance.lowpassed, [0.5, 0.0, 1.0])


def test_zero_output_layer_learns_first_under_sar() -> None:
    net = Network(6, [5, 4, 2], population=2, zero_output=True, rng=0)
    run_forward(net)
    signals = make_rule("sar", lr=LR).teaching_signals(net, np.array([1.0, -1.0]))
    assert np.all(signals[-1] != 0)
    np.testing.assert_array_equal(signals[0], 0.0)  # sign(W^T s) = 0 through zero weights


def test_forward_relevance_refuses_a_zero_output_layer() -> None:
    net = Network(6, [5, 2], population=2, zero_output=True, rng=0)
    with pytest.raises(ConfigError, match="forward relevance cannot start from a zero output"):
        make_rule("sar", relevance=RelevanceConfig(mode="forward")).bind(net)
    make_rule("sign-only", relevance=RelevanceConfig(mode="forward")).bind(net)  # ignores r


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RULE_NAMES)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_error_raises(name: str, bad: float) -> None:
    net = make_net()
    run_forward(net)
    with pytest.raises(NonFiniteError, match="error"):
        make_rule(name, lr=LR, rng=0).step(net, np.array([0.0, bad, 1.0]))


def test_error_shape_is_checked() -> None:
    net = make_net()
    run_forward(net)
    with pytest.raises(ShapeError, match=r"expected shape \(3,\) .* or \(3, 3\) .* got \(2,\)"):
        make_rule("sar").step(net, np.ones(2))
    with pytest.raises(ShapeError, match=r"got \(3, 2\)"):
        make_rule("gdm").step(net, np.ones((3, 2)))


def test_unknown_rule_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown rule 'backprop'.*gdm, sar, sar-local"):
        make_rule("backprop")
    with pytest.raises(ConfigError, match="unknown rule"):
        make_rule_from_config(RuleConfig(name="nope"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"lr": 0.0}, "lr"), ({"lr": np.nan}, "lr"), ({"layer_lr_scale": [1.0, -1.0]}, ">= 0")],
)
def test_bad_rates(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_rule("sar", **kwargs)


def test_layer_lr_scale_length_is_checked_at_bind() -> None:
    net = make_net()
    with pytest.raises(ConfigError, match="layer_lr_scale has 2 entries but the network has 3"):
        make_rule("sar", layer_lr_scale=[1.0, 1.0]).bind(net)


def test_rule_bound_to_other_sizes_refuses() -> None:
    rule = make_rule("sar")
    a, b = make_net(), make_net(layers=(5, 3))
    run_forward(a)
    run_forward(b)
    rule.step(a, np.ones(3))
    with pytest.raises(ShapeError, match="bound to a network"):
        rule.step(b, np.ones(3))
    rule.bind(b)  # explicit rebinding is fine
    rule.step(b, np.ones(3))


def test_divergence_names_the_layer() -> None:
    net = make_net(activation="linear", init_gain=1.0)
    net.weights[0][2] *= 1e10  # agent 2's first layer outputs ~1e10 ...
    run_forward(net)
    rule = make_rule("sign-only", lr=1e300, layer_lr_scale=[0.0, 1.0, 0.0])
    with pytest.raises(DivergenceError, match=r"layer 1 .* agents \[2\]"):
        rule.step(net, np.array([1.0, 1.0, 1.0]))  # ... so 1e300 * x overflows in layer 1


# -- population = separate runs, persistence, dtype ------------------------------------------------


@pytest.mark.parametrize("name", RULE_NAMES)
def test_population_equals_separate_runs(name: str) -> None:
    net_seeds, rule_seeds = [3, 4, 5], [13, 14, 15]
    relevance = RelevanceConfig(lowpass=0.3, normalise=True)
    rng = np.random.default_rng(0)
    xs = rng.uniform(-1, 1, (6, 3, 6))
    es = rng.normal(size=(6, 3))

    def run(population: int, ns: list[int], rs: list[int], agents: slice) -> list[np.ndarray]:
        net = Network(6, [5, 4, 2], population=population, seeds=ns, zero_output=False)
        rule = make_rule(name, lr=LR, relevance=relevance, seeds=rs)
        for x, e in zip(xs, es, strict=True):
            net.forward(x[agents])
            rule.step(net, e[agents])
        return net.weights

    together = run(3, net_seeds, rule_seeds, slice(None))
    for k in range(3):
        alone = run(1, net_seeds[k : k + 1], rule_seeds[k : k + 1], slice(k, k + 1))
        for w_pop, w_one in zip(together, alone, strict=True):
            np.testing.assert_array_equal(w_pop[k], w_one[0])


@pytest.mark.parametrize("name", ["sar", "fa", "dfa", "gdm"])
def test_save_load_learner_continues_exactly(tmp_path: Path, name: str) -> None:
    relevance = RelevanceConfig(lowpass=0.5, normalise=True, mode="forward")
    net = make_net(bias=True)
    rule = make_rule(name, lr=LR, layer_lr_scale=[1.0, 0.5, 2.0], relevance=relevance, rng=0)
    rng = np.random.default_rng(0)
    xs, es = rng.uniform(-1, 1, (6, 3, 6)), rng.normal(size=(6, 3))
    for x, e in zip(xs[:3], es[:3], strict=True):
        net.forward(x)
        rule.step(net, e)
    save_learner(tmp_path / "ckpt.npz", net, rule)
    net2, rule2 = load_learner(tmp_path / "ckpt.npz")
    assert type(rule2) is type(rule) and rule2.config_dict() == rule.config_dict()
    for x, e in zip(xs[3:], es[3:], strict=True):
        for n, r in ((net, rule), (net2, rule2)):
            n.forward(x)
            r.step(n, e)
    for a, b in zip([*net.weights, *net.biases], [*net2.weights, *net2.biases], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(rule.relevance.lowpassed, rule2.relevance.lowpassed)


def test_state_dict_of_another_rule_is_refused() -> None:
    state = make_rule("sar").state_dict()
    with pytest.raises(ConfigError, match="state of rule 'sar' cannot be loaded into 'gdm'"):
        make_rule("gdm").load_state_dict(state)


@pytest.mark.parametrize("name", RULE_NAMES)
def test_float32_networks_stay_float32(name: str) -> None:
    net = make_net(dtype=np.float32)
    run_forward(net)
    signals = make_rule(name, lr=LR, rng=0).step(net, np.array([0.3, -1.2, 2.0]))
    assert all(w.dtype == np.float32 for w in net.weights)
    assert all(d.dtype == np.float32 for d in signals)


def test_make_rule_from_config() -> None:
    cfg = RuleConfig(name="sar-local", lr=1e-3, layer_lr_scale=[1, 2, 3],
                     relevance=RelevanceConfig(gain=2.0))  # fmt: skip
    rule = make_rule_from_config(cfg, rng=np.random.default_rng(0))
    assert rule.name == "sar-local" and rule.lr == 1e-3 and rule.layer_lr_scale == [1, 2, 3]
    assert rule.relevance.cfg.gain == 2.0
    rule.bind(make_net())
    assert rule.lr_per_layer == [1e-3, 2e-3, 3e-3]
