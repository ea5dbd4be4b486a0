"""The generalisation benchmark: learners on generated tracks, against the reflex alone.

Runs the sweep spec ``benchmarks/generalisation.toml`` (SaR's default, GDM at a fixed rate, the
shallow relevance-only learner and the reflex alone, with ground-sensor rows and with camera
input) on ``--n-tracks`` generated tracks of the tuning or the evaluation seeds x ``--seeds``
seeds, through the library's sweep machinery (parallel, resumable: run the same command again
and finished runs are skipped). Then it writes, into ``--out``:

- ``generalisation.md``: one table, per learner and inputs, over all tracks, over the tracks
  the centreline oracle settles (``sarlearn.stages.world.feasibility``), and broken down by line
  width, contrast, floor texture, smallest bend radius and distractors: runs, settled, harm
  ratio (median, and the share of runs at most 1), runs with a dead (wholly saturated) layer,
  median steering flips per 1,000 steps, runs with large-amplitude chatter, runs off track;
- ``generalisation.png``: settled share and share of runs with harm ratio <= 1 per level of
  each factor;
- ``runs.csv``: one row per run with its track's parameters and every measure;
- ``tracks.json``: what each track drew and the oracle's verdict (computed once).

Measures (docs/generalisation.md): ``settled`` is the project's settled measure (the moving
sum of |e| below threshold at every one of the last 5,000 steps); the **harm ratio** is the
mean |e| over the last 5,000 steps (``--steps`` / 2 if shorter) divided by the reflex alone's
on the same track and seed (1 when both are 0; infinite when the learner leaves the line and
the reflex does not; undefined, and left out, when the reflex leaves it); a *dead layer* is a
layer wholly saturated over the last 1,000 steps; *chatter* is steering at more than 90 % of
its range in at least 10 % of the judged steps.

    PYTHONPATH=src python benchmarks/generalisation.py --out /tmp/gen --n-tracks 4 --seeds 2 \
        --steps 3000 --inputs rows
    PYTHONPATH=src python benchmarks/generalisation.py --out runs/gen-eval     # the full size
    PYTHONPATH=src python benchmarks/generalisation.py --out runs/gen-tune --tracks tuning \
        --rules sar --sar-lr 0.3 --sar-lr 1 --sar-set rule.weight_bound=3   # an ablation
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sarlearn.config import parse_assignment
from sarlearn.errors import ConfigError, SarlearnError
from sarlearn.stages.world.family import EVALUATION_SEEDS, TUNING_SEEDS, parse_name
from sarlearn.stages.world.feasibility import judge_generated
from sarlearn.store.store import ResultStore
from sarlearn.sweeps.spec import SweepSpec, expand_values, load_spec
from sarlearn.sweeps.sweep import run_sweep

SPEC = Path(__file__).with_name("generalisation.toml")
RULES = ("sar", "gdm", "relevance-only", "reflex")
#: Judged steps of the harm ratio (the settled measure's window).
HARM_WINDOW = 5000
#: A run chatters at large amplitude when its steering is above 90 % of its range in at least
#: this share of the judged steps (``saturated_steering_fraction``).
CHATTER = 0.1

#: Breakdown bins: (factor, column of the track table, bin edges or None for categories).
BINS: dict[str, list[float]] = {
    "width": [0.0, 3.0, 5.0, 7.0, 100.0],
    "contrast": [0.0, 0.6, 0.8, 1.01],
    "min_radius": [0.0, 20.0, 30.0, 45.0, 1e9],
}


# ---------------------------------------------------------------------- planning


def track_names(which: str, n: int, first: int = 0, overrides: Sequence[str] = ()) -> list[str]:
    """The names of ``n`` generated tracks of the tuning or evaluation seeds, from ``first``,
    each with the drawing ``overrides`` (``["width=8.5"]`` -> ``"random:20,width=8.5"``)."""
    seeds = {"tuning": TUNING_SEEDS, "evaluation": EVALUATION_SEEDS}[which]
    if first + n > len(seeds):
        raise ConfigError(
            f"--first {first} + --n-tracks {n} exceeds the {len(seeds)} {which} seeds"
        )
    tail = "".join(f",{o.strip()}" for o in overrides)
    names = [f"random:{s}{tail}" for s in seeds[first : first + n]]
    if names and tail:
        parse_name(names[0])  # a bad override is a TrackError naming it
    return names


def judge_tracks(names: Sequence[str], out: Path, jobs: int) -> dict[str, dict[str, Any]]:
    """What each track drew and the oracle's verdict, cached in ``out / tracks.json``."""
    path = out / "tracks.json"
    known: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.exists() else {}
    todo = [n for n in names if n not in known]
    if len(todo) == 1 or jobs == 1:
        known.update({name: judge_generated(name) for name in todo})
    elif todo:
        with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
            for name, info in zip(todo, pool.map(judge_generated, todo, chunksize=4), strict=True):
                known[name] = info
    if todo:
        out.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(known, indent=1, sort_keys=True))
    return {n: known[n] for n in names}


