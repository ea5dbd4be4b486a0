"""How closely the engine follows the numpy reference, for every rule and the main options.

For each configuration (default sizes, 3 agents) it reports the largest deviation, relative to
the largest value of each record (per layer for the weights), of

- ``stepwise``: the teacher-forced comparison (one step from the same state, 300 times);
- ``free``: both loops running freely for 300 steps from the same initial state;
- ``reference_1ulp``: the numpy reference against itself with every pose and first-layer
  weight nudged by one unit in the last place (how chaotic the closed loop itself is).

See :mod:`sarlearn.engine.verify`. Usage::

    python benchmarks/exactness.py [--steps 300] [--out benchmarks/results/exactness.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sarlearn.config import RunConfig
from sarlearn.engine.verify import reference_sensitivity, stepwise_deviation, trajectory_deviation

CASES: dict[str, dict[str, Any]] = {
    **{
        rule: {"rule.name": rule, "rule.lr": lr}
        for rule, lr in (
            ("sar", 1e-4),
            ("gdm", 1e-3),
            ("sign-only", 1e-4),
            ("sar-local", 1e-4),
            ("relevance-only", 1e-4),
            ("sar-exact", 1e-4),
            ("fa", 1e-3),
            ("dfa", 1e-3),
            ("sign-symmetry", 1e-3),
        )
    },
    "sar relevance lowpass+normalise": {
        "rule.relevance.normalise": True,
        "rule.relevance.lowpass": 0.5,
        "rule.relevance.gain": 2.0,
    },
    "sar forward relevance": {"rule.relevance.mode": "forward", "network.zero_output": False},
    "gdm tanh": {"network.activation": "tanh", "rule.name": "gdm", "rule.lr": 1e-3},
    "sar delay bank": {"filters.kind": "delay"},
    "sar float32": {"dtype": "float32"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--population", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    print(f"{'case':<34} {'stepwise':>10} {'free':>10} {'ref 1ulp':>10}")
    for name, overrides in CASES.items():
        cfg = RunConfig().with_overrides(overrides)
        row = {
            "case": name,
            "overrides": overrides,
            "stepwise": stepwise_deviation(cfg, args.steps, args.population),
            "free": trajectory_deviation(cfg, args.steps, args.population),
            "reference_1ulp": reference_sensitivity(cfg, args.steps, args.population),
        }
        rows.append(row)
        worst = {k: max(row[k].values()) for k in ("stepwise", "free", "reference_1ulp")}
        print(
            f"{name:<34} {worst['stepwise']:>10.1e} {worst['free']:>10.1e} "
            f"{worst['reference_1ulp']:>10.1e}",
            flush=True,
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"steps": args.steps, "rows": rows}, indent=2))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
