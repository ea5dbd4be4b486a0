"""The figures of a sweep report: steps and success against the learning rate, depth, the
error and the weight change over time, drawn with matplotlib's object API."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from sarlearn.atomic import atomic_write_with
from sarlearn.store.store import MergedStore, ResultStore

#: Every figure the report may draw.
FIGURES = (
    "steps_vs_lr.png",
    "success_vs_lr.png",
    "depth.png",
    "error_traces.png",
    "weight_change.png",
    "weight_change_time.png",
)


_FIGSIZE = (6.0, 4.0)


_DPI = 100


def draw_figures(
    results: pd.DataFrame,
    out: Path,
    lr_tab: pd.DataFrame,
    best: pd.DataFrame,
    depth: pd.DataFrame | None,
    store: ResultStore | MergedStore,
) -> list[Path]:
    """Draw the figures the data supports into ``out``; returns their paths.

    The trace figures read at most :data:`MAX_TRACE_RUNS` runs per curve (and only the
    columns they draw), so their memory does not grow with the sweep.
    """
    made: list[Path] = []
    for name in FIGURES:  # a figure the data no longer supports must not linger
        (out / name).unlink(missing_ok=True)
    if lr_tab.groupby("group")["lr"].nunique().max() > 1:
        made.append(_save(_fig_steps_vs_lr(lr_tab), out / "steps_vs_lr.png"))
        made.append(_save(_fig_success_vs_lr(lr_tab), out / "success_vs_lr.png"))
    if depth is not None:
        made.append(_save(_fig_depth(depth), out / "depth.png"))
    chosen = results.merge(best[["group", "best_lr"]], on="group")
    # (the reflex alone has no learning rate: NaN on both sides)
    chosen = chosen[
        (chosen["lr"] == chosen["best_lr"]) | (chosen["lr"].isna() & chosen["best_lr"].isna())
    ]
    wc = chosen[chosen["weight_change"].notna()]
    if len(wc):
        made.append(_save(_fig_weight_change(wc), out / "weight_change.png"))
    # Few curves: every learning rate of every group; many: each group's best only.
    traced = chosen
    if results.groupby(["group", "lr"]).ngroups <= MAX_TRACE_CURVES:
        traced = results.assign(group=_group_and_lr(results))
    totals = traced.groupby("group")["run_id"].nunique().to_dict()
    traced = sample_runs(traced, MAX_TRACE_RUNS)
    traces = store.load_traces(run_ids=list(traced["run_id"]), columns=TRACE_COLUMNS)
    if "abs_error" in traces:
        traces = traces.merge(traced[["run_id", "group"]], on="run_id")
        made.append(_save(_fig_error_traces(traces, totals), out / "error_traces.png"))
        if any(c.startswith("weight_change_l") for c in traces.columns):
            made.append(_save(_fig_weight_change_time(traces), out / "weight_change_time.png"))
    return made


#: Most curves in the error-trace figure before it shows only each group's best lr.
MAX_TRACE_CURVES = 8


#: Most runs whose traces a curve of the trace figures summarises (a larger group is
#: represented by a fixed sample of its runs: the first by run id, a hash of the config).
MAX_TRACE_RUNS = 200


#: The trace columns the figures read (with ``run_id`` and ``step``).
TRACE_COLUMNS = ("abs_error", *(f"weight_change_l{i}" for i in range(256)))


def sample_runs(runs: pd.DataFrame, most: int = MAX_TRACE_RUNS) -> pd.DataFrame:
    """At most ``most`` runs of each ``group``: those with the smallest run ids (run ids hash
    the config, so this is a fixed sample that does not depend on the order runs finished)."""
    ordered = runs.sort_values("run_id", kind="stable")
    return ordered.groupby("group", sort=False).head(most)


def _group_and_lr(results: pd.DataFrame) -> pd.Series:
    """Group labels with ``lr=...`` added for groups that were run at several rates."""
    several = results.groupby("group")["lr"].transform("nunique") > 1
    with_lr = results["group"] + " lr=" + results["lr"].map(lambda v: f"{v:g}")
    return with_lr.where(several, results["group"])


def _median_with_iqr(ax: Any, stats: pd.DataFrame, x: str, label: str) -> Any:
    """Median steps to success with interquartile error bars, for the points that have any
    success (failures have no steps to plot)."""
    ok = stats[stats["n_success"] > 0]
    return ax.errorbar(
        ok[x],
        ok["median"],
        yerr=[ok["median"] - ok["q1"], ok["q3"] - ok["median"]],
        marker="o",
        ms=4,
        capsize=3,
        label=label,
    )


def _settled_median(ax: Any, stats: pd.DataFrame, x: str, colour: Any) -> None:
    """Median settled step (dashed, hollow markers) where any run settled."""
    if "settled_median" not in stats:
        return
    ok = stats[stats["n_settled"] > 0]
    if len(ok):
        ax.plot(
            ok[x], ok["settled_median"], ls="--", marker="o", ms=4, mfc="none", color=colour,
            label="_nolegend_",
        )  # fmt: skip


def _fig_steps_vs_lr(table: pd.DataFrame) -> Figure:
    groups = list(table.groupby("group", sort=True))
    fig = Figure(figsize=(6.0, 4.0 + 0.15 * len(groups)))
    strip, ax = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [0.5 + 0.2 * len(groups), 4.0]}
    )
    for i, (label, g) in enumerate(groups):
        g = g.sort_values("lr")
        line = _median_with_iqr(ax, g, "lr", label)
        _settled_median(ax, g, "lr", line.lines[0].get_color())
        # failures get their own strip: they have no steps to success to plot
        for lr, n_fail, n in zip(g["lr"], g["n"] - g["n_success"], g["n"], strict=True):
            strip.text(
                lr,
                i,
                f"{n_fail}/{n}",
                ha="center",
                va="center",
                fontsize=7,
                color=line.lines[0].get_color(),
            )
    ax.set_xscale("log")
    ax.set_xlim(table["lr"].min() / 1.6, table["lr"].max() * 1.6)
    if table["n_success"].any() and table["q3"].max() / max(table["q1"].min(), 1) > 20:
        ax.set_yscale("log")
    strip.set_ylim(len(groups) - 0.5, -0.5)
    strip.set_yticks([])
    strip.tick_params(bottom=False)
    strip.set_title(
        "Steps to success (solid) and settled step (dashed, hollow); top: failed runs / runs",
        fontsize=9,
    )
    ax.set_xlabel("learning rate")
    ax.set_ylabel("steps (median, IQR of success)")
    _legend(ax)
    return fig


def _fig_success_vs_lr(table: pd.DataFrame) -> Figure:
    fig, ax = _figure()
    for label, g in table.groupby("group", sort=True):
        g = g.sort_values("lr")
        (line,) = ax.plot(g["lr"], g["success_rate"], marker="o", ms=4, label=label)
        if "settled_rate" in g:
            ax.plot(
                g["lr"], g["settled_rate"], marker="o", ms=4, mfc="none", ls="--",
                color=line.get_color(), label="_nolegend_",
            )  # fmt: skip
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("fraction of runs")
    ax.set_title("Reached success (solid), settled at the end (dashed)", fontsize=10)
    _legend(ax)
    return fig


def _fig_depth(table: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(9.0, 3.6))
    ax_steps, ax_rate = fig.subplots(1, 2)
    for label, g in table.groupby("depth_group", sort=True):
        g = g.sort_values("n_hidden")
        line = _median_with_iqr(ax_steps, g, "n_hidden", label)
        colour = line.lines[0].get_color()
        _settled_median(ax_steps, g, "n_hidden", colour)
        ax_rate.plot(g["n_hidden"], g["success_rate"], marker="o", ms=4, label=label, color=colour)
        if "settled_rate" in g:
            ax_rate.plot(
                g["n_hidden"], g["settled_rate"], marker="o", ms=4, mfc="none", ls="--",
                color=colour, label="_nolegend_",
            )  # fmt: skip
    ax_steps.set_xlabel("hidden layers")
    ax_steps.set_ylabel("steps to success / settled (median)")
    ax_rate.set_xlabel("hidden layers")
    ax_rate.set_ylabel("success (solid), settled (dashed)")
    ax_rate.set_ylim(-0.03, 1.03)
    for ax in (ax_steps, ax_rate):
        ax.set_xticks(sorted(table["n_hidden"].unique()))
    fig.suptitle("Depth (each point at its best learning rate)", fontsize=10)
    _legend(ax_rate)
    fig.tight_layout()
    return fig


#: Window (steps) of the moving mean of |e| in the error-trace figure (the SPEC's window).
TRACE_WINDOW = 200


def smoothed_abs_error(traces: pd.DataFrame, window: int = TRACE_WINDOW) -> pd.DataFrame:
    """Per run, the moving mean of |e| over ``window`` steps at each trace sample: columns
    ``group``, ``run_id``, ``step``, ``smooth``. The samples are ``abs_error``, the mean |e|
    over each block of ``trace_every`` steps, so ``window / trace_every`` of them are
    averaged (the first ones over what exists so far)."""
    parts = []
    for _, g in traces.sort_values("step").groupby("run_id", sort=False):
        every = int(np.median(np.diff(g["step"].to_numpy()))) if len(g) > 1 else 1
        k = max(1, window // max(every, 1))
        smooth = g["abs_error"].rolling(k, min_periods=1).mean()
        parts.append(g[["group", "run_id", "step"]].assign(smooth=smooth.to_numpy()))
    return pd.concat(parts, ignore_index=True)


def _fig_error_traces(traces: pd.DataFrame, totals: dict[str, int] | None = None) -> Figure:
    fig, ax = _figure()
    smooth = smoothed_abs_error(traces)
    for label, g in smooth.groupby("group", sort=True):
        by_step = g.groupby("step")["smooth"]
        med = by_step.median()
        n = g["run_id"].nunique()
        total = (totals or {}).get(str(label), n)
        runs = f"n={n}" if total <= n else f"a sample of {n} of {total:,} runs"
        line = ax.plot(med.index, med.to_numpy(), lw=1.2, label=f"{label} ({runs})")
        ax.fill_between(
            med.index,
            by_step.quantile(0.25).to_numpy(),
            by_step.quantile(0.75).to_numpy(),
            color=line[0].get_color(),
            alpha=0.2,
            lw=0,
        )
    positive = smooth.loc[smooth["smooth"] > 0, "smooth"]
    if len(positive):
        # symlog: a learned controller's |e| is often exactly 0, which log scale would hide
        ax.set_yscale("symlog", linthresh=float(positive.quantile(0.05)), linscale=0.5)
    ax.set_xlabel("step")
    ax.set_ylabel(f"moving mean of |e| over {TRACE_WINDOW} steps\n(median over seeds, IQR)")
    ax.set_title("Reflex error over time", fontsize=10)
    _legend(ax)
    return fig


def _fig_weight_change(runs: pd.DataFrame) -> Figure:
    fig, ax = _figure()
    n_max, values = 1, []
    for label, g in runs.groupby("group", sort=True):
        per_layer = pd.DataFrame(g["weight_change"].tolist())  # rows: runs, columns: layers
        med = per_layer.median()
        ax.plot(np.arange(1, len(med) + 1), med.to_numpy(), marker="o", ms=4, label=label)
        n_max, values = max(n_max, len(med)), [*values, *med.dropna()]
    ax.set_xticks(range(1, n_max + 1))
    if values and min(values) > 0 and max(values) / min(values) > 50:
        ax.set_yscale("log")
    ax.set_xlabel("layer (1 = first hidden, last = output)")
    ax.set_ylabel("weight change |W - W0| (median)")
    ax.set_title("Where learning happens (best lr per group)", fontsize=10)
    _legend(ax)
    return fig


def _layer_columns(g: pd.DataFrame) -> list[str]:
    """The ``weight_change_l<i>`` columns holding data, in layer order."""
    return sorted(
        (c for c in g.columns if c.startswith("weight_change_l") and g[c].notna().any()),
        key=lambda c: int(c.rsplit("l", 1)[1]),
    )


def _fig_weight_change_time(traces: pd.DataFrame) -> Figure:
    # Groups without a network (the reflex alone) have nothing to show.
    groups = [(k, g) for k, g in traces.groupby("group", sort=True) if _layer_columns(g)][:9]
    cols = max(1, min(3, len(groups)))
    rows = max(1, math.ceil(len(groups) / cols))
    fig = Figure(figsize=(3.2 * cols, 2.6 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (label, g) in zip(axes, groups, strict=False):
        layer_cols = _layer_columns(g)
        med = g.groupby("step")[layer_cols].median()
        colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(layer_cols)))
        for c, colour in zip(layer_cols, colours, strict=True):
            name = "output" if c == layer_cols[-1] else f"layer {int(c[15:]) + 1}"
            ax.plot(med.index, med[c].to_numpy(), lw=1, color=colour, label=name)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=5, ncol=2)
    axes[0].set_ylabel("||W - W0|| (Frobenius)", fontsize=8)
    for ax in axes[len(groups) :]:
        ax.set_visible(False)
    fig.suptitle("Weight change per layer over time (median over seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def _figure() -> tuple[Figure, Any]:
    fig = Figure(figsize=_FIGSIZE)
    return fig, fig.add_subplot()


def _legend(ax: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _save(fig: Figure, path: Path) -> Path:
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    return atomic_write_with(path, lambda p: fig.savefig(p, dpi=_DPI))


__all__ = [
    "FIGURES",
    "MAX_TRACE_CURVES",
    "MAX_TRACE_RUNS",
    "TRACE_WINDOW",
    "draw_figures",
    "sample_runs",
    "smoothed_abs_error",
]
