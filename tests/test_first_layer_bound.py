"""hidden_bound_scaling = "fan-in-all": the first hidden layer's rows are bounded like the
others, onto hidden_weight_bound * sqrt(10 / fan_in), in the numpy reference and the compiled
engine.

Why: with mirror-row predictors the first layer sees 360 inputs, and under the plain hidden
bound a line offset of 0.1 units already drives it halfway to saturation, so the learned
steering is a step function of the offset and flips sign at full amplitude
(docs/generalisation.md, "Why mirror rows weave").
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.engine.verify import stepwise_deviation
from sarlearn.loop import ClosedLoop
from sarlearn.stages.rules.compiled import hidden_bound_fan_in

ALL = {"rule.hidden_bound_scaling": "fan-in-all", "rule.hidden_weight_bound": 1.3}


def _row_norms(w: np.ndarray) -> np.ndarray:
    return np.sqrt(np.sum(np.asarray(w, dtype=np.float64) ** 2, axis=-1))


def test_first_layer_is_bounded_by_its_fan_in() -> None:
    cfg = RunConfig().with_overrides({**ALL, "world.track": "hairpin", "rule.lr": 10})
    loop = ClosedLoop.from_config(cfg, population=2)
    net, rule = loop.agent.network, loop.agent.rule
    n_in = net.weights[0].shape[-1]
    assert n_in == 360  # mirror rows: 3 rows x 24 differences x 5 filters
    b0 = 1.3 * math.sqrt(10 / n_in)
    assert rule.hidden_bound_of(0, net.weights[0]) == pytest.approx(b0, rel=1e-15)
    assert rule.hidden_bound_of(1, net.weights[1]) == 1.3  # 10-wide layers: unchanged
    loop.run(60)
    assert 0.9 * b0 < _row_norms(net.weights[0]).max() <= b0 * (1 + 1e-12)
    assert _row_norms(net.weights[1]).max() <= 1.3 * (1 + 1e-12)
    assert _row_norms(net.weights[-1]).max() <= 3.0 * (1 + 1e-12)


def test_plain_fan_in_scaling_keeps_the_first_layer() -> None:
    cfg = RunConfig().with_overrides({**ALL, "rule.hidden_bound_scaling": "fan-in"})
    loop = ClosedLoop.from_config(cfg)
    assert loop.agent.rule.hidden_bound_of(0, loop.agent.network.weights[0]) == 1.3


def test_engine_constant_encodes_the_scaling() -> None:
    assert hidden_bound_fan_in("none") == 0.0
    assert hidden_bound_fan_in("fan-in") == 10.0
    assert hidden_bound_fan_in("fan-in-all") == -10.0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("track", ["hairpin", "random:7"])
def test_engine_matches_reference_teacher_forced(dtype: str, track: str) -> None:
    cfg = RunConfig().with_overrides({**ALL, "dtype": dtype, "world.track": track, "rule.lr": 10})
    dev = stepwise_deviation(cfg, steps=40, population=2)
    # float32: at rate 10 the output rows sit on sar's output bound 2, and the projection onto
    # it rounds in float32 (hairpin: 1.2e-5 of the steering; 5.5e-6 at the bound 3)
    tol = 1.5e-5 if dtype == "float32" else 1e-12
    assert max(dev.values()) < tol, dev


def test_loops_with_and_without_first_layer_scaling_do_not_stack() -> None:
    a = RunConfig().with_overrides({**ALL, "rule.hidden_bound_scaling": "fan-in"})
    b = RunConfig().with_overrides({**ALL, "seed": 1})
    with pytest.raises(ValueError, match="rule options"):
        FastClosedLoop.from_configs([a, b])


@pytest.mark.parametrize(
    ("overrides", "scaling", "bound"),
    [({}, "fan-in-all", 1.4),  # sar's default: mirror rows
     ({"world.predictor_mode": "raw"}, "none", 1.5),
     ({"world.inputs": "camera"}, "fan-in-all", 1.4),  # camera: mirror differences too
     ({"rule.hidden_bound_scaling": "fan-in"}, "fan-in", 1.4),  # a set value wins
     ({"rule.hidden_weight_bound": 1.3}, "fan-in-all", 1.3),
     ({"world.inputs": "camera", "rule.hidden_weight_bound": 1.5}, "fan-in-all", 1.5),
     ({"rule.name": "gdm", "world.predictor_mode": "mirror"}, "none", None)],
    ids=["sar-mirror", "sar-raw", "sar-camera", "set-scaling", "set-bound", "set-camera-bound",
         "gdm-mirror"],
)  # fmt: skip
def test_the_step_options_in_force_are_tied_to_the_inputs(
    overrides: dict, scaling: str, bound: float | None
) -> None:
    cfg = RunConfig().with_overrides(overrides)
    assert cfg.rule.hidden_bound_scaling == overrides.get("rule.hidden_bound_scaling")
    options = cfg.rule_config.step_options
    assert (options["hidden_bound_scaling"], options["hidden_weight_bound"]) == (scaling, bound)
    if cfg.world.inputs == "rows":  # the camera's agent needs a frame; the config is enough
        rule = ClosedLoop.from_config(cfg).agent.rule
        assert (rule.hidden_bound_scaling, rule.hidden_weight_bound) == (scaling, bound)
