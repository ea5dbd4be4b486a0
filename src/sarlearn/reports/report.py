"""From a sweep folder to figures and tables: what learned, how fast, at which learning rate.

Runs are grouped by rule plus every config field that varies within a rule in the sweep
(except the learning rate and the seed, which are the axes we summarise over), so a sweep of
relevance gains or tracks gets one line per setting without being told.

Conventions, stated in the report too:

- a run *succeeds* if it reached the success criterion; a run that never did, or that raised,
  is a failure and has no steps-to-success (it is never counted as 0);
- median and quartiles (linear interpolation) of steps to success are over the successful
  runs; ``median_fail_inf`` is the median over all runs with failures as infinity (missing
  when half or more failed);
- the best learning rate of a group has the highest success rate, then the lowest median
  steps to success (then, if nothing succeeded, the lowest final error).

Only the figures the data supports are drawn (no depth figure for one depth, no traces if
the sweep kept none).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sarlearn.atomic import atomic_write_bytes
from sarlearn.reports.sweep_figures import FIGURES, draw_figures
from sarlearn.store.store import BULKY, MergedStore, ResultStore

#: Summarised over, so never part of a group label.
AXES = ("rule.name", "rule.lr", "seed")
_SHORT = {"network.layers": "layers", "world.track": "track"}


class ReportError(ValueError):
    """The folder holds no sweep results to report on."""


@dataclass
class Report:
    """What :func:`make_report` wrote, and its tables."""

    out_dir: Path
    markdown: Path
    figures: list[Path] = field(default_factory=list)
    lr_table: pd.DataFrame | None = None
    best_lr: pd.DataFrame | None = None
    best_lr_settled: pd.DataFrame | None = None
    depth_table: pd.DataFrame | None = None


def make_report(
    sweep_dir: str | Path | Sequence[str | Path], out_dir: str | Path | None = None
) -> Report:
    """Write ``report.md``, CSV tables and PNG figures for the sweep in ``sweep_dir``.

    ``sweep_dir`` may be several folders (e.g. the shards of a cluster sweep): their results
    and traces are merged, a run id found in several counting by its latest attempt (see
    :class:`~sarlearn.store.store.MergedStore`). ``out_dir`` defaults to the (first)
    folder's ``report/``. Raises :class:`ReportError` if there are no results.
    """
    dirs = [Path(sweep_dir)] if isinstance(sweep_dir, str | Path) else [Path(d) for d in sweep_dir]
    if not dirs:
        raise ReportError("no sweep folder given")
    for d in dirs:
        if not d.is_dir():
            raise ReportError(f"no sweep folder at {d}")
    store = ResultStore(dirs[0]) if len(dirs) == 1 else MergedStore(dirs)
    # Every column but the long texts; the configs are read for the group labels only.
    results = store.load(latest=True, without=[c for c in BULKY if c != "config_json"])
    if results.empty:
        if len(dirs) == 1:
            msg = f"{dirs[0]} holds no results (run `sarlearn sweep` into it first)"
        else:
            msg = f"none of the {len(dirs)} folders holds results (run `sarlearn sweep` first)"
        raise ReportError(msg)
    out = Path(out_dir) if out_dir is not None else dirs[0] / "report"
    out.mkdir(parents=True, exist_ok=True)
    results = add_groups(results).drop(columns="config_json")
    report = Report(out, out / "report.md")
    report.lr_table = lr_table(results)
    report.best_lr = best_lr_table(report.lr_table)
    report.best_lr_settled = best_lr_table(report.lr_table, measure="settled")
    report.depth_table = depth_table(results)

    tables = {
        "lr": report.lr_table,
        "best_lr": report.best_lr,
        "best_lr_settled": report.best_lr_settled,
        "depth": report.depth_table,
    }
    for name, table in tables.items():
        if table is not None:
            _save_csv(table, out / f"table_{name}.csv")
    report.figures = draw_figures(
        results, out, report.lr_table, report.best_lr, report.depth_table, store
    )
    manifest = store.read_manifest()
    text = _markdown(dirs, results, report, manifest)
    atomic_write_bytes(report.markdown, text.encode())
    return report


# -- grouping -------------------------------------------------------------------------------


def add_groups(results: pd.DataFrame) -> pd.DataFrame:
    """Add ``group`` (rule + fields varying within a rule) and ``depth_group`` (the same
    without the layer sizes) label columns.

    The configs are read one at a time, twice (which fields vary, then the labels), so the
    memory does not grow with a table of every field of every run.
    """
    rules = [str(r) for r in results["rule"]]
    varying = _varying_fields(rules, results["config_json"])
    depth_fields = [c for c in varying if c != "network.layers"]
    groups, depth_groups = [], []
    for rule, text in zip(rules, results["config_json"], strict=True):
        flat = _flatten(json.loads(text))
        groups.append(_label(rule, flat, varying))
        depth_groups.append(_label(rule, flat, depth_fields))
    out = results.copy()
    out["group"] = groups
    out["depth_group"] = depth_groups
    return out


def _varying_fields(rules: Sequence[str], configs: Iterable[str]) -> list[str]:
    """The config fields (dotted) that take more than one value within some rule, axes
    aside; a field missing from some configs counts a missing value as one more value."""
    first: dict[tuple[str, str], Any] = {}
    present: dict[tuple[str, str], int] = {}
    rows: dict[str, int] = {}
    order: dict[str, None] = {}
    varying: set[str] = set()
    for rule, text in zip(rules, configs, strict=True):
        rows[rule] = rows.get(rule, 0) + 1
        for field_name, value in _flatten(json.loads(text)).items():
            if field_name in AXES:
                continue
            order.setdefault(field_name)
            key = (rule, field_name)
            present[key] = present.get(key, 0) + 1
            value = _normal(value)
            if key not in first:
                first[key] = value
            elif value != first[key]:
                varying.add(field_name)
    for (rule, field_name), n in present.items():
        if n < rows[rule] and first[(rule, field_name)] is not None:
            varying.add(field_name)  # missing in some configs of the rule
    return [f for f in order if f in varying]


def _normal(value: Any) -> Any:
    """A value as the grouping compares it: None and NaN are one "missing" value."""
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def _label(rule: str, flat: dict[str, Any], fields: Sequence[str]) -> str:
    return rule + "".join(f" {_SHORT.get(f, f)}={_label_value(flat.get(f))}" for f in fields)


def _label_value(v: Any) -> str:
    """A field's value in a group label; unset fields (None, e.g. the rule's default lr or
    no per-layer rates) read 'default' instead of turning the whole label into NaN."""
    return "default" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, list):
            flat[f"{prefix}{k}"] = ",".join(map(str, v))  # hashable and readable
        else:
            flat[f"{prefix}{k}"] = v
    return flat


# -- tables ---------------------------------------------------------------------------------


def run_stats(results: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Per ``keys``: n, n_error, n_success, success_rate and steps-to-success statistics."""
    rows = []
    for key, g in results.groupby(list(keys), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        steps = g.loc[g["success"], "steps_to_success"].astype("float64")
        n = len(g)
        n_success = len(steps)
        with_fail = np.sort(np.concatenate([steps, np.full(n - n_success, np.inf)]))
        med_all = float(np.median(with_fail)) if n_success > n / 2 else math.nan
        last = g["mean_abs_error_last_1000"].dropna()
        settled = _column(g, "settled").fillna(False).astype(bool)
        settled_steps = _column(g, "settled_step")[settled].dropna().astype("float64")
        relapses = _column(g, "relapses")[g["success"]].dropna().astype("float64")
        dead = _column(g, "dead_layers").dropna()
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "rule": g["rule"].iloc[0],
                "n": n,
                "n_error": int((g["status"] == "error").sum()),
                "n_success": n_success,
                "success_rate": n_success / n,
                "median": steps.median() if n_success else math.nan,
                "q1": steps.quantile(0.25) if n_success else math.nan,
                "q3": steps.quantile(0.75) if n_success else math.nan,
                "median_fail_inf": med_all,
                "abs_error_last_1000": last.median() if len(last) else math.nan,
                "n_settled": int(settled.sum()),
                "settled_rate": float(settled.sum()) / n,
                "settled_median": settled_steps.median() if len(settled_steps) else math.nan,
                "relapses_median": relapses.median() if len(relapses) else math.nan,
                "above_fraction_median": _median(g, "above_threshold_fraction"),
                "flips_median": _median(g, "steering_flips_per_1000"),
                "saturated_steering_median": _median(g, "saturated_steering_fraction"),
                "n_dead_layer": int((dead.astype("int64") > 0).sum()),
            }
        )
    return pd.DataFrame(rows)