def build_spec(args: argparse.Namespace, names: Sequence[str]) -> SweepSpec:
    """The spec of ``args.spec`` with the tracks, seeds, steps, inputs, rules and rates asked."""
    spec = load_spec(args.spec)
    base = {**spec.base, "steps": args.steps}
    for text in args.set or []:
        key, value = parse_assignment(text)
        base[key] = value
    grid = {
        **spec.grid,
        "world.track": list(names),
        "seed": list(range(args.seeds)),
        "world.inputs": list(args.inputs),
    }
    cases = []
    for case in spec.cases:
        rule = case.get("rule.name", ["sar"])[0]
        if is_reflex({k: v[0] for k, v in case.items()}):
            rule = "reflex"  # always run: it is what the harm ratio divides by
            if args.reflex_rule:  # the project's own reflex-alone rule (numpy loop, slower)
                case = {"rule.name": ["reflex"], "world.inputs": ["rows"]}
        elif rule not in args.rules:
            continue
        case = dict(case)
        if rule == "sar":
            if args.sar_lr:
                case["rule.lr"] = list(args.sar_lr)
            for text in args.sar_set or []:
                key, value = parse_assignment(text)
                case[key] = expand_values(value, f"--sar-set {text}")
        if rule == "gdm" and args.gdm_lr:
            case["rule.lr"] = list(args.gdm_lr)
        cases.append(case)
    return replace(spec, base=base, grid=grid, cases=cases, source=str(args.spec))


# ---------------------------------------------------------------------- measuring


def is_reflex(params: dict[str, Any]) -> bool:
    """Whether a run is the reflex alone: rule "reflex", or any rule with no network gain."""
    return params.get("rule.name") == "reflex" or params.get("world.net_gain") == 0


def learner_label(params: dict[str, Any]) -> str:
    """A run's learner from the grid values that made it: the rule, then its other settings."""
    if is_reflex(params):
        return "reflex"
    rule = params.get("rule.name", "sar")
    bits = [rule]
    if params.get("network.layers") == [2]:
        bits.append("shallow")
    for key, value in sorted(params.items()):
        if key in ("rule.name", "network.layers", "world.track", "seed", "world.inputs"):
            continue
        short = "η" if key == "rule.lr" else key.removeprefix("rule.")
        bits.append(f"{short} {value:g}" if isinstance(value, float) else f"{short} {value}")
    return " ".join(bits)


