"""Where the learner's time goes, by network shape: the engine's learner alone (filters,
forward, rule; every step learning, random predictors; ``sarlearn.engine.bench.bench_learner``)
for 0, 1, 4 and 10 hidden layers of 10 with sar's default step, best of several chunks.

    taskset -c 1 python benchmarks/learner_depth.py [--steps 4000] [--repeats 5] [--rounds 3] \
        [--out benchmarks/results/learner-depth.json]

The differences between shapes give the cost of the 720-wide first layer and of each 10 x 10
hidden layer per step (docs/performance.md, "Why the last two are missed").
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

from sarlearn.config import RunConfig
from sarlearn.engine.bench import bench_learner, cpu_model

SHAPES = {"0 hidden": [2], "1 hidden": [10, 2], "4 hidden": [10] * 4 + [2],
          "10 hidden": [10] * 10 + [2]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    rows = []
    for name, layers in SHAPES.items():
        cfg = RunConfig().with_overrides({"network.layers": layers})
        rates = [bench_learner(cfg, a.steps, a.repeats)["median"] for _ in range(a.rounds)]
        best = max(rates)
        rows.append({"shape": name, "layers": layers, "best_steps_per_s": best,
                     "us_per_step": 1e6 / best, "medians": rates})  # fmt: skip
        print(f"{name:10s} {best:10,.0f} steps/s  {1e6 / best:5.2f} us/step")
    if a.out is not None:
        out = {"cpu": cpu_model(), "machine": platform.machine(), "rows": rows,
               "steps": a.steps, "repeats": a.repeats, "rounds": a.rounds}  # fmt: skip
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
