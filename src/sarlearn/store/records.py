"""The records of a sweep's store: one row per finished run attempt, and its trace.

:data:`RESULT_SCHEMA` is the table's schema; :func:`base_record`, :func:`fill_summary` and
:func:`fill_error` make a record from a run's config and summary (or its error), and
:func:`records_table` / :func:`trace_table` turn records and traces into Arrow tables.
"""

from __future__ import annotations

import json
import os
import socket
import traceback
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from sarlearn.atomic import jsonable
from sarlearn.config import RunConfig
from sarlearn.version import __version__

if TYPE_CHECKING:
    import pandas as pd

    #: A run's downsampled trace: a DataFrame, or its columns (name -> 1-d numpy array).
    TraceData = pd.DataFrame | Mapping[str, np.ndarray]

#: Summary keys copied into their own columns (all optional except ``steps_to_success``).
METRICS = (
    "mean_abs_error_first_1000",
    "mean_abs_error_last_1000",
    "off_track_steps",
    "steps_per_second",
    "above_threshold_fraction",
    "steering_flips_per_1000",
    "saturated_steering_fraction",
)


#: Integer settling measures copied into their own columns (null when absent or undefined).
INT_METRICS = ("settled_step", "relapses", "dead_layers", "settle_window")


#: Summary keys not repeated in ``summary_json`` (stored elsewhere or too big).
_NOT_IN_SUMMARY_JSON = ("config", "trace")


_TS = pa.timestamp("us", tz="UTC")


RESULT_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("attempt_id", pa.string()),
        ("status", pa.string()),  # "ok" (the run function returned) or "error" (it raised)
        ("run_status", pa.string()),  # the run's own status, e.g. finished, diverged, off_track
        ("run_message", pa.string()),
        ("error_type", pa.string()),
        ("error_message", pa.string()),
        ("error_traceback", pa.string()),
        ("rule", pa.string()),
        ("lr", pa.float64()),
        ("seed", pa.int64()),
        ("track", pa.string()),
        ("layers", pa.string()),  # "10,10,2"
        ("n_hidden", pa.int64()),
        ("steps", pa.int64()),  # requested (config)
        ("steps_run", pa.int64()),  # as reported by the run
        ("success", pa.bool_()),
        ("steps_to_success", pa.int64()),  # null: never succeeded (or error)
        ("settled", pa.bool_()),  # last settle_window steps clean (sarlearn.metrics)
        ("settled_step", pa.int64()),  # null: above threshold at the end (or error)
        ("settle_window", pa.int64()),  # steps judged by settled (clipped to the run)
        ("above_threshold_fraction", pa.float64()),  # over the settling window
        ("relapses", pa.int64()),  # null: no first success
        ("steering_flips_per_1000", pa.float64()),
        ("saturated_steering_fraction", pa.float64()),
        ("dead_units", pa.list_(pa.float64())),  # per layer
        ("dead_layers", pa.int64()),
        ("mean_abs_error_first_1000", pa.float64()),
        ("mean_abs_error_last_1000", pa.float64()),
        ("off_track_steps", pa.float64()),
        ("steps_per_second", pa.float64()),
        ("weight_change", pa.list_(pa.float64())),  # final distance from init, per layer
        ("wall_time_s", pa.float64()),
        ("started_at", _TS),
        ("finished_at", _TS),
        ("worker_pid", pa.int64()),
        ("host", pa.string()),
        ("sarlearn_version", pa.string()),
        ("params_json", pa.string()),  # the grid values that made this run
        ("config_json", pa.string()),  # the full resolved config (what run_id hashes)
        ("summary_json", pa.string()),  # the run's summary minus config and trace
    ]
)


class SummaryError(ValueError):
    """The run function returned a summary without the keys a sweep record needs."""


