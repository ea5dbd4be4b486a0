"""Transfer experiment (docs/results.md, "Generalisation"): train on one track, drive frozen
on others.

For every built-in track and each rule (SaR, GDM) a population of ``--seeds`` robots learns for
``--train-steps`` steps with the defaults (deep 10 x 10 + 2 network, default rates); the
population's networks are saved (``ClosedLoopAgent.save``, the same file ``sarlearn follow``
writes as network.npz). Each saved population then drives *frozen* (``RunConfig.freeze``: the
rule computes nothing) for ``--eval-steps`` steps on every built-in track, from a fresh random
start on the line; the reflex alone drives the same starts as the baseline.

Measures per (train track, test track), over the evaluation run of each robot:

- mean |e| over the whole evaluation;
- "above": the fraction of the last ``--last`` steps at which the moving sum of |e| over 200
  steps is at or above the success threshold 0.1 (the settling measure's "fraction of steps above
  threshold"); a robot that lost the line counts as 1.0;
- "settled": robots whose last ``--last`` steps are all below the threshold (and that never
  lost the line), out of ``--seeds``.

Writes ``transfer.parquet`` (one row per robot) and ``transfer.md`` (the tables) to ``--out``.
Run from the repository root::

    PYTHONPATH=src python docs/experiments/transfer.py --out runs/transfer
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from sarlearn.config import RunConfig
from sarlearn.engine import make_closed_loop
from sarlearn.metrics import moving_sum
from sarlearn.stages.world.tracks import TRACK_NAMES

RULES = ("sar", "gdm")


def evaluate(errors: np.ndarray, off: np.ndarray, cfg: RunConfig, last: int) -> dict[str, list]:
    """Per-robot measures of an evaluation run: errors, off ``(P, T)``."""
    ms = moving_sum(np.abs(errors), cfg.success_window)[:, -last:]
    above = (ms >= cfg.success_threshold).mean(axis=1)
    lost = off.any(axis=1)
    above = np.where(lost, 1.0, above)
    return {
        "mean_abs_error": np.abs(errors).mean(axis=1).tolist(),
        "above": above.tolist(),
        "settled": ((above == 0.0) & ~lost).tolist(),
        "lost_line": lost.tolist(),
    }


def run(cfg: RunConfig, population: int, steps: int) -> tuple[object, dict]:
    loop = make_closed_loop(cfg, population=population, engine="auto")
    rec = loop.run(steps)
    return loop, rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/transfer"))
    ap.add_argument("--seeds", type=int, default=5, help="Robots per population.")
    ap.add_argument("--train-steps", type=int, default=30_000)
    ap.add_argument("--eval-steps", type=int, default=10_000)
    ap.add_argument("--last", type=int, default=5_000, help="Steps judged for settling.")
    ap.add_argument("--tracks", default=",".join(TRACK_NAMES))
    ap.add_argument("--seed", type=int, default=0, help="Seed of the training populations.")
    ap.add_argument(
        "--tables-only", action="store_true", help="Rewrite transfer.md from transfer.parquet."
    )
    args = ap.parse_args()
    tracks = args.tracks.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.tables_only:
        text = tables(pd.read_parquet(args.out / "transfer.parquet"), tracks, args)
        (args.out / "transfer.md").write_text(text)
        print(text)
        return
    rows: list[dict] = []
    base = RunConfig(steps=args.train_steps)
    t0 = time.perf_counter()

    def add(rule: str, train: str, test: str, stats: dict, extra: dict | None = None) -> None:
        for k in range(args.seeds):
            row = {"rule": rule, "train": train, "test": test, "robot": k}
            row.update({key: vals[k] for key, vals in stats.items()})
            row.update(extra or {})
            rows.append(row)

    # Evaluation starts: a different seed from training, the same for every network.
    eval_seed = args.seed + 1000
    for test in tracks:
        cfg = base.with_overrides(
            {
                "rule.name": "reflex",
                "world.track": test,
                "seed": eval_seed,
                "steps": args.eval_steps,
            }
        )
        _, rec = run(cfg, args.seeds, args.eval_steps)
        add("reflex", "-", test, evaluate(rec["error"], rec["off_track"], cfg, args.last))
        print(f"reflex on {test}: done ({time.perf_counter() - t0:.0f} s)", flush=True)
    for rule in RULES:
        for train in tracks:
            cfg = base.with_overrides({"rule.name": rule, "world.track": train, "seed": args.seed})
            loop, rec = run(cfg, args.seeds, args.train_steps)
            saved = args.out / f"{rule}-{train}.npz"
            loop.agent.save(saved)
            add(
                rule,
                train,
                f"{train} (training)",
                evaluate(rec["error"], rec["off_track"], cfg, args.last),
            )
            print(f"{rule} trained on {train} ({time.perf_counter() - t0:.0f} s)", flush=True)
            for test in tracks:
                ecfg = cfg.with_overrides(
                    {
                        "world.track": test,
                        "seed": eval_seed,
                        "steps": args.eval_steps,
                        "load": str(saved),
                        "freeze": True,
                    }
                )
                eloop, erec = run(ecfg, args.seeds, args.eval_steps)
                # The frozen weights provably did not move.
                assert np.all(eloop.agent.weight_change() == 0.0)
                add(rule, train, test, evaluate(erec["error"], erec["off_track"], ecfg, args.last))
            print(f"{rule} from {train} evaluated ({time.perf_counter() - t0:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    df.to_parquet(args.out / "transfer.parquet")
    text = tables(df, tracks, args)
    (args.out / "transfer.md").write_text(text)
    print(text)
    print(f"total {time.perf_counter() - t0:.0f} s")


def _cell(cell: pd.DataFrame, bold: bool = False) -> str:
    """``mean |e| (settled)``, plus the robots that lost the line, if any."""
    m = cell.mean_abs_error.mean()
    value = "<0.001" if 0 < m < 0.0005 else f"{m:.3f}"
    lost = int(cell.lost_line.sum())
    text = f"{value} ({int(cell.settled.sum())}" + (f", {lost} lost)" if lost else ")")
    return f"**{text}**" if bold else text


def tables(df: pd.DataFrame, tracks: list[str], args: argparse.Namespace) -> str:
    """Markdown: for each rule a matrix train track x test track, plus the reflex row."""
    out = [
        f"{args.seeds} robots per cell; training {args.train_steps:,} steps; frozen evaluation "
        f"{args.eval_steps:,} steps from new starts; settling judged on the last {args.last:,}.",
        "",
    ]
    reflex = df[df.rule == "reflex"].groupby("test")
    for rule in RULES:
        sub = df[(df.rule == rule) & ~df.test.str.endswith("(training)")]
        out.append(
            f"**{rule}**: mean |e| (settled robots of {args.seeds}, robots that lost the "
            "line); rows: trained on, columns: driven frozen on"
        )
        out.append("")
        out.append("| trained on | " + " | ".join(tracks) + " |")
        out.append("|---|" + "---|" * len(tracks))
        g = sub.groupby(["train", "test"])
        for train in tracks:
            cells = [_cell(g.get_group((train, test)), train == test) for test in tracks]
            out.append(f"| {train} | " + " | ".join(cells) + " |")
        cells = [_cell(reflex.get_group(test)) for test in tracks]
        out.append("| *reflex alone* | " + " | ".join(cells) + " |")
        tr = df[(df.rule == rule) & df.test.str.endswith("(training)")]
        cells = [_cell(tr[tr.train == train]) for train in tracks]
        out.append("| *while learning* | " + " | ".join(cells) + " |")
        out.append("")
        out.append(f"Fraction of the last {args.last:,} steps above threshold, mean over robots:")
        out.append("")
        out.append("| trained on | " + " | ".join(tracks) + " |")
        out.append("|---|" + "---|" * len(tracks))
        for train in tracks:
            cells = [f"{g.get_group((train, test)).above.mean():.2f}" for test in tracks]
            out.append(f"| {train} | " + " | ".join(cells) + " |")
        cells = [f"{reflex.get_group(test).above.mean():.2f}" for test in tracks]
        out.append("| *reflex alone* | " + " | ".join(cells) + " |")
        out.append("")
    frozen = df[(df.rule != "reflex") & ~df.test.str.endswith("(training)")]
    out.append(
        f"Robots that lost the line while frozen: {int(frozen.lost_line.sum())} of {len(frozen)}."
    )
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