def _column(g: pd.DataFrame, name: str) -> pd.Series:
    """A results column, all-missing when the store predates it."""
    return g[name] if name in g else pd.Series(pd.NA, index=g.index, dtype="object")


def _median(g: pd.DataFrame, name: str) -> float:
    values = pd.to_numeric(_column(g, name), errors="coerce").dropna()
    return float(values.median()) if len(values) else math.nan


def lr_table(results: pd.DataFrame) -> pd.DataFrame:
    """Statistics per group and learning rate (``results`` needs :func:`add_groups`)."""
    return run_stats(results, ["group", "lr"])


def best_lr_table(
    table: pd.DataFrame, by: Sequence[str] = ("group",), measure: str = "success"
) -> pd.DataFrame:
    """The row of the best learning rate of each ``by`` group of a :func:`run_stats` table.

    ``measure="success"`` ranks by success rate, then median steps to success (the paper's
    first passage); ``measure="settled"`` by settled rate, then median settled step.
    """
    if measure not in ("success", "settled"):
        raise ValueError(f"measure must be 'success' or 'settled', got {measure!r}")
    rate, med = (
        ("success_rate", "median") if measure == "success" else ("settled_rate", "settled_median")
    )
    ranked = table.assign(
        _miss=table[med].isna(), _med=table[med], _err=table["abs_error_last_1000"].fillna(np.inf)
    ).sort_values(
        [*by, rate, "_miss", "_med", "_err"],
        ascending=[*(True for _ in by), False, True, True, True],
        kind="stable",
    )
    best = ranked.groupby(list(by), sort=True).head(1).drop(columns=["_miss", "_med", "_err"])
    return best.rename(columns={"lr": "best_lr"}).reset_index(drop=True)


