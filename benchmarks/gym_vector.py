"""Steps per second of the Gymnasium environments: the vector env against SyncVectorEnv.

For each number of robots N, the same random actions drive

- ``gymnasium.vector.SyncVectorEnv`` over N single ``sarlearn/LineFollower-v0`` envs,
- ``LineFollowerVectorEnv`` with ``backend="numpy"`` (one vectorised numpy world), and
- ``LineFollowerVectorEnv`` with ``backend="compiled"`` (one numba call per step),

all in one process, one after the other; each figure is the median of ``--repeats`` timed
chunks after a warm-up (numba compilation or cache load happens in the warm-up). Reported:
robot-steps per second (N x vector steps / s) and the ratio to SyncVectorEnv.

Usage::

    python benchmarks/gym_vector.py [--quick] [--out benchmarks/results/gym_vector.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import sarlearn  # noqa: F401  (registers the environment)
from sarlearn.gym import ENV_ID


def _rate(env: Any, n: int, steps: int, repeats: int) -> float:
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, n, 1)).astype(np.float32)
    for a in actions[: min(20, steps)]:  # warm-up
        env.step(a)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for a in actions:
            env.step(a)
        times.append(time.perf_counter() - t)
    return n * steps / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and steps")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    sizes = (1, 16, 64) if a.quick else (1, 16, 64, 256)
    rows = []
    for obs_kw in ({"filtered": False}, {"filtered": True}):
        for n in sizes:
            steps = max(20, 4000 // n) if a.quick else max(50, 20000 // n)
            kw = {"track": "curvy", "max_steps": 10**9, **obs_kw}
            sync = gym.vector.SyncVectorEnv([lambda kw=kw: gym.make(ENV_ID, **kw)] * n)
            row: dict[str, Any] = {"n_envs": n, "steps": steps, **obs_kw}
            row["sync"] = _rate(sync, n, steps, a.repeats)
            for backend in ("numpy", "compiled"):
                vec = gym.make_vec(
                    ENV_ID, num_envs=n, vectorization_mode="vector_entry_point",
                    backend=backend, **kw,
                )  # fmt: skip
                row[backend] = _rate(vec, n, steps, a.repeats)
                row[f"{backend}_vs_sync"] = row[backend] / row["sync"]
            rows.append(row)
            print(
                f"N={n:4d} filtered={obs_kw['filtered']!s:5}: sync {row['sync']:9.0f}  "
                f"numpy {row['numpy']:9.0f} ({row['numpy_vs_sync']:.1f}x)  "
                f"compiled {row['compiled']:9.0f} ({row['compiled_vs_sync']:.1f}x) robot-steps/s"
            )
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        "(shared with other jobs)",
        "unit": "robot-steps per second (N x env.step calls / s)",
        "rows": rows,
    }
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
