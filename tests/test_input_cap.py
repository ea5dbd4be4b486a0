"""The input norm cap (``network.input_max_norm``): the first layer's sums do not grow with the
line's width or darkness, in the numpy reference and the compiled engine alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sarlearn.config import ConfigError, RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.engine.verify import stepwise_deviation
from sarlearn.loop import ClosedLoop
from sarlearn.stages.network.network import Network, cap_input_norm

# raw rows: the cap is for their long input vectors (mirror differences of a centred line are 0)
WIDE_LINE = {"world.track": "hairpin", "world.line_width": 6.0, "world.predictor_mode": "raw"}


def test_long_inputs_are_scaled_onto_the_cap_and_short_ones_left_alone() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (3, 50))
    x[1] *= 0.01  # norm about 0.04: inside the cap
    before = x.copy()
    cap_input_norm(x, 2.0)
    norms = np.linalg.norm(x, axis=1)
    assert norms[0] == pytest.approx(2.0, rel=1e-15) and norms[2] == pytest.approx(2.0, rel=1e-15)
    np.testing.assert_array_equal(x[1], before[1])  # untouched, bit for bit
    for k in (0, 2):  # the direction is kept
        np.testing.assert_allclose(x[k] / norms[k], before[k] / np.linalg.norm(before[k]))


def test_the_network_sees_the_capped_input_and_its_first_sums_stay_bounded() -> None:
    net = Network(40, [5, 2], population=2, rng=0, input_max_norm=1.5)
    x = np.full((2, 40), 3.0)  # norm 19
    net.forward(x)
    assert np.linalg.norm(net.layer_inputs[0], axis=1) == pytest.approx([1.5, 1.5], rel=1e-14)
    row_norms = np.linalg.norm(net.weights[0], axis=2)
    assert np.all(np.abs(net.pre[0]) <= row_norms * 1.5 * (1 + 1e-12))
    # the same network without the cap sums the raw input
    free = Network(40, [5, 2], population=2, rng=0)
    free.forward(x)
    np.testing.assert_allclose(free.pre[0], net.pre[0] * (np.sqrt(40 * 9.0) / 1.5))


def test_a_wide_line_lengthens_the_raw_input_but_not_the_capped_one() -> None:
    """Why the cap exists: ||x|| grows with the line's width (about 13 at 3 units, 19 at 6)."""
    norms = {}
    for width in (3.0, 6.0):
        for cap in (float("inf"), 10.0):
            cfg = RunConfig().with_overrides(
                {**WIDE_LINE, "world.line_width": width, "network.input_max_norm": cap}
            )
            loop = ClosedLoop.from_config(cfg)
            seen = []
            for _ in range(60):
                loop.run(1)
                seen.append(np.linalg.norm(loop.agent.network.layer_inputs[0]))
            norms[width, cap] = max(seen)
    assert norms[6.0, float("inf")] > 1.3 * norms[3.0, float("inf")] > 10.0
    assert norms[3.0, 10.0] == pytest.approx(10.0) and norms[6.0, 10.0] == pytest.approx(10.0)


@pytest.mark.parametrize(
    "overrides",
    [
        {**WIDE_LINE, "network.input_max_norm": 10.0},
        {**WIDE_LINE, "network.input_max_norm": 10.0, "dtype": "float32"},
        {**WIDE_LINE, "network.input_max_norm": 5.0, "rule.name": "gdm", "rule.lr": 0.3},
        {**WIDE_LINE, "network.input_max_norm": 3.0, "world.predictor_mode": "mirror"},
        {**WIDE_LINE, "network.input_max_norm": 10.0, "network.layers": [2], "network.bias": True},
    ],
    ids=["sar", "float32", "gdm", "mirror", "shallow-bias"],
)
def test_engine_matches_reference_with_the_input_cap(overrides: dict) -> None:
    cfg = RunConfig().with_overrides(overrides)
    loop = ClosedLoop.from_config(cfg)
    loop.run(5)
    raw = np.linalg.norm(loop.agent.bank.state_dict()["y1"].reshape(1, -1))
    assert raw > cfg.network.input_max_norm  # the cap is active in this test
    dev = stepwise_deviation(cfg, steps=40, population=2)
    tol = 1e-5 if overrides.get("dtype") == "float32" else 1e-12
    assert max(dev.values()) < tol, dev


def test_engine_with_the_cap_differs_from_the_engine_without() -> None:
    """The equality test above can fail: the cap changes what the engine computes."""
    runs = []
    for cap in (10.0, float("inf")):
        fast = FastClosedLoop.from_config(
            RunConfig().with_overrides({**WIDE_LINE, "network.input_max_norm": cap})
        )
        fast.run(30)
        runs.append(fast.weights(0).copy())
    assert np.abs(runs[0] - runs[1]).max() > 1e-6


def test_bad_caps_are_config_errors_and_inf_is_no_cap() -> None:
    for bad in (0.0, -1.0):
        with pytest.raises(ConfigError, match="input_max_norm"):
            RunConfig().with_overrides({"network.input_max_norm": bad})
    with pytest.raises(ConfigError, match="input_max_norm"):
        Network(4, [2], input_max_norm=float("nan"))
    cfg = RunConfig().with_overrides({"network.input_max_norm": float("inf")})
    assert cfg.input_max_norm is None
    assert ClosedLoop.from_config(cfg).agent.network.input_max_norm is None


def test_loops_with_different_caps_do_not_stack() -> None:
    a = RunConfig().with_overrides({"network.input_max_norm": 10.0})
    b = RunConfig().with_overrides({"network.input_max_norm": 12.0, "seed": 1})
    with pytest.raises(ValueError, match="network"):
        FastClosedLoop.from_configs([a, b])


def test_a_saved_network_keeps_its_cap(tmp_path: Path) -> None:
    net = Network(6, [3, 2], rng=1, input_max_norm=0.5)
    net.save(tmp_path / "net.npz")
    assert Network.load(tmp_path / "net.npz").input_max_norm == 0.5
