"""SaR and GDM against PPO and SAC on the same robot: environment steps until it settles.

SaR and GDM learn online, so their numbers come from one long run per seed (the compiled
engine, a population of seeds in one call): ``first_passage`` = the paper's
``steps_to_success``, ``settled_step`` = the first step from which the moving sum of |e|
stays below the threshold to the end, and the run *settles* when its last 5,000
steps are clean. PPO and SAC are read from ``sarlearn rl-baseline`` output folders
(``summary.json`` per seed): ``first_clean_steps`` and ``settled_steps`` count training
steps until the frozen policy drives a clean 5,200-step evaluation rollout (and stays clean
at every later evaluation).

Usage::

    python benchmarks/rl_vs_sar.py --steps 60000 --seeds 10 --rl runs/rl-baseline \\
        --out benchmarks/results/rl_vs_sar.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.gym.settling import SETTLE_TAIL, settled_step
from sarlearn.metrics import SuccessCriterion, steps_to_success


def stats(values: list[int | None], n_runs: int) -> dict[str, Any]:
    """Median and IQR over the runs that reached it, and the success count."""
    ok = np.array([v for v in values if v is not None], dtype=float)
    out: dict[str, Any] = {"success": f"{len(ok)}/{n_runs}"}
    if ok.size:
        q1, med, q3 = np.percentile(ok, [25, 50, 75])
        out.update(median=float(med), q1=float(q1), q3=float(q3))
    return out


def online(
    rule: str, track: str, seeds: int, steps: int, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One online learner over ``seeds`` seeds (a population in one engine call), with
    ``overrides`` (dotted config keys) over the defaults."""
    extra = overrides or {}
    cfgs = [
        RunConfig().with_overrides({**extra, "rule.name": rule, "world.track": track, "seed": s})
        for s in range(seeds)
    ]
    crit = SuccessCriterion.from_config(cfgs[0])
    loop = FastClosedLoop.from_configs(cfgs)
    loop.run(0)  # compile (or load from numba's cache) outside the timing
    t = time.perf_counter()
    rec = loop.run(steps)
    wall = time.perf_counter() - t
    # As in a sweep: a robot that leaves the line stops there, and an off-track run never
    # settles (it reads e = 0 off the line, which is not following it).
    off = rec["off_track"].astype(bool)
    ends = [int(np.argmax(o)) + 1 if o.any() else steps for o in off]
    errors = [e[:end] for e, end in zip(rec["error"], ends, strict=True)]
    first = [steps_to_success(e, crit) for e in errors]
    settled = [None if o.any() else settled_step(e, crit) for e, o in zip(errors, off, strict=True)]
    settles = [s if s is not None and s <= steps - SETTLE_TAIL else None for s in settled]
    return {
        "rule": rule,
        "track": track,
        "lr": cfgs[0].rule.learning_rate,
        "steps": steps,
        "seeds": seeds,
        "first_passage": first,
        "settled_step": settles,
        "off_track": int(sum(o.any() for o in off)),
        "first_passage_stats": stats(first, seeds),
        "settled_stats": stats(settles, seeds),
        "wall_seconds_population": wall,
        "wall_seconds_per_run": wall / seeds,
    }


def deep_rl(folder: Path) -> list[dict[str, Any]]:
    """Every ``<algo>/<track>/seed-k/summary.json`` under ``folder``, grouped."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in sorted(folder.glob("*/*/seed-*/summary.json")):
        s = json.loads(f.read_text())
        groups.setdefault((s["algo"], s["track"]), []).append(s)
    out = []
    for (algo, track), runs in sorted(groups.items()):
        n = len(runs)
        out.append(
            {
                "rule": algo,
                "track": track,
                "steps": runs[0]["config"]["total_steps"],
                "eval_every": runs[0]["config"]["eval_every"],
                "seeds": n,
                "finished": sum(bool(r["finished"]) for r in runs),
                "hyper_parameters": runs[0]["hyper_parameters"],
                "first_passage": [r["first_clean_steps"] for r in runs],
                "settled_step": [r["settled_steps"] for r in runs],
                "first_passage_stats": stats([r["first_clean_steps"] for r in runs], n),
                "settled_stats": stats([r["settled_steps"] for r in runs], n),
                "wall_seconds_per_run": float(np.median([r["wall_seconds"] for r in runs])),
                "train_seconds_per_run": float(np.median([r["train_seconds"] for r in runs])),
                "final_eval_mean_abs_error": [r["history"][-1]["mean_abs_error"] for r in runs],
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60_000)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--tracks", default="curvy")
    ap.add_argument("--rules", default="sar,gdm")
    ap.add_argument("--rl", type=Path, default=None, help="rl-baseline output folder")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    rows = [
        online(rule, track, a.seeds, a.steps)
        for track in a.tracks.split(",")
        for rule in a.rules.split(",")
    ]
    if a.rl is not None:
        rows += deep_rl(a.rl)
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores "
        "(shared with other jobs: wall times are indicative)",
        "rows": rows,
    }
    for r in rows:
        print(r["rule"], r["track"], "first", r["first_passage_stats"], "settled",
              r["settled_stats"], f"{r['wall_seconds_per_run']:.1f} s/run")  # fmt: skip
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