def run_table(out: Path, planned: set[str] | None = None) -> pd.DataFrame:
    """One row per run of the sweep in ``out`` (``planned`` run ids only, if given), with the
    harm ratio and the track's parameters."""
    store = ResultStore(out)
    res = store.load()
    if planned is not None:
        res = res[res["run_id"].isin(planned)]
    res = res[res["status"] == "ok"].copy()
    if res.empty:
        raise SarlearnError(f"{out}: no finished runs to report")
    params = [json.loads(p) for p in res["params_json"]]
    configs = [json.loads(c) for c in res["config_json"]]
    res["learner"] = [learner_label(p) for p in params]
    res["inputs"] = [c["world"]["inputs"] for c in configs]
    res["off_track"] = res["run_status"] == "off_track"
    traces = store.load_traces(list(res["run_id"]), columns=["abs_error"])
    last = {}
    for run_id, trace in traces.groupby("run_id"):
        steps = int(res.loc[res["run_id"] == run_id, "steps"].iloc[0])
        window = min(HARM_WINDOW, steps // 2)
        tail = trace[trace["step"] >= steps - window]["abs_error"]
        last[run_id] = float(tail.mean()) if len(tail) else math.nan
    res["mean_abs_error_last"] = res["run_id"].map(last)
    res["harm_ratio"] = harm_ratios(
        res["learner"], res["track"], res["seed"], res["mean_abs_error_last"], res["off_track"]
    )
    res["dead"] = res["dead_layers"].fillna(0) > 0
    res["chatter"] = res["saturated_steering_fraction"].fillna(0) >= CHATTER
    return res


def harm_ratios(
    learner: pd.Series, track: pd.Series, seed: pd.Series, last: pd.Series, off: pd.Series
) -> list[float]:
    """Each run's mean |e| over the judged steps (``last``) divided by the reflex alone's on
    the same track and seed: 1 when both are 0, infinite when the reflex's is 0 and the run's
    is not or when the run left the line, NaN with no reflex run or when the reflex left it."""
    is_reflex = (learner == "reflex").to_numpy()
    keys = list(zip(track, seed, strict=True))
    ref_e = {k: e for k, e, r in zip(keys, last, is_reflex, strict=True) if r}
    ref_off = {k: o for k, o, r in zip(keys, off, is_reflex, strict=True) if r}
    out = []
    for key, e, gone in zip(keys, last, off, strict=True):
        if key not in ref_e or ref_off[key] or math.isnan(ref_e[key]):
            out.append(math.nan)
        elif gone:
            out.append(math.inf)
        elif ref_e[key] == 0:
            out.append(1.0 if e == 0 else math.inf)
        else:
            out.append(float(e / ref_e[key]))
    return out


def add_tracks(runs: pd.DataFrame, tracks: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Join each run's track parameters (width, contrast, texture, min radius, distractors,
    feasible) and their breakdown levels."""
    cols = ["width", "contrast", "texture", "noise", "gaps", "min_radius", "marks", "frame",
            "second", "feasible", "followed"]  # fmt: skip
    info = pd.DataFrame([{"track": n, **{c: t[c] for c in cols}} for n, t in tracks.items()])
    runs = runs.merge(info, on="track", how="left")
    for col, edges in BINS.items():
        labels = [_bin_label(lo, hi) for lo, hi in itertools.pairwise(edges)]
        runs[f"{col}_level"] = pd.cut(runs[col], edges, labels=labels, right=False).astype(str)
    runs["texture_level"] = np.where(
        (runs["texture"] > 0) | (runs["noise"] > 0), "textured", "clean"
    )
    runs["distractors_level"] = [
        ", ".join(
            [n for n, on in (("marks", m > 0), ("frame", f), ("second line", s)) if on]
        ) or "none"
        for m, f, s in zip(runs["marks"], runs["frame"], runs["second"], strict=True)
    ]  # fmt: skip
    return runs


def _bin_label(lo: float, hi: float) -> str:
    if lo == 0:
        return f"< {hi:g}"
    if hi >= 100:
        return f">= {lo:g}"
    return f"{lo:g}-{hi:g}"


def summarise(group: pd.DataFrame) -> dict[str, Any]:
    """The table's cells for one group of runs of one learner."""
    learners = group[group["learner"] != "reflex"]
    harm = group["harm_ratio"].dropna()
    reflex = (group["learner"] == "reflex").all()
    return {
        "runs": len(group),
        "settled": _share(group["settled"]),
        "harm <= 1": "-" if reflex else _share(harm <= 1.0),
        "median harm": "-" if reflex or harm.empty else f"{harm.median():.2f}",
        "worst harm": "-" if reflex or harm.empty else f"{harm.max():.2f}",
        "dead layer": "-" if reflex else _share(learners["dead"]),
        "median flips": "-" if reflex else f"{group['steering_flips_per_1000'].median():.0f}",
        "chatter": "-" if reflex else _share(learners["chatter"]),
        "off track": _share(group["off_track"]),
    }


def _share(flags: pd.Series) -> str:
    n = len(flags)
    return "-" if n == 0 else f"{int(flags.sum())}/{n}"


GROUPS = (
    ("width", "width_level"),
    ("contrast", "contrast_level"),
    ("texture", "texture_level"),
    ("min radius", "min_radius_level"),
    ("distractors", "distractors_level"),
)


def table(runs: pd.DataFrame) -> str:
    """The markdown table (see the module docstring)."""
    rows = []
    order = sorted(runs.groupby(["learner", "inputs"]).groups, key=_learner_order)
    n_tracks = runs["track"].nunique()
    feasible_tracks = runs.loc[runs["feasible"], "track"].nunique()
    groups = [("all tracks", f"{n_tracks} tracks", runs)]
    groups.append(("feasible tracks", f"{feasible_tracks} tracks", runs[runs["feasible"]]))
    for factor, col in GROUPS:
        for level, sub in sorted(runs.groupby(col), key=lambda kv: _level_order(kv[0])):
            nt = sub["track"].nunique()
            nf = sub.loc[sub["feasible"], "track"].nunique()
            groups.append((factor, f"{level} ({nt} tracks, {nf} feasible)", sub))
    for factor, level, sub in groups:
        for learner, inputs in order:
            cell = sub[(sub["learner"] == learner) & (sub["inputs"] == inputs)]
            if cell.empty:
                continue
            rows.append({"factor": factor, "level": level, "learner": learner,
                         "inputs": inputs, **summarise(cell)})  # fmt: skip
    frame = pd.DataFrame(rows)
    head = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = ["| " + " | ".join(str(v) for v in r) + " |" for r in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _learner_order(key: tuple[str, str]) -> tuple[int, str, str]:
    learner, inputs = key
    rank = next((i for i, r in enumerate(RULES) if learner.split()[0] == r), len(RULES))
    return rank, learner, inputs


def _level_order(level: str) -> tuple[int, float, str]:
    text = level.lstrip("<>= ")
    try:
        number = float(text.split("-")[0])
    except ValueError:
        return (1, 0.0, level)
    return (0, number + (-1e-9 if level.startswith("<") else 0.0), level)


def figure(runs: pd.DataFrame, path: Path) -> Path:
    """Settled share and share of runs with harm ratio <= 1, per level of each factor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(GROUPS), figsize=(4 * len(GROUPS), 7), sharey=True)
    keys = sorted(runs.groupby(["learner", "inputs"]).groups, key=_learner_order)
    for j, (factor, col) in enumerate(GROUPS):
        levels = sorted(runs[col].unique(), key=_level_order)
        x = np.arange(len(levels))
        width = 0.8 / max(1, len(keys))
        for k, (learner, inputs) in enumerate(keys):
            sel = runs[(runs["learner"] == learner) & (runs["inputs"] == inputs)]
            settled = [sel.loc[sel[col] == lv, "settled"].mean() for lv in levels]
            harm = [(sel.loc[sel[col] == lv, "harm_ratio"].dropna() <= 1.0).mean() for lv in levels]
            label = f"{learner} ({inputs})"
            axes[0, j].bar(x + k * width - 0.4, settled, width, align="edge", label=label)
            if learner != "reflex":
                axes[1, j].bar(x + k * width - 0.4, harm, width, align="edge", label=label)
        for i in (0, 1):
            axes[i, j].set_xticks(x, levels, rotation=30, ha="right", fontsize=8)
            axes[i, j].set_ylim(0, 1.02)
        axes[0, j].set_title(factor)
    axes[0, 0].set_ylabel("settled (share of runs)")
    axes[1, 0].set_ylabel("harm ratio <= 1 (share of runs)")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="sweep folder (resumable)")
    p.add_argument("--spec", type=Path, default=SPEC, help="the sweep spec (learners, base)")
    p.add_argument("--tracks", choices=("tuning", "evaluation"), default="evaluation")
    p.add_argument("--n-tracks", type=int, default=100, help="generated tracks (default 100)")
    p.add_argument("--first", type=int, default=0, help="skip this many seeds of the range")
    p.add_argument("--track-set", action="append", default=[], metavar="KEY=VALUE",
                   help="draw every track with this generator setting, e.g. width=8.5 "
                   "(repeat; docs/world.md)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=3, help="run seeds per track (default 3)")
    p.add_argument("--steps", type=int, default=20_000, help="steps per run (default 20,000)")
    p.add_argument("--inputs", nargs="+", default=["rows", "camera"], choices=("rows", "camera"))
    p.add_argument("--rules", nargs="+", default=list(RULES[:-1]), choices=RULES[:-1],
                   help="learners (the reflex alone always runs)")  # fmt: skip
    p.add_argument("--sar-lr", type=float, action="append", help="SaR's rates (repeat)")
    p.add_argument("--gdm-lr", type=float, action="append", help="GDM's rates (default 0.3)")
    p.add_argument(
        "--sar-set",
        action="append",
        metavar="KEY=VALUE",
        help="a config value for the SaR runs only (a list value: one run each)",
    )
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="a config value, all runs")
    p.add_argument("--reflex-rule", action="store_true",
                   help="run the reflex alone as rule 'reflex' (numpy loop) rather than a "
                   "learner with world.net_gain = 0 in the compiled engine")  # fmt: skip
    p.add_argument("--feasible-only", action="store_true",
                   help="only the tracks the centreline oracle settles (the first --n-tracks "
                   "of them from --first on)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: all cores)")
    p.add_argument("--report-only", action="store_true", help="report what the folder holds")
    args = p.parse_args(argv)
    for name in ("n_tracks", "seeds", "steps"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    jobs = args.jobs or 2
    t0 = time.perf_counter()
    try:
        if args.feasible_only:
            names, first = [], args.first
            while len(names) < args.n_tracks:
                batch = track_names(args.tracks, args.n_tracks - len(names), first, args.track_set)
                first += len(batch)
                names += [
                    n for n, t in judge_tracks(batch, args.out, jobs).items() if t["feasible"]
                ]
        else:
            names = track_names(args.tracks, args.n_tracks, args.first, args.track_set)
        tracks = judge_tracks(names, args.out, jobs)
        t_tracks = time.perf_counter() - t0
        spec = build_spec(args, names)
        planned = {r.run_id for r in spec.expand()}
        if not args.report_only:
            summary = run_sweep(spec, args.out, jobs=args.jobs, trace_every=10, progress=True)
            print(f"sweep: {summary.planned} planned, {summary.skipped} already done", flush=True)
        t_runs = time.perf_counter() - t0 - t_tracks
        runs = add_tracks(run_table(args.out, planned), tracks)
    except (SarlearnError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    runs.drop(columns=["params_json", "config_json", "summary_json"], errors="ignore").to_csv(
        args.out / "runs.csv", index=False
    )
    text = table(runs)
    cmd = "PYTHONPATH=src python benchmarks/generalisation.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    feasible = sum(t["feasible"] for t in tracks.values())
    header = (
        f"Generalisation benchmark: {len(names)} {args.tracks} tracks ({feasible} feasible) x "
        f"{args.seeds} seeds x {args.steps:,} steps, inputs {', '.join(args.inputs)}; "
        f"tracks judged in {t_tracks:.0f} s, runs in {t_runs:.0f} s.\n\n`{cmd}`\n"
    )
    (args.out / "generalisation.md").write_text(header + "\n" + text + "\n")
    figure(runs, args.out / "generalisation.png")
    print(header)
    print(text)
    print(f"\nwrote {args.out / 'generalisation.md'}, {args.out / 'generalisation.png'}, "
          f"{args.out / 'runs.csv'}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
