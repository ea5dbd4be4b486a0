"""The compute of one control cycle on the robot, and the budget it leaves in a 0.05 s cycle.

What ``sarlearn drive`` computes each cycle besides its I/O (the serial ``G`` and ``M`` lines
and the camera's capture): the camera frame reduced to its predictors (segment grid, left -
right differences), then the agent's step (filter bank, forward pass, learning, readout).
Two networks, timed in alternating rounds so that the load of a shared machine falls on both:

- ``default``: the default network on the default camera inputs (4 x 8 grid -> 16
  differences x 5 filters = 80 inputs; 10 hidden layers of 10; 2 outputs);
- ``authors``: the authors' robot network (SPEC section 5): an 8 x 6 grid of differences
  (grid 8 rows x 12 columns) through 5 delays = 240 inputs; 11 layers (10 hidden of
  ``--hidden`` units, then 3 outputs read out with 1, 3, 5).

Each cycle learns (the reflex error is drawn nonzero, so the rule never skips its update):
the worst case. Frames are the simulator's camera images along a drive of the default world.
The Pi-class figure multiplies the measured time by ``--pi-factor`` (default 5 to 10): an
ESTIMATE of how much slower single-threaded Python and numpy on small arrays run on a Raspberry
Pi 3B+ / 4 than on the machine measured, not a measurement::

    python benchmarks/robot_cycle.py [--cycles 400] [--rounds 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import numpy as np

from sarlearn.agent import ClosedLoopAgent
from sarlearn.config import RunConfig
from sarlearn.engine.bench import cpu_model
from sarlearn.loop import make_perception, n_predictors_of
from sarlearn.stages.world.sim import SimWorld

PERIOD = 0.05


def configs(hidden: int) -> dict[str, RunConfig]:
    """The two networks (camera inputs, SaR)."""
    default = RunConfig().with_overrides({"world.inputs": "camera"})
    authors = default.with_overrides(
        {
            "world.camera.grid_rows": 8,
            "world.camera.grid_cols": 12,
            "filters.kind": "delay",
            "filters.n_filters": 5,
            "network.layers": [hidden] * 10 + [3],
            "network.readout": [1.0, 3.0, 5.0],
        }
    )
    return {"default": default, "authors": authors}


def frames(cfg: RunConfig, n: int) -> np.ndarray:
    """``n`` camera frames ``(n, 1, H, W)`` along a drive of the reflex."""
    world = SimWorld(cfg.world, camera=True)
    out = []
    for _ in range(n):
        out.append(world.grab_frame())
        world.step(0.0)
    return np.asarray(out)


class Cycle:
    """The compute of one cycle: perception of a frame, then the agent's step."""

    def __init__(self, cfg: RunConfig, n_frames: int, seed: int = 0) -> None:
        self.cfg = cfg
        self.perception = make_perception(cfg)
        self.n_inputs = n_predictors_of(cfg) * cfg.filters.n_filters
        self.agent = ClosedLoopAgent.from_config(cfg, n_predictors_of(cfg))
        self.frames = frames(cfg, n_frames)
        self.errors = np.random.default_rng(seed).choice([-1.0, 1.0], n_frames) * 0.5
        self.k = 0

    def run(self, cycles: int) -> list[float]:
        """Seconds of each of ``cycles`` cycles."""
        out = []
        clock = time.perf_counter
        for _ in range(cycles):
            i = self.k % len(self.frames)
            self.k += 1
            t0 = clock()
            x = self.perception(self.frames[i])
            self.agent.step(self.errors[i : i + 1], x)
            out.append(clock() - t0)
        return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=400, help="cycles per round and network")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--hidden", type=int, default=10, help="units per hidden layer (authors')")
    ap.add_argument("--pi-factor", type=float, nargs=2, default=(5.0, 10.0))
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    cycles = {name: Cycle(cfg, 200) for name, cfg in configs(args.hidden).items()}
    for c in cycles.values():
        c.run(50)  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in cycles}
    round_medians: dict[str, list[float]] = {name: [] for name in cycles}
    for r in range(args.rounds):
        order = list(cycles) if r % 2 == 0 else list(reversed(cycles))
        for name in order:
            times = cycles[name].run(args.cycles)
            samples[name] += times
            round_medians[name].append(statistics.median(times))
    lo, hi = args.pi_factor
    result: dict[str, Any] = {
        "period": PERIOD,
        "machine": {
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "note": "shared machine: medians of alternating rounds; the pi_estimate_* values are "
        f"the measured median times {lo:g} to {hi:g}, an ESTIMATE for a Raspberry Pi, not "
        "a measurement",
        "networks": {},
    }
    for name, c in cycles.items():
        t = np.asarray(samples[name])
        med = float(statistics.median(round_medians[name]))
        result["networks"][name] = {
            "inputs": c.n_inputs,
            "layers": list(c.cfg.network.layers),
            "grid": [c.cfg.world.camera.grid_rows, c.cfg.world.camera.grid_cols],
            "filters": f"{c.cfg.filters.kind} x {c.cfg.filters.n_filters}",
            "median_s": med,
            "p99_s": float(np.percentile(t, 99)),
            "budget_left_s": PERIOD - med,
            "budget_used_fraction": med / PERIOD,
            "pi_estimate_median_s": [med * lo, med * hi],
            "pi_estimate_budget_left_s": [PERIOD - med * lo, PERIOD - med * hi],
        }
        print(
            f"{name:8s} {c.n_inputs:4d} inputs, layers {c.cfg.network.layers}: "
            f"{med * 1e3:.2f} ms (p99 {np.percentile(t, 99) * 1e3:.2f}), "
            f"{(PERIOD - med) * 1e3:.1f} ms of {PERIOD * 1e3:.0f} left; Pi estimate "
            f"{med * lo * 1e3:.1f}-{med * hi * 1e3:.1f} ms"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
