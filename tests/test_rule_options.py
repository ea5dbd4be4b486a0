"""The step options of the learning rules: step normalisation, slope gate, weight bound,
relevance cap and readout share (formulas on a tiny net, sign-only backward path, errors)."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import ConfigError, RelevanceConfig, RuleConfig, RunConfig
from sarlearn.stages.network.network import Network
from sarlearn.stages.rules import make_rule, make_rule_from_config, readout_share
from sarlearn.stages.rules.base import step_norm_scale

SIGN_RULES = ["sar", "sar-local", "sar-exact", "sign-only"]


def tiny(seed: int = 0, population: int = 2) -> tuple[Network, np.ndarray]:
    net = Network(6, [4, 3, 2], population=population, seeds=range(seed, seed + population),
                  zero_output=False)  # fmt: skip
    x = np.random.default_rng(seed + 99).normal(size=(population, 6))
    net.forward(x)
    return net, x


def test_step_norm_divides_each_layer_by_its_fan_in() -> None:
    assert step_norm_scale("fan-in", [6, 4, 3, 2]) == [1 / 6, 1 / 4, 1 / 3]
    assert step_norm_scale("sqrt-fan-in", [720, 10, 2]) == pytest.approx([720**-0.5, 10**-0.5])
    net, _ = tiny()
    plain, normed = make_rule("sar", lr=0.3), make_rule("sar", lr=0.3, step_norm="fan-in")
    plain.bind(net)
    normed.bind(net)
    e = np.array([1.5, -2.0])
    for d_plain, d_norm, m in zip(
        plain.updates(net, e), normed.updates(net, e), [6, 4, 3], strict=True
    ):
        np.testing.assert_allclose(d_norm, d_plain / m, rtol=1e-12)


@pytest.mark.parametrize("name", SIGN_RULES)
def test_slope_gate_scales_the_sign_signal_by_the_local_slope(name: str) -> None:
    net, _ = tiny()
    e = np.array([0.7, -1.2])
    plain = make_rule(name, lr=0.1).teaching_signals(net, e)
    gated = make_rule(name, lr=0.1, slope_gate=True).teaching_signals(net, e)
    for d, g, f in zip(plain, gated, net.slopes, strict=True):
        np.testing.assert_allclose(g, d * f / 0.25, rtol=1e-12)  # f'(0) = 1/4 (logistic)


def test_slope_gate_keeps_the_backward_path_sign_only() -> None:
    """sar + slope gate: d_l / (r f'(h_l)/f'(0)) is in {-1, 0, 1}, and it is the sign path
    s_l = sign((W_{l+1}^T s_{l+1}) f'(h_l)) computed from signs only."""
    net, _ = tiny(3)
    e = np.array([2.0, -0.5])
    rule = make_rule("sar", lr=0.1, slope_gate=True)
    d = rule.teaching_signals(net, e)
    r = np.abs(e)[:, None]
    s_top = np.sign(e[:, None] * net.slopes[-1])
    expected = [s_top]
    for i in range(net.n_layers - 2, -1, -1):
        back = np.einsum("pk,pkj->pj", expected[-1], net.weights[i + 1])
        expected.append(np.sign(back * net.slopes[i]))
    expected = expected[::-1]
    for d_l, s_l, f in zip(d, expected, net.slopes, strict=True):
        np.testing.assert_allclose(d_l, r * s_l * (f * 4.0), rtol=1e-12)
    # a huge weight on the way back changes no sign magnitude: only signs travel
    net.weights[-1] *= 1e6
    d_big = rule.teaching_signals(net, e)
    for a, b in zip(d[:-1], d_big[:-1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_weight_bound_projects_rows_onto_the_ball() -> None:
    net, _ = tiny()
    e = np.array([3.0, -3.0])
    rule = make_rule("sar", lr=5.0, weight_bound=0.8)
    before = [w.copy() for w in net.weights]
    raw = [w + dw for w, dw in zip(before, make_rule("sar", lr=5.0).updates(net, e), strict=True)]
    dws = rule.updates(net, e)
    rule.step(net, e)
    for w, w0, dw, w_raw in zip(net.weights, before, dws, raw, strict=True):
        norms = np.linalg.norm(w, axis=2)
        assert np.all(norms <= 0.8 * (1 + 1e-12))
        np.testing.assert_allclose(w, w0 + dw, rtol=1e-12, atol=1e-14)  # updates() agrees
        inside = np.linalg.norm(w_raw, axis=2) <= 0.8  # left exactly as the plain step made them
        np.testing.assert_array_equal(w[inside], w_raw[inside])
        over = ~inside  # scaled back along their own direction onto the sphere
        np.testing.assert_allclose(norms[over], 0.8, rtol=1e-12)
        cos = np.einsum("ij,ij->i", w[over], w_raw[over]) / (
            np.linalg.norm(w[over], axis=1) * np.linalg.norm(w_raw[over], axis=1)
        )
        np.testing.assert_allclose(cos, 1.0, rtol=1e-12)


def test_relevance_cap_bounds_r() -> None:
    net, _ = tiny()
    rule = make_rule("sar", lr=0.1, relevance=RelevanceConfig(cap=2.0))
    d = rule.teaching_signals(net, np.array([10.0, 0.5]))
    assert np.abs(d[0][0]).max() == pytest.approx(2.0)
    assert np.abs(d[0][1]).max() == pytest.approx(0.5)


def test_readout_share_scales_only_the_output_step() -> None:
    assert readout_share([1.0, 2.0]) == [0.5, 1.0]
    assert readout_share([-3.0, 1.5]) == [1.0, 0.5]
    net, _ = tiny()
    e = np.array([1.0, -2.0])
    plain = make_rule("sar", lr=0.1).teaching_signals(net, e)
    shared = make_rule("sar", lr=0.1, output_scale=[0.5, 1.0]).teaching_signals(net, e)
    for a, b in zip(plain[:-1], shared[:-1], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(shared[-1], plain[-1] * [0.5, 1.0], rtol=1e-15)


def test_readout_share_breaks_the_output_identity() -> None:
    """From a zero output layer, 'equal' keeps both output rows bit-identical, 'readout' not."""
    for share, identical in (("equal", True), ("readout", False)):
        cfg = RuleConfig(name="sar", lr=0.01, output_share=share)
        net = Network(6, [4, 2], population=1, seeds=[0])
        rule = make_rule_from_config(cfg, readout=[1.0, 2.0])
        rng = np.random.default_rng(1)
        for _ in range(20):
            net.forward(rng.normal(size=(1, 6)))
            rule.step(net, rng.normal(size=1))
        w = net.weights[-1][0]
        assert np.array_equal(w[0], w[1]) is identical
        assert np.any(w != 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step_norm": "fanin"}, "step_norm"),
        ({"weight_bound": -1.0}, "weight_bound"),
        ({"weight_bound": float("nan")}, "weight_bound"),
        ({"output_scale": [1.0, -1.0]}, "output_scale"),
    ],
)
def test_bad_options_raise_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        make_rule("sar", lr=0.1, **kwargs)


def test_slope_gate_refused_for_rules_without_a_sign_path() -> None:
    with pytest.raises(ConfigError, match="sign path"):
        make_rule("gdm", lr=0.1, slope_gate=True)


@pytest.mark.parametrize(
    "override",
    [
        {"rule.step_norm": "per-layer"},
        {"rule.weight_bound": -0.5},
        {"rule.weight_bound": 0},
        {"rule.relevance.cap": -1},
        {"rule.output_share": "sum"},
    ],
)
def test_config_rejects_bad_options(override: dict) -> None:
    with pytest.raises(ConfigError):
        RunConfig().with_overrides(override)


def test_rule_defaults_of_the_step_options() -> None:
    """None = the rule's default: sar has its bounded step, every other rule the plain one;
    an infinite bound is no bound; explicit values win."""
    from sarlearn.config import DEFAULT_STEP_OPTIONS, PLAIN_STEP

    assert RuleConfig(name="sar").step_options == DEFAULT_STEP_OPTIONS["sar"]
    for name in ("gdm", "relevance-only", "sar-local", "dfa"):
        plain = {"step_norm": "none", "slope_gate": False, "weight_bound": None,
                 "hidden_weight_bound": None, "hidden_bound_scaling": "none"}  # fmt: skip
        assert plain == PLAIN_STEP
        assert RuleConfig(name=name).step_options == plain
    inf = float("inf")
    off = RuleConfig(name="sar", step_norm="none", slope_gate=False, weight_bound=inf,
                     hidden_weight_bound=inf)  # fmt: skip
    assert off.step_options == PLAIN_STEP
    rule = make_rule_from_config(RuleConfig(name="sar", lr=1.0), readout=[1.0, 2.0])
    assert (rule.step_norm, rule.slope_gate) == ("sqrt-fan-in", True)
    assert (rule.weight_bound, rule.hidden_weight_bound) == (3.0, 1.5)
    assert make_rule_from_config(RuleConfig(name="gdm")).weight_bound is None


def test_output_scale_length_checked_at_bind() -> None:
    net, _ = tiny()
    with pytest.raises(ConfigError, match="output layer has 2"):
        make_rule("sar", lr=0.1, output_scale=[1.0, 1.0, 1.0]).bind(net)


def test_options_survive_state_dict() -> None:
    net, _ = tiny()
    rule = make_rule("sar", lr=0.1, step_norm="sqrt-fan-in", slope_gate=True,
                     weight_bound=3.0, output_scale=[0.5, 1.0])  # fmt: skip
    rule.bind(net)
    again = make_rule("sar")
    again.load_state_dict(rule.state_dict())
    assert again.config_dict() == rule.config_dict()
    assert again.lr_per_layer == rule.lr_per_layer


def test_default_rule_keeps_its_first_layer_alive_where_plain_sar_kills_it() -> None:
    """End to end (engine, curvy, seed 2, 2,000 steps): plain sar at 10x its old default rate
    saturates every first-layer unit at every one of the last 1,000 steps; the
    default rule at 10x its own default rate does not."""
    from sarlearn.config import DEFAULT_LR
    from sarlearn.engine import FastClosedLoop

    plain = {"rule.step_norm": "none", "rule.slope_gate": False, "rule.weight_bound": float("inf"),
             "rule.hidden_weight_bound": float("inf"), "rule.lr": 0.1}  # fmt: skip
    default_lr = 10 * DEFAULT_LR["sar"]
    for overrides, dead in ((plain, True), ({"rule.lr": default_lr}, False)):
        # raw rows: mirror rows (sar's default now) keep even the plain step's first layer alive
        raw = {"world.predictor_mode": "raw"}
        cfg = RunConfig().with_overrides({"seed": 2, "world.track": "curvy", **raw, **overrides})
        rec = FastClosedLoop.from_config(cfg, 1).run(2000)
        first_layer = rec["saturated"][0, 1000:, 0]  # fraction of saturated units per step
        assert bool(first_layer.min() == 1.0) is dead, (overrides, first_layer.min())


def test_a_rule_saved_under_the_old_name_of_the_hidden_bound_loads() -> None:
    """States and checkpoints written when the rule called ``hidden_weight_bound``
    ``hidden_bound`` still load, under the config's name."""
    import json
    import pickle

    rule = make_rule("sar", lr=0.1, hidden_weight_bound=1.5)
    state = rule.state_dict()
    cfg = json.loads(str(state["config"]))
    cfg["hidden_bound"] = cfg.pop("hidden_weight_bound")
    again = make_rule("sar")
    again.load_state_dict({**state, "config": np.array(json.dumps(cfg))})
    assert again.hidden_weight_bound == 1.5 and again.config_dict() == rule.config_dict()
    pickled = pickle.loads(pickle.dumps(rule))
    assert pickled.hidden_weight_bound == 1.5
    old = make_rule("sar")
    old_state = dict(rule.__dict__)
    old_state["hidden_bound"] = old_state.pop("hidden_weight_bound")
    old.__setstate__(old_state)
    assert old.hidden_weight_bound == 1.5 and old.hidden_bound == 1.5


def test_camera_input_takes_the_rules_camera_rate() -> None:
    from sarlearn.config import DEFAULT_CAMERA_LR, DEFAULT_LR
    from sarlearn.engine.fast_loop import FastClosedLoop
    from sarlearn.store.records import base_record

    cam = RunConfig().with_overrides({"world.inputs": "camera", "steps": 10})
    assert cam.rule.lr is None  # the config keeps what was set; the rule in force resolves it
    assert cam.rule_config.learning_rate == DEFAULT_CAMERA_LR["sar"] != DEFAULT_LR["sar"]
    assert RunConfig().rule_config.learning_rate == DEFAULT_LR["sar"]  # rows keep theirs
    given = cam.with_overrides({"rule.lr": 0.5})
    assert given.rule_config.learning_rate == 0.5  # a set rate wins
    gdm = cam.with_overrides({"rule.name": "gdm"})
    assert gdm.rule_config.learning_rate == DEFAULT_LR["gdm"]  # only rules that have one
    assert base_record("r", cam, {})["lr"] == DEFAULT_CAMERA_LR["sar"]
    assert given.default_lr == DEFAULT_CAMERA_LR["sar"] and gdm.default_lr == DEFAULT_LR["gdm"]
    assert RunConfig().default_lr == DEFAULT_LR["sar"]

    def engine_rates(cfg: RunConfig) -> np.ndarray:
        return FastClosedLoop.from_configs([cfg]).state.rule.lr.copy()

    explicit = cam.with_overrides({"rule.lr": DEFAULT_CAMERA_LR["sar"]})
    assert np.array_equal(engine_rates(cam), engine_rates(explicit))
    assert not np.array_equal(engine_rates(cam), engine_rates(given))


def test_mirror_differences_take_the_rules_wider_readout() -> None:
    """On mirror differences (sar's default rows, the camera) sar's readout is SPEC's [1, 2]
    times DEFAULT_MIRROR_READOUT_SCALE with its output rows bounded at 2: the same slope at 0,
    a higher ceiling. Raw rows and other rules keep [1, 2]; a set readout wins; another output
    size gets 1 per output; the engine steers with the readout in force."""
    from sarlearn.config import DEFAULT_MIRROR_READOUT_SCALE, SPEC_READOUT
    from sarlearn.engine.fast_loop import FastClosedLoop
    from sarlearn.metrics import steering_max

    scale = DEFAULT_MIRROR_READOUT_SCALE["sar"]
    wide = [scale * c for c in SPEC_READOUT]
    rows, cam = RunConfig(), RunConfig().with_overrides({"world.inputs": "camera"})
    for cfg in (rows, cam):
        assert cfg.network.readout is None and cfg.readout == wide
        assert cfg.rule_config.step_options["weight_bound"] == 2.0
        # slope at 0 of the bounded output layer: readout x f'(0) x bound, as with [1, 2] and 3
        assert max(cfg.readout) * 0.25 * 2.0 == max(SPEC_READOUT) * 0.25 * 3.0
    raw = rows.with_overrides({"world.predictor_mode": "raw"})
    assert raw.readout == list(SPEC_READOUT) and raw.rule_config.step_options["weight_bound"] == 3.0
    assert rows.with_overrides({"rule.name": "gdm"}).readout == list(SPEC_READOUT)
    assert rows.with_overrides({"network.readout": [1.0, 2.0]}).readout == [1.0, 2.0]
    assert rows.with_overrides({"network.layers": [4, 3]}).readout == [1.0, 1.0, 1.0]
    assert steering_max(rows.readout, "logistic") == 1.5 * scale
    with pytest.raises(ConfigError, match="readout has 3 coefficients"):
        rows.with_overrides({"network.readout": [1.0, 2.0, 3.0]})
    loop = FastClosedLoop.from_configs([rows.with_overrides({"steps": 10})])
    assert np.array_equal(loop.state.net.readout, np.array(wide))
