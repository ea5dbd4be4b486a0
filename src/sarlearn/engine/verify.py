"""How closely the compiled loop follows the numpy reference loop, measured.

The closed loop is sensitive to tiny differences: the reflex error ``e = 50 (left - right)``
reads a line whose darkness changes over a pixel (0.25 units), so a pose difference of 1e-15
becomes an error difference of about 1e-12, which steers the robot, and so on; at the sign
rules' ``sign(0) = 0`` a last-bit difference can flip a sign. Two measurements separate the
arithmetic of one step from that amplification:

- :func:`stepwise_deviation` (teacher forcing): before every step the reference is reset to the
  engine's state, then both take the same step; this bounds the error of a single step of every
  stage (world, sensors, filters, forward pass, rule, update) over many different states.
- :func:`trajectory_deviation`: both run freely from the same initial state.

:func:`reference_sensitivity` runs the *reference* twice, once with one first-layer weight
changed by one unit in the last place: its divergence is the yardstick for the free run (the
engine sums matrix products in another order than BLAS and uses the C library's sin, cos and
tanh rather than numpy's SIMD versions, i.e. last-bit differences in every step).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import RunConfig
from sarlearn.engine.fast_loop import FastClosedLoop
from sarlearn.loop import RECORDS, ClosedLoop

#: Quantities compared; weights are compared relative to each layer's largest |w|.
COMPARED = (*RECORDS, "weight_change", "weights")


def _scaled_diff(a: NDArray[Any], b: NDArray[Any]) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))), 1e-300)
    return float(np.max(np.abs(a - b)) / scale)


def _record_diffs(rr: dict[str, Any], rf: dict[str, Any], out: dict[str, float]) -> None:
    for key in (*RECORDS, "weight_change"):
        out[key] = max(out.get(key, 0.0), _scaled_diff(rr[key], rf[key]))


def _weight_diff(ref: ClosedLoop, fast: FastClosedLoop) -> float:
    return max(_scaled_diff(w, fast.weights(li)) for li, w in enumerate(ref.agent.network.weights))


def _copy_loop(loop: ClosedLoop) -> ClosedLoop:
    # The track (an 8 MB image) is read-only and shared; everything else is copied.
    track = loop.robot.track
    return copy.deepcopy(loop, memo={id(track): track})


def stepwise_deviation(cfg: RunConfig, steps: int, population: int = 1) -> dict[str, float]:
    """Teacher-forced comparison: largest one-step deviation of each quantity.

    Each value is ``max |ref - fast| / max |ref|`` over the steps (per record; per layer for
    the weights).
    """
    fast = FastClosedLoop.from_config(cfg, population, weights_every=1)
    out: dict[str, float] = {}
    for _ in range(steps):
        ref = _copy_loop(fast.loops[0])
        rr = ref.run(1)
        rf = fast.run(1)
        _record_diffs(rr, rf, out)
        out["weights"] = max(out.get("weights", 0.0), _weight_diff(ref, fast))
    return out


def trajectory_deviation(cfg: RunConfig, steps: int, population: int = 1) -> dict[str, float]:
    """Free-running comparison from the same initial state (see module docstring)."""
    fast = FastClosedLoop.from_config(cfg, population)
    ref = _copy_loop(fast.loops[0])
    rr = ref.run(steps)
    rf = fast.run(steps)
    out: dict[str, float] = {}
    _record_diffs(rr, rf, out)
    out["weights"] = _weight_diff(ref, fast)
    return out


def reference_sensitivity(cfg: RunConfig, steps: int, population: int = 1) -> dict[str, float]:
    """The reference against itself with every pose and first-layer weight moved by one ulp in
    a random direction (the yardstick of the loop's own sensitivity)."""
    a = ClosedLoop.from_config(cfg, population)
    b = _copy_loop(a)
    rng = np.random.default_rng(0)
    w = b.agent.network.weights[0]
    w[...] = np.nextafter(w, np.where(rng.random(w.shape) < 0.5, -np.inf, np.inf))
    pose = b.robot.pose
    b.robot.pose = np.nextafter(pose, np.where(rng.random(pose.shape) < 0.5, -np.inf, np.inf))
    ra = a.run(steps)
    rb = b.run(steps)
    out: dict[str, float] = {}
    _record_diffs(ra, rb, out)
    out["weights"] = max(
        _scaled_diff(x, y)
        for x, y in zip(a.agent.network.weights, b.agent.network.weights, strict=True)
    )
    return out


__all__ = ["COMPARED", "reference_sensitivity", "stepwise_deviation", "trajectory_deviation"]