def depth_table(results: pd.DataFrame) -> pd.DataFrame | None:
    """Per depth group and number of hidden layers, the statistics at the best lr there;
    None if the sweep has a single depth."""
    if results["n_hidden"].nunique() < 2:
        return None
    stats = run_stats(results, ["depth_group", "n_hidden", "lr"])
    return best_lr_table(stats, by=("depth_group", "n_hidden"))


# -- figures --------------------------------------------------------------------------------


def _save_csv(table: pd.DataFrame, path: Path) -> None:
    atomic_write_bytes(path, table.to_csv(index=False).encode())


# -- markdown -------------------------------------------------------------------------------


def _markdown(
    dirs: Sequence[Path], results: pd.DataFrame, report: Report, manifest: dict[str, Any] | None
) -> str:
    n = len(results)
    n_err = int((results["status"] == "error").sum())
    n_succ = int(results["success"].sum())
    n_settled = int(_column(results, "settled").fillna(False).astype(bool).sum())
    if len(dirs) == 1:
        lines = [f"# Sweep report: {dirs[0].name}", ""]
    else:
        parent = Path(os.path.commonpath([d.resolve() for d in dirs])).name
        lines = [f"# Sweep report: {parent} ({len(dirs)} folders merged)", ""]
        lines += [f"Merged from: {', '.join(d.name for d in dirs)}.", ""]
    lines.append(
        f"{n} runs: {n_succ} reached the success criterion, {n - n_err - n_succ} ran without "
        f"reaching it, {n_err} raised an error; {n_settled} settled (their last "
        "settle_window steps all below the threshold)."
    )
    outcomes = results["run_status"].dropna().value_counts()
    if len(outcomes):
        listed = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        lines.append(f"How the runs ended (their own status): {listed}.")
    if manifest:
        pending = {r["run_id"] for r in manifest.get("runs", [])} - set(results["run_id"])
        if pending:
            lines.append(f"{len(pending)} runs of the last sweep plan are not done yet.")
        one = [manifest["shard"]] if manifest.get("shard") else []
        lines += _missing_shards(manifest.get("shards", one))
    lines += [
        "",
        "Failures (no success, or an error) have no steps to success; median and quartiles "
        "are over the successful runs; `median (fail=inf)` counts failures as infinitely slow "
        "(blank when half or more failed).",
        "",
        "Stricter measures (sarlearn.metrics): `n settled` counts runs whose last "
        "`settle_window` steps (default 5,000, clipped to the run after warm-up) were all "
        "below the threshold; `settled step` is the median, over settled runs, of the step "
        "from which a run stayed below to the end; `relapses` the median, over successful "
        "runs, of returns above threshold after the first success; `above` the median "
        "fraction of the settling window above threshold; `flips/1000` and `sat. steer` the "
        "medians of steering sign flips per 1,000 steps and of the fraction of steps with "
        "|y| > 0.9 of its maximum (both over the last settle_window steps); `dead layer` the "
        "runs that ended with a wholly saturated layer.",
        "",
        "## Steps to success per group and learning rate",
        "",
    ]
    lines += _md_table(report.lr_table, ["group", "lr"])
    lines += ["", "## Best learning rate per group", ""]
    lines += _md_table(report.best_lr, ["group", "best_lr"])
    lines += ["", "## Best learning rate per group, by settling", ""]
    lines += _md_table(report.best_lr_settled, ["group", "best_lr"])
    if report.depth_table is not None:
        lines += ["", "## Depth (at the best learning rate of each depth)", ""]
        lines += _md_table(report.depth_table, ["depth_group", "n_hidden", "best_lr"])
    errors = results[results["status"] == "error"]
    if len(errors):
        lines += ["", "## Errors", "", "| error | runs | example message |", "|---|---|---|"]
        for etype, g in errors.groupby("error_type", sort=True):
            msg = str(g["error_message"].iloc[0]).replace("|", "\\|").replace("\n", " ")[:200]
            lines.append(f"| {etype} | {len(g)} | {msg} |")
    if report.figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{p.stem}]({p.name})" for p in report.figures]
    return "\n".join(lines) + "\n"


