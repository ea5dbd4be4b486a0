"""A smaller weight bound on the hidden layers only (``rule.hidden_weight_bound``), which keeps the
hidden units graded so the steering stays smooth."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import ConfigError, RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.engine.verify import stepwise_deviation
from sarlearn.loop import ClosedLoop
from sarlearn.stages.rules import make_rule

HB = {"rule.hidden_weight_bound": 1.5}


def _row_norms(w: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("pij,pij->pi", w, w))


def test_hidden_rows_end_inside_their_bound_and_the_output_inside_its_own() -> None:
    cfg = RunConfig().with_overrides({**HB, "world.track": "hairpin", "rule.lr": 10})
    loop = ClosedLoop.from_config(cfg, population=2)
    net = loop.agent.network
    assert _row_norms(net.weights[0]).max() > 1.5  # the init lies outside the hidden bound
    loop.run(60)
    for w in net.weights[:-1]:
        assert _row_norms(w).max() <= 1.5 * (1 + 1e-12)
    out_bound = cfg.rule_config.step_options["weight_bound"]  # 2 on sar's mirror rows
    assert _row_norms(net.weights[-1]).max() <= out_bound * (1 + 1e-12)
    assert loop.agent.rule.hidden_weight_bound == 1.5 and loop.agent.rule.weight_bound == out_bound


@pytest.mark.parametrize(
    "overrides",
    [HB, {**HB, "rule.name": "gdm", "rule.lr": 0.3},
     {**HB, "rule.weight_bound": float("inf"), "world.predictor_mode": "mirror"}],
    ids=["sar-default", "gdm", "no-output-bound-mirror"],
)  # fmt: skip
def test_engine_matches_reference_with_hidden_bound(overrides: dict) -> None:
    dev = stepwise_deviation(RunConfig().with_overrides(overrides), steps=40, population=2)
    assert max(dev.values()) < 1e-12, dev


def test_engine_applies_the_bound_to_weights_set_between_chunks() -> None:
    fast = FastClosedLoop.from_config(RunConfig().with_overrides(HB), population=1)
    fast.run(5)
    net = fast.agent.network
    net.weights[0][...] *= 10.0  # set from outside (a loaded network)
    fast.reload()
    fast.run(1)
    assert _row_norms(fast.weights(0)).max() <= 1.5 * (1 + 1e-12)


def test_an_infinite_hidden_bound_is_none_and_bad_bounds_are_config_errors() -> None:
    loop = ClosedLoop.from_config(
        RunConfig().with_overrides({"rule.hidden_weight_bound": float("inf")})
    )
    assert loop.agent.rule.hidden_weight_bound is None
    for bad in (0.0, -1.0):
        with pytest.raises(ConfigError, match="hidden_weight_bound"):
            RunConfig().with_overrides({"rule.hidden_weight_bound": bad})
    with pytest.raises(ConfigError, match="hidden_weight_bound"):
        make_rule("sar", lr=1.0, hidden_weight_bound=float("nan"))


def test_loops_with_different_hidden_bounds_do_not_stack() -> None:
    a = RunConfig().with_overrides(HB)
    b = RunConfig().with_overrides({"rule.hidden_weight_bound": 2.0, "seed": 1})
    with pytest.raises(ValueError, match="rule options"):
        FastClosedLoop.from_configs([a, b])


FAN = {"rule.hidden_bound_scaling": "fan-in"}
WIDE = {"network.layers": [20, 20, 2]}


def test_fan_in_scaling_bounds_each_hidden_layer_by_its_fan_in() -> None:
    cfg = RunConfig().with_overrides({**FAN, **HB, **WIDE, "world.track": "hairpin", "rule.lr": 10})
    loop = ClosedLoop.from_config(cfg, population=2)
    net, rule = loop.agent.network, loop.agent.rule
    loop.run(60)
    assert rule.hidden_bound_of(0, net.weights[0]) == 1.5  # fed by the predictors: unscaled
    b1 = 1.5 * np.sqrt(10 / 20)
    assert rule.hidden_bound_of(1, net.weights[1]) == pytest.approx(b1, rel=1e-15)
    assert _row_norms(net.weights[0]).max() <= 1.5 * (1 + 1e-12)
    assert 0.9 * b1 < _row_norms(net.weights[1]).max() <= b1 * (1 + 1e-12)
    assert _row_norms(net.weights[-1]).max() <= 3.0 * (1 + 1e-12)


def test_fan_in_scaling_leaves_ten_wide_layers_unchanged() -> None:
    a = ClosedLoop.from_config(RunConfig().with_overrides({**FAN, "world.track": "hairpin"}))
    plain = {"world.track": "hairpin", "rule.hidden_bound_scaling": "none"}  # not fan-in-all
    b = ClosedLoop.from_config(RunConfig().with_overrides(plain))
    a.run(40)
    b.run(40)
    for wa, wb in zip(a.agent.network.weights, b.agent.network.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize(
    "overrides",
    [{**FAN, **WIDE}, {**FAN, "network.layers": [20, 5, 2]},
     {**FAN, **WIDE, "rule.name": "gdm", "rule.lr": 0.3, "rule.hidden_weight_bound": 1.5},
     {**FAN, **WIDE, "dtype": "float32"}],
    ids=["sar-20-wide", "sar-20-5", "gdm", "float32"],
)  # fmt: skip
def test_engine_matches_reference_with_fan_in_scaling(overrides: dict) -> None:
    dev = stepwise_deviation(RunConfig().with_overrides(overrides), steps=40, population=2)
    tol = 1e-5 if overrides.get("dtype") == "float32" else 1e-12
    assert max(dev.values()) < tol, dev


def test_bad_hidden_bound_scaling_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="hidden_bound_scaling"):
        RunConfig().with_overrides({"rule.hidden_bound_scaling": "sqrt"})
    with pytest.raises(ConfigError, match="hidden_bound_scaling"):
        make_rule("sar", lr=1.0, hidden_weight_bound=1.5, hidden_bound_scaling="fanin")


def test_loops_with_different_hidden_bound_scalings_do_not_stack() -> None:
    a = RunConfig().with_overrides(WIDE)
    b = RunConfig().with_overrides({**FAN, **WIDE, "seed": 1})
    with pytest.raises(ValueError, match="rule options"):
        FastClosedLoop.from_configs([a, b])
