"""What each part of the learning step costs: the engine's learner alone (filters, forward
pass, rule; every step learns, as ``sarlearn bench --mode learner``) for sar's default step,
the step without its weight bound, the plain step, gdm, and smaller networks.

Rates are per CPU-second of this process (one thread), medians of ``--repeats`` chunks (and
the best chunk), so other jobs on the machine disturb them less than wall-clock rates.
Prints and writes JSON.

Usage::

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python benchmarks/learner_options.py \
        [--steps 20000] [--repeats 5] [--out benchmarks/results/learner-options.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

VARIANTS: dict[str, dict] = {
    "sar, default step (sqrt-fan-in, slope gate, max-norm bounds)": {},
    "sar, default step without the bound": {"rule.weight_bound": float("inf")},
    "sar, plain step (lr 0.01)": {
        "rule.step_norm": "none",
        "rule.slope_gate": False,
        "rule.weight_bound": float("inf"),
        "rule.lr": 0.01,
    },
    "gdm": {"rule.name": "gdm"},
    "sar, 720 -> 2 (filters + one layer)": {"network.layers": [2]},
    "sar, 720 -> 10 -> 2": {"network.layers": [10, 2]},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from sarlearn.config import RunConfig
    from sarlearn.engine import FastClosedLoop
    from sarlearn.engine.bench import cpu_model, learner_inputs

    pred, err = learner_inputs(args.steps)
    p3, e2 = pred[:, None, :], err[:, None]
    out = {"cpu": cpu_model(), "machine": platform.machine(), "steps": args.steps}
    out.update(rates={}, best={})
    for label, overrides in VARIANTS.items():
        # raw rows for every variant: the same 720 inputs whatever the rule's default rows
        cfg = RunConfig().with_overrides({"world.predictor_mode": "raw", **overrides})
        loop = FastClosedLoop.from_config(cfg, 1)
        loop.step_agents(p3[:50], e2[:50])  # compile / load
        rates = []
        for _ in range(args.repeats):
            t = time.process_time()
            loop.step_agents(p3, e2)
            rates.append(args.steps / (time.process_time() - t))
        out["rates"][label] = statistics.median(rates)
        out["best"][label] = max(rates)  # the least disturbed chunk, on a shared machine
        print(
            f"{label}: {out['rates'][label]:,.0f} steps per CPU-second "
            f"(best chunk {out['best'][label]:,.0f})",
            flush=True,
        )
    if args.out:
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