def _missing_shards(shards: Sequence[Sequence[int]]) -> list[str]:
    """A warning per shard count ``n`` of which not every shard ``0..n-1`` is merged."""
    lines = []
    for n in sorted({n for _, n in shards}):
        have = {i for i, m in shards if m == n}
        if len(have) < n:
            missing = sorted(set(range(n)) - have)
            listed = ", ".join(f"{i}/{n}" for i in missing[:10])
            listed += " ..." if len(missing) > 10 else ""
            lines.append(f"{len(missing)} of {n} shards are not in this report: {listed}.")
    return lines


_STAT_COLUMNS = [
    ("n", "n"),
    ("n_success", "n success"),
    ("n_error", "n error"),
    ("success_rate", "success rate"),
    ("median", "median"),
    ("q1", "q1"),
    ("q3", "q3"),
    ("median_fail_inf", "median (fail=inf)"),
    ("abs_error_last_1000", "mean abs e last 1000 (median)"),
    ("n_settled", "n settled"),
    ("settled_median", "settled step"),
    ("relapses_median", "relapses"),
    ("above_fraction_median", "above"),
    ("flips_median", "flips/1000"),
    ("saturated_steering_median", "sat. steer"),
    ("n_dead_layer", "dead layer"),
]


def _md_table(table: pd.DataFrame | None, keys: Sequence[str]) -> list[str]:
    if table is None or table.empty:
        return ["(no data)"]
    heads = [*keys, *(h for _, h in _STAT_COLUMNS)]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for _, row in table.iterrows():
        cells = [_fmt(row[k], k) for k in keys]
        cells += [_fmt(row[c], c) for c, _ in _STAT_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _fmt(value: Any, column: str) -> str:
    if isinstance(value, str):
        return value.replace("|", "\\|")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column in ("lr", "best_lr"):
        return f"{value:.3g}"
    if column in (
        "success_rate",
        "abs_error_last_1000",
        "above_fraction_median",
        "saturated_steering_median",
    ):
        return f"{value:.3f}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.2f}"


__all__ = [
    "FIGURES",
    "Report",
    "ReportError",
    "add_groups",
    "best_lr_table",
    "depth_table",
    "lr_table",
    "make_report",
    "run_stats",
]