def base_record(run_id: str, cfg: RunConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a record that come from the config alone (filled in for every run)."""
    return {
        "run_id": run_id,
        "attempt_id": os.urandom(8).hex(),
        "rule": cfg.rule.name,
        "lr": None if cfg.rule.name == "reflex" else cfg.rule_config.learning_rate,  # no learner
        "seed": cfg.seed,
        "track": cfg.world.track,
        "layers": ",".join(str(n) for n in cfg.network.layers),
        "n_hidden": len(cfg.network.layers) - 1,
        "steps": cfg.steps,
        "success": False,
        "settled": False,
        "worker_pid": os.getpid(),
        "host": socket.gethostname(),
        "sarlearn_version": __version__,
        "params_json": json.dumps(jsonable(dict(params)), sort_keys=True),
        "config_json": json.dumps(cfg.model_dump(mode="json"), sort_keys=True),
    }


def fill_summary(record: dict[str, Any], summary: Mapping[str, Any]) -> dict[str, Any]:
    """Add a successful run's summary to ``record`` (in place; also returned)."""
    if "steps_to_success" not in summary:
        raise SummaryError(f"the run's summary has no 'steps_to_success' (keys: {sorted(summary)})")
    sts = summary["steps_to_success"]
    record["status"] = "ok"
    record["run_status"] = summary.get("status")
    record["run_message"] = summary.get("message")
    record["steps_to_success"] = None if _missing(sts) else int(sts)
    record["success"] = record["steps_to_success"] is not None
    steps_run = summary.get("steps")
    record["steps_run"] = None if _missing(steps_run) else int(steps_run)
    for key in METRICS:
        value = summary.get(key)
        record[key] = None if _missing(value) else float(value)
    for key in INT_METRICS:
        value = summary.get(key)
        record[key] = None if _missing(value) else int(value)
    record["settled"] = bool(summary.get("settled") or False)
    dead = summary.get("dead_units")
    record["dead_units"] = None if dead is None else [float(v) for v in dead]
    record["weight_change"] = _final_weight_change(summary.get("weight_change"))
    rest = {k: v for k, v in summary.items() if k not in _NOT_IN_SUMMARY_JSON}
    record["summary_json"] = json.dumps(jsonable(rest), sort_keys=True)
    return record


def fill_error(record: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """Mark ``record`` as a failed run: exception type, message and the traceback's tail."""
    record["status"] = "error"
    record["error_type"] = type(exc).__name__
    record["error_message"] = str(exc)
    tb = "".join(traceback.format_exception(exc))
    record["error_traceback"] = tb[-4000:]  # the tail names the failing line; enough
    return record


def block_means(values: np.ndarray, every: int) -> np.ndarray:
    """Means of ``values`` over consecutive blocks of ``every`` (the last one may be shorter),
    bit for bit what ``pd.Series(values).groupby(np.arange(n) // every).mean()`` gives, but
    without pandas (the population path and :func:`~sarlearn.store.store.downsample_trace`
    both use it, so their traces agree).

    As pandas (3.x) does for sorted groups: without NaN, ``np.add.reduceat`` over the blocks
    divided by their sizes; with NaN, each block summed in order with Kahan compensation,
    NaN skipped (a block of NaN only is NaN), the compensation reset when it becomes NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros(0)
    starts = np.arange(0, n, every)
    if not np.isnan(x).any():
        sizes = np.diff(np.append(starts, n)).astype(np.float64)
        return np.add.reduceat(x, starts) / sizes
    n_blocks = len(starts)
    grid = np.full(n_blocks * every, np.nan)
    grid[:n] = x
    grid = grid.reshape(n_blocks, every)
    total = np.zeros(n_blocks)
    comp = np.zeros(n_blocks)
    count = np.zeros(n_blocks)
    with np.errstate(invalid="ignore", over="ignore"):
        for j in range(every):
            val = grid[:, j]
            seen = ~np.isnan(val)
            y = val - comp
            t = total + y
            c = (t - total) - y
            c[np.isnan(c)] = 0.0
            total = np.where(seen, t, total)
            comp = np.where(seen, c, comp)
            count += seen
        means = total / count
    means[count == 0] = np.nan
    return means


def downsample_trace(trace: pd.DataFrame, every: int) -> pd.DataFrame:
    """Every ``every``-th row of a run's trace, numeric and boolean columns only.

    ``abs_error`` is the mean |error| over the ``every`` steps starting at each kept row,
    so the curve stays faithful where the error is spiky. A ``step`` column is added (from
    the row position) if the trace has none.
    """
    import pandas as pd

    frame = trace.reset_index(drop=True)
    keep = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    frame = frame[keep]
    if "step" not in frame:
        frame.insert(0, "step", np.arange(len(frame), dtype=np.int64))
    out = frame.iloc[::every].reset_index(drop=True)
    if "error" in frame:  # the block means of the population path (the same numbers)
        out["abs_error"] = block_means(np.abs(frame["error"].to_numpy(np.float64)), every)
    return out


def _final_weight_change(value: Any) -> list[float] | None:
    """Per-layer weight change: a list per layer, or rows over time of which we keep the last."""
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[-1]
    if arr.ndim != 1:
        raise SummaryError(f"weight_change must be (layers,) or (time, layers), got {arr.shape}")
    return [float(x) for x in arr]


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(np.isnan(value))
    except TypeError:
        return False


def now_utc() -> datetime:
    """The current time, timezone-aware UTC (the store's timestamp convention)."""
    return datetime.now(UTC)


def trace_rows(trace: TraceData) -> int:
    """The number of rows of a trace given as a DataFrame or as its columns."""
    if isinstance(trace, Mapping):
        return len(next(iter(trace.values()))) if trace else 0
    return len(trace)


def records_table(records: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The records as a table of :data:`RESULT_SCHEMA` (missing keys are null)."""
    return pa.Table.from_pylist([dict(r) for r in records], schema=RESULT_SCHEMA)


def trace_table(record: Mapping[str, Any], trace: TraceData) -> pa.Table:
    """A run's downsampled trace as stored: ``run_id`` and ``attempt_id`` columns first.

    ``trace`` is a DataFrame, or its columns (name -> 1-d numpy array), which give the same
    table (NaN as null, as pandas has it; the ids as ``large_string``, as pandas' strings).
    """
    if isinstance(trace, Mapping):
        n = len(next(iter(trace.values())))
        keys = ("run_id", "attempt_id")
        ids = {k: pa.array([record[k]] * n, type=pa.large_string()) for k in keys}
        cols = {k: pa.array(np.asarray(v), from_pandas=True) for k, v in trace.items()}
        return pa.table({**ids, **cols})
    frame = trace.copy()
    frame.insert(0, "attempt_id", record["attempt_id"])
    frame.insert(0, "run_id", record["run_id"])
    return pa.table(frame)


__all__ = [
    "INT_METRICS",
    "METRICS",
    "RESULT_SCHEMA",
    "SummaryError",
    "base_record",
    "block_means",
    "downsample_trace",
    "fill_error",
    "fill_summary",
    "now_utc",
    "records_table",
    "trace_rows",
    "trace_table",
]
