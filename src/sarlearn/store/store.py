"""The results store of a sweep folder: one record per finished run, written so nothing is lost.

Layout of a sweep folder ``DIR``::

    DIR/results/part-*.parquet   one file per finished run attempt, written atomically
    DIR/results/compacted/       the same parts once compacted (kept: results.parquet can be
                                 rebuilt from them, see :meth:`ResultStore.repair`)
    DIR/traces/part-*.parquet    its downsampled per-step trace (optional)
    DIR/results.parquet          compacted: all records so far (rewritten atomically)
    DIR/traces.parquet           compacted traces
    DIR/sweep.json               the last sweep's plan (run ids and grid values)
    DIR/runs/<run_id>/           a run's output folder while it runs (kept on request)

A part file appears complete or not at all (temporary file + ``os.replace``), and compaction
only moves parts away after the compacted file that contains them is in place, so Ctrl-C or a
crash at any moment loses at most the runs that were in flight. A damaged ``results.parquet``
(bit rot, a truncated copy) raises :class:`StoreCorruptError`; :meth:`ResultStore.repair`
rebuilds it from the kept parts (trace parts are not kept: a damaged ``traces.parquet`` costs
the traces, never the results). Readers merge the compacted
file with any parts and drop duplicate attempts, so they never depend on compaction having run.
Only the sweep's main process writes here (workers return their records to it).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import socket
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sarlearn import __version__
from sarlearn.config import RunConfig
from sarlearn.errors import SarlearnError
from sarlearn.runs.outputs import (
    atomic_write_bytes,
    atomic_write_with,
    jsonable,
    read_json,
    write_json,
)
from sarlearn.store.lock import folder_lock

if TYPE_CHECKING:
    import pandas as pd

    #: A run's downsampled trace: a DataFrame, or its columns (name -> 1-d numpy array).
    TraceData = pd.DataFrame | Mapping[str, np.ndarray]

#: Bytes of trace parts a store keeps in memory for their compaction (beyond: read back).
TRACE_MEMORY = 64 * 2**20

RESULTS = "results.parquet"
TRACES = "traces.parquet"
MANIFEST = "sweep.json"
LOCK = ".sweep.lock"
#: Every parquet file of the store carries a CRC of each data page, and every read checks it,
#: so a flipped bit is named as a damaged file (StoreCorruptError) instead of read as data.
WRITE: dict[str, Any] = {"write_page_checksum": True}
READ: dict[str, Any] = {"page_checksum_verification": True}
COMPACTED = "compacted"

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


class StoreLockedError(RuntimeError):
    """Another live sweep process is writing to the same folder."""


class StoreCorruptError(SarlearnError):
    """A file of a sweep folder is unreadable (truncated, damaged, not what it should be)."""


def base_record(run_id: str, cfg: RunConfig, params: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of a record that come from the config alone (filled in for every run)."""
    return {
        "run_id": run_id,
        "attempt_id": os.urandom(8).hex(),
        "rule": cfg.rule.name,
        "lr": None if cfg.rule.name == "reflex" else cfg.rule.learning_rate,  # no learner
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
        from sarlearn.sweeps.population import block_means

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


class _Finished:
    """What resume needs from any store: which runs already have a record."""

    def load(self, latest: bool = True) -> pd.DataFrame:
        raise NotImplementedError

    def finished_ids(self, include_failed: bool = True) -> set[str]:
        """Run ids with a record: all of them, or only those whose latest attempt succeeded
        in running (status ``ok``, whether or not it reached the success criterion)."""
        frame = self.load(latest=True)
        if not include_failed:
            frame = frame[frame["status"] == "ok"]
        return set(frame["run_id"])


def _latest_rows(table: pa.Table) -> dict[str, int]:
    """Run id -> row of its latest attempt in ``table``: the last by ``finished_at`` (rows
    without one last), ties to the later row; what ``load(latest=True)`` keeps."""
    run_ids = table.column("run_id").to_pylist()
    # the timestamps as integers (a view, not a cast: casts load pyarrow.compute, ~0.07 s)
    chunks = table.column("finished_at").chunks
    finished = [t for chunk in chunks for t in chunk.view(pa.int64()).to_pylist()]
    order = sorted(range(len(run_ids)), key=lambda i: (finished[i] is None, finished[i] or 0))
    return {run_ids[i]: i for i in order}


def _latest_attempts(table: pa.Table) -> set[str]:
    attempts = table.column("attempt_id").to_pylist()
    return {attempts[i] for i in _latest_rows(table).values()}


class ResultStore(_Finished):
    """The results of a sweep folder: append records, load them, compact, lock."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.parts = self.root / "results"
        self.trace_parts = self.root / "traces"
        self.results_path = self.root / RESULTS
        self.traces_path = self.root / TRACES
        self._written: dict[Path, tuple[pa.Table, bytes]] = {}  # parts written, not compacted
        self._trace_memory: int | None = 0  # bytes of trace parts kept (None: over budget)

    def run_dir(self, run_id: str) -> Path:
        """The output folder handed to a run (kept after the run only on request)."""
        return self.root / "runs" / run_id

    # -- writing ----------------------------------------------------------------------------

    def add(self, record: Mapping[str, Any], trace: TraceData | None = None) -> None:
        """Store one finished attempt: its trace part first, then its record part.

        The record is what marks a run done, so it goes last; a trace without a record (a
        crash in between) is ignored by readers.
        """
        self.add_many([(record, trace)])

    def add_many(self, items: Sequence[tuple[Mapping[str, Any], TraceData | None]]) -> None:
        """Store several finished attempts (e.g. the runs of one engine population) as ONE
        trace part and ONE record part, written in that order like :meth:`add`'s.

        Each part appears whole or not at all, so the attempts are stored all together or
        (a crash before the record part is in place) not at all.
        """
        if not items:
            return
        stamp = f"{time.time_ns():020d}-{items[0][0]['attempt_id']}"
        traces = []
        for record, trace in items:
            if trace is not None and trace_rows(trace):
                traces.append(_trace_table(record, trace))
        if traces:
            table = (
                traces[0]
                if len(traces) == 1
                else pa.concat_tables(traces, promote_options="permissive")
            )
            self._write_part(self.trace_parts / f"part-{stamp}.parquet", table)
        records = _records_table([r for r, _ in items], RESULT_SCHEMA)
        self._write_part(self.parts / f"part-{stamp}.parquet", records)

    def _write_part(self, path: Path, table: pa.Table) -> None:
        # Kept in memory too, so that compaction need not read it back: every record part
        # until it is compacted (records are small, and compacted every few seconds), trace
        # parts while they take less than TRACE_MEMORY (traces are compacted at the end).
        data = _write_parquet(path, table)
        if path.parent == self.trace_parts:
            if self._trace_memory is None:  # over the budget since traces were compacted
                return
            self._trace_memory += table.nbytes + len(data)
            if self._trace_memory > TRACE_MEMORY:
                for part in [p for p in self._written if p.parent == self.trace_parts]:
                    del self._written[part]
                self._trace_memory = None
                return
        self._written[path] = (table, data)

    def _read_part(self, path: Path) -> pa.Table:
        """A part file's table (from memory if this store wrote it)."""
        mine = self._written.get(path)
        return mine[0] if mine is not None else _read_table(path, self.root)

    def compact(self, traces: bool = True) -> None:
        """Merge the part files into ``results.parquet`` (and ``traces.parquet``).

        Safe to interrupt: the compacted file is replaced atomically before its parts go.
        """
        parts = _parts(self.parts)
        results = None
        if parts or not self.results_path.exists():
            existing = _existing(self.results_path)
            mine = self._written.get(parts[0]) if len(parts) == 1 and not existing else None
            if mine is not None:
                # a fresh folder and one part this store wrote (e.g. a sweep of one engine
                # population): results.parquet is that part (RESULT_SCHEMA, one row per
                # attempt), written again as it is
                results = mine[0]
                _write_checked(self.results_path, mine[1])
            else:
                tables = [_read_table(p, self.root) for p in existing]
                tables += [self._read_part(p) for p in parts]
                results = _drop_duplicate_attempts(_concat_tables(tables, RESULT_SCHEMA))
                _write_checked(self.results_path, _parquet_bytes(results))
            kept = self.parts / COMPACTED
            kept.mkdir(exist_ok=True)
            for part in parts:  # kept, so that results.parquet can be rebuilt from them
                with contextlib.suppress(FileNotFoundError):
                    os.replace(_digest(part), _digest(kept / part.name))
                with contextlib.suppress(FileNotFoundError):
                    os.replace(part, kept / part.name)
                self._written.pop(part, None)
        if traces:
            self._compact_traces(results)

    def _compact_traces(self, results: pa.Table | None = None) -> None:
        parts = _parts(self.trace_parts)
        if not parts:
            return
        if results is None or _parts(self.parts):
            results = self._table()
        keep = _latest_attempts(results)
        existing = _existing(self.traces_path)
        mine = self._written.get(parts[0]) if len(parts) == 1 and not existing else None
        if mine is not None and all(a in keep for a in mine[0].column("attempt_id").to_pylist()):
            # one part this store wrote, every row of it kept: traces.parquet is that part
            atomic_write_bytes(self.traces_path, mine[1])
        else:  # the parts this store wrote from memory, the others read back
            sources = [*existing, *(self._written.get(p, (p,))[0] for p in parts)]
            self._stream_traces(sources, keep)
        for part in parts:
            part.unlink(missing_ok=True)
            _digest(part).unlink(missing_ok=True)
            self._written.pop(part, None)
        self._trace_memory = 0

    def _stream_traces(self, sources: list[Path | pa.Table], keep: set[str]) -> None:
        schemas = [
            s.schema if isinstance(s, pa.Table) else _read_schema(s, self.root) for s in sources
        ]
        schema = pa.unify_schemas(schemas, promote_options="permissive")

        def pieces(src: Path | pa.Table) -> Iterator[pa.Table]:
            if isinstance(src, pa.Table):
                yield src
                return
            pf = pq.ParquetFile(src, **READ)
            for i in range(pf.num_row_groups):
                yield pf.read_row_group(i)

        def write(tmp: Path) -> None:
            # stream row groups so a big sweep's traces never have to fit in memory at once
            with pq.ParquetWriter(tmp, schema, **WRITE) as writer:
                for src in sources:
                    for tab in pieces(src):
                        mask = [a in keep for a in tab.column("attempt_id").to_pylist()]
                        if all(mask):
                            writer.write_table(_conform(tab, schema))
                        elif any(mask):
                            writer.write_table(_conform(tab.filter(_bools(mask)), schema))

        atomic_write_with(self.traces_path, write)

    def write_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Record the plan of the sweep being run (``sweep.json``)."""
        write_json(self.root / MANIFEST, manifest)

    def read_manifest(self) -> dict[str, Any] | None:
        """The last sweep's plan, or None if this folder has none.

        Raises :class:`StoreCorruptError` if ``sweep.json`` is not a readable plan (the next
        invocation of the sweep rewrites it).
        """
        path = self.root / MANIFEST
        if not path.exists():
            return None
        try:
            data = read_json(path)
        except (ValueError, UnicodeDecodeError, OSError) as exc:
            raise StoreCorruptError(
                f"{path} is unreadable ({type(exc).__name__}: {exc}); running the sweep again "
                "rewrites it, or delete it (it only records the plan)"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("runs", []), list):
            raise StoreCorruptError(
                f"{path} is not a sweep plan; running the sweep again rewrites it"
            )
        return data

    # -- damage ----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise :class:`StoreCorruptError` naming the first unreadable file of the folder
        (``results.parquet``, ``traces.parquet``'s footer, ``sweep.json``, a part file)."""
        self._table()
        if self.traces_path.exists():
            _read_schema(self.traces_path, self.root, full=True)
        self.read_manifest()

    def repair(self) -> list[str]:
        """Set every unreadable file aside (``*.corrupt-<time>``) and rebuild what can be.

        ``results.parquet`` is rebuilt from the kept run parts (``results/compacted/`` and
        any pending parts); a damaged part is set aside too. ``traces.parquet`` cannot be
        rebuilt (its parts are not kept): the traces compacted into it are lost, the results
        are not. A damaged ``sweep.json`` is set aside (the next sweep rewrites it). Returns
        one line per file repaired (empty: nothing was wrong). Only the folder's writer may
        call this (hold :meth:`lock`).
        """
        done: list[str] = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        kept = self.parts / COMPACTED
        for folder in (self.parts, kept):
            for part in _parts(folder):
                try:
                    _read_table(part, self.root)
                except Exception as exc:
                    os.replace(part, part.with_name(f".{part.name}.corrupt-{stamp}"))
                    done.append(f"{part} was unreadable ({_short(exc)}); set aside")
        if self.results_path.exists():
            try:
                _read_table(self.results_path, self.root)
            except Exception as exc:
                aside = self.results_path.with_name(f"{RESULTS}.corrupt-{stamp}")
                os.replace(self.results_path, aside)
                sources = [*_parts(kept), *_parts(self.parts)]
                table = _drop_duplicate_attempts(_concat(sources, RESULT_SCHEMA, self.root))
                _write_checked(self.results_path, _parquet_bytes(table))
                n_runs = len(set(table.column("run_id").to_pylist()))
                done.append(
                    f"{self.results_path} was unreadable ({_short(exc)}); rebuilt from "
                    f"{len(sources)} run parts ({n_runs} runs), the damaged file is {aside.name}"
                )
        if self.traces_path.exists():
            try:
                _read_schema(self.traces_path, self.root, full=True)
            except StoreCorruptError as exc:
                aside = self.traces_path.with_name(f"{TRACES}.corrupt-{stamp}")
                os.replace(self.traces_path, aside)
                done.append(
                    f"{self.traces_path} was unreadable ({exc.__cause__ or exc}); set aside as "
                    f"{aside.name}: the traces compacted into it are lost, the results are not"
                )
        try:
            self.read_manifest()
        except StoreCorruptError:
            path = self.root / MANIFEST
            aside = path.with_name(f"{MANIFEST}.corrupt-{stamp}")
            os.replace(path, aside)
            done.append(f"{path} was unreadable; set aside as {aside.name} (the sweep rewrites it)")
        return done

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's write lock; a lock left by a dead process is taken over.

        The lock file appears with its holder ("host pid") already in it: it is written to a
        temporary file first and hard-linked into place, which fails if the lock exists
        (atomic, like ``O_CREAT | O_EXCL``). So a lock is never seen empty; one that is (or
        holds anything but "host pid") is treated as alive. Taking over a dead process's lock
        happens under an ``flock`` on ``.sweep.lock.guard`` (POSIX), so two processes cannot
        both take it over.
        """
        if self.root.exists() and not self.root.is_dir():
            raise StoreLockedError(f"{self.root} is a file, not a sweep folder")
        busy = (
            f"another sweep ({{holder}}) is writing to {self.root}; wait for it, or delete "
            "{path} if that process is gone"
        )
        with folder_lock(self.root, LOCK, busy, StoreLockedError):
            yield

    # -- reading ----------------------------------------------------------------------------

    def _table(self) -> pa.Table:
        """All records (every attempt once) as an Arrow table with :data:`RESULT_SCHEMA`."""
        for _ in range(3):  # a part can vanish under us if a compaction runs meanwhile
            try:
                tables = [_read_table(p, self.root) for p in _existing(self.results_path)]
                tables += [self._read_part(p) for p in _parts(self.parts)]
                return _drop_duplicate_attempts(_concat_tables(tables, RESULT_SCHEMA))
            except FileNotFoundError:
                continue
        raise RuntimeError(f"could not read a stable view of {self.root}")

    def finished_ids(self, include_failed: bool = True) -> set[str]:
        """Run ids with a record: all of them, or only those whose latest attempt succeeded
        in running (status ``ok``, whether or not it reached the success criterion)."""
        table = self._table()
        latest = _latest_rows(table)
        if include_failed:
            return set(latest)
        status = table.column("status").to_pylist()
        return {run for run, i in latest.items() if status[i] == "ok"}

    def load(self, latest: bool = True) -> pd.DataFrame:
        """All records as a DataFrame (columns of :data:`RESULT_SCHEMA`).

        With ``latest`` (the default) each run id appears once, its most recent attempt: a
        failed run retried later counts by its retry. Integer columns are nullable
        (``Int64``), so a missing ``steps_to_success`` stays missing, never 0.
        """
        import pandas as pd

        table = self._table()
        frame = table.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        if latest and len(frame):
            frame = frame.iloc[sorted(_latest_rows(table).values())]
        return frame.sort_values(["finished_at"], kind="stable").reset_index(drop=True)

    def load_traces(
        self, run_ids: Sequence[str] | None = None, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Downsampled traces of the latest attempt of each run (optionally only some runs
        and some columns; ``run_id`` and ``step`` are always included)."""
        import pandas as pd

        results = self.load(latest=True)
        if run_ids is not None:
            results = results[results["run_id"].isin(list(run_ids))]
        attempts = list(results["attempt_id"])
        sources = [*_existing(self.traces_path), *_parts(self.trace_parts)]
        if not sources or not attempts:
            return pd.DataFrame(columns=["run_id", "step"])
        frames = []
        for src in sources:
            names = _read_schema(src, self.root).names
            cols = None
            if columns is not None:
                want = ["run_id", "attempt_id", "step", *columns]
                cols = [c for c in dict.fromkeys(want) if c in names]
            try:
                tab = pq.read_table(
                    src, columns=cols, filters=[("attempt_id", "in", attempts)], **READ
                )
            except (pa.ArrowException, OSError) as exc:
                raise _corrupt(src, self.root, exc) from exc
            if tab.num_rows:
                frames.append(tab.to_pandas())
        if not frames:
            return pd.DataFrame(columns=["run_id", "step"])
        return pd.concat(frames, ignore_index=True).drop(columns="attempt_id")


class MergedStore(_Finished):
    """Several sweep folders read as one (e.g. the shards of a cluster sweep), read-only.

    Same reading API as :class:`ResultStore`. A run id recorded in several folders counts by
    its latest attempt (by ``finished_at``) across all of them, and its trace comes from the
    folder that holds that attempt.
    """

    def __init__(self, roots: Sequence[str | Path]) -> None:
        if not roots:
            raise ValueError("MergedStore needs at least one folder")
        self.stores = [ResultStore(r) for r in roots]

    def load(self, latest: bool = True) -> pd.DataFrame:
        """All records of all folders (see :meth:`ResultStore.load`)."""
        return self._load(latest).drop(columns="_folder")

    def _load(self, latest: bool) -> pd.DataFrame:
        import pandas as pd

        frames = [s.load(latest=latest).assign(_folder=k) for k, s in enumerate(self.stores)]
        nonempty = [f for f in frames if len(f)]
        if not nonempty:
            return frames[0]
        frame = pd.concat(nonempty, ignore_index=True).drop_duplicates("attempt_id")
        frame = frame.sort_values("finished_at", kind="stable")  # later folders win ties
        if latest:
            frame = frame.drop_duplicates("run_id", keep="last")
        return frame.reset_index(drop=True)

    def load_traces(
        self, run_ids: Sequence[str] | None = None, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """Traces of the latest attempt of each run (see :meth:`ResultStore.load_traces`)."""
        import pandas as pd

        results = self._load(latest=True)
        if run_ids is not None:
            results = results[results["run_id"].isin(list(run_ids))]
        frames = []
        for k, store in enumerate(self.stores):
            # the winning attempt from folder k is also folder k's own latest attempt
            ids = list(results.loc[results["_folder"] == k, "run_id"])
            if ids:
                frame = store.load_traces(run_ids=ids, columns=columns)
                if len(frame):
                    frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=["run_id", "step"])
        return pd.concat(frames, ignore_index=True)

    def read_manifest(self) -> dict[str, Any] | None:
        """The folders' plans as one: the union of their runs, and ``shards``, the
        ``[i, n]`` of each folder written by a sharded sweep (None if no folder has a plan)."""
        manifests = [m for s in self.stores if (m := s.read_manifest()) is not None]
        if not manifests:
            return None
        runs = {r["run_id"]: r for m in manifests for r in m.get("runs", [])}
        shards = [m["shard"] for m in manifests if m.get("shard")]
        return {**manifests[0], "runs": list(runs.values()), "n_runs": len(runs), "shards": shards}


def _write_parquet(path: Path, table: pa.Table) -> bytes:
    data = _parquet_bytes(table)
    _write_checked(path, data)
    return data


def _parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **WRITE)
    return buf.getvalue()


def _digest(path: Path) -> Path:
    """The file holding the SHA-256 of ``path``'s bytes (written with it, checked on read)."""
    return path.with_name(f"{path.name}.sha256")


def _write_checked(path: Path, data: bytes) -> None:
    """Write ``data`` and its SHA-256 beside it. The old digest goes first: a crash in
    between leaves a file without a digest (read unchecked), never one with a stale digest."""
    _digest(path).unlink(missing_ok=True)
    atomic_write_bytes(path, data)
    atomic_write_bytes(_digest(path), hashlib.sha256(data).hexdigest().encode())


def _trace_table(record: Mapping[str, Any], trace: TraceData) -> pa.Table:
    """A run's downsampled trace as stored: ``run_id`` and ``attempt_id`` columns first.

    ``trace`` is a DataFrame, or its columns (name -> 1-d numpy array, as a DataFrame made
    of them would hold them), which give the same stored table without pandas.
    """
    if isinstance(trace, Mapping):
        n = len(next(iter(trace.values())))
        arrays = [_repeat(record["run_id"], n), _repeat(record["attempt_id"], n)]
        arrays += [_numpy_column(np.asarray(v)) for v in trace.values()]
        return pa.Table.from_arrays(arrays, names=["run_id", "attempt_id", *trace])
    frame = trace.copy()
    frame.insert(0, "attempt_id", record["attempt_id"])
    frame.insert(0, "run_id", record["run_id"])
    return pa.table(frame)


def trace_rows(trace: TraceData) -> int:
    """The number of rows of a trace given as a DataFrame or as its columns."""
    if isinstance(trace, Mapping):
        return len(next(iter(trace.values()))) if trace else 0
    return len(trace)


# -- Arrow arrays without pandas -----------------------------------------------------------
# pa.array() imports pandas (to check whether it was given a pandas object), which costs a
# sweep ~0.25 s; the arrays of the store are built from their buffers instead, with the
# values pa.array / pa.Table.from_pylist / pa.table(DataFrame) would give them.

_NUMPY_TYPES = {
    np.dtype(np.float64): pa.float64(),
    np.dtype(np.float32): pa.float32(),
    np.dtype(np.int64): pa.int64(),
    np.dtype(np.int32): pa.int32(),
    np.dtype(np.int16): pa.int16(),
    np.dtype(np.int8): pa.int8(),
    np.dtype(np.uint64): pa.uint64(),
    np.dtype(np.uint32): pa.uint32(),
    np.dtype(np.uint16): pa.uint16(),
    np.dtype(np.uint8): pa.uint8(),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class _Unsupported(TypeError):
    """A value the buffer-built arrays do not cover (the general path takes it)."""


def _bitmap(flags: np.ndarray | Sequence[bool]) -> pa.Buffer:
    return pa.py_buffer(np.packbits(np.asarray(flags, dtype=np.bool_), bitorder="little"))


def _bools(flags: Sequence[bool] | np.ndarray) -> pa.Array:
    """A boolean Arrow array (no nulls)."""
    return pa.Array.from_buffers(pa.bool_(), len(flags), [None, _bitmap(flags)])


def _numpy_column(arr: np.ndarray) -> pa.Array:
    """A DataFrame column's values as ``pa.table(frame)`` stores them (NaN as null)."""
    if arr.ndim != 1:
        raise ValueError(f"a trace column must be 1-d, got shape {arr.shape}")
    n = len(arr)
    if arr.dtype == np.bool_:
        return _bools(arr)
    typ = _NUMPY_TYPES.get(arr.dtype)
    if typ is None:  # anything else (strings, dates): the general path
        return pa.array(arr, from_pandas=True)
    data = np.ascontiguousarray(arr)
    validity = None
    if arr.dtype.kind == "f":
        nan = np.isnan(data)
        if nan.any():  # from pandas, NaN is a missing value
            validity = _bitmap(~nan)
    return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(data)])


def _repeat(text: str, n: int) -> pa.Array:
    """A column holding ``text`` ``n`` times, typed as ``pa.table(frame)`` types a string
    column of a DataFrame (``large_string``, pandas 3's ``str``)."""
    data = text.encode()
    offsets = np.arange(n + 1, dtype=np.int64) * len(data)
    return pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data * n)]
    )


def _empty_table(schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


def _records_table(records: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """``pa.Table.from_pylist(records, schema=schema)``, for the types of RESULT_SCHEMA."""
    try:
        arrays = [_python_column([r.get(f.name) for r in records], f.type) for f in schema]
    except _Unsupported:
        return pa.Table.from_pylist([dict(r) for r in records], schema=schema)
    return pa.Table.from_arrays(arrays, schema=schema)


def _python_column(values: list[Any], typ: pa.DataType) -> pa.Array:
    n = len(values)
    present = [v is not None for v in values]
    validity = None if all(present) else _bitmap(present)
    if typ == pa.string():
        data = [_as(v, str).encode() if v is not None else b"" for v in values]
        return pa.Array.from_buffers(typ, n, [validity, *_offsets_and(data)])
    if typ == pa.int64():
        ints = np.array([_int(v) for v in values], dtype=np.int64)
        return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(ints)])
    if typ == pa.float64():
        floats = np.array([_float(v) for v in values], dtype=np.float64)
        return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(floats)])
    if typ == pa.bool_():
        flags = [bool(_as(v, (bool, np.bool_))) if v is not None else False for v in values]
        return pa.Array.from_buffers(typ, n, [validity, _bitmap(flags)])
    if typ == _TS:
        micros = np.array([_micros(v) for v in values], dtype=np.int64)
        return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(micros)])
    if typ == pa.list_(pa.float64()):
        items = [_as(v, (list, tuple)) if v is not None else () for v in values]
        lengths = np.array([len(v) for v in items], dtype=np.int32)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(lengths, out=offsets[1:])
        child = _python_column([x for v in items for x in v], pa.float64())
        if child.null_count:
            raise _Unsupported("null list item")
        return pa.Array.from_buffers(typ, n, [validity, pa.py_buffer(offsets)], children=[child])
    raise _Unsupported(str(typ))


def _offsets_and(data: list[bytes]) -> list[pa.Buffer]:
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise _Unsupported("more than 2 GiB of text")
    return [pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(b"".join(data))]


def _as(value: Any, types: type | tuple[type, ...]) -> Any:
    if not isinstance(value, types):
        raise _Unsupported(type(value).__name__)
    return value


def _int(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise _Unsupported(type(value).__name__)
    if not -(2**63) <= int(value) < 2**63:
        raise _Unsupported("int64 overflow")
    return int(value)


def _float(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool | np.bool_) or not isinstance(
        value, int | float | np.integer | np.floating
    ):
        raise _Unsupported(type(value).__name__)
    if isinstance(value, int | np.integer) and abs(int(value)) > 2**53:
        raise _Unsupported("an integer a float64 does not hold exactly")  # pyarrow's error
    return float(value)


def _micros(value: Any) -> int:
    if value is None:
        return 0
    if type(value) is not datetime or value.utcoffset() is None:
        raise _Unsupported("not a timezone-aware datetime")  # e.g. a pandas Timestamp
    return (value - _EPOCH) // _MICROSECOND


def _parts(folder: Path) -> list[Path]:
    # temporary files of an interrupted write start with "." and are never listed
    return sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []


def _existing(path: Path) -> list[Path]:
    return [path] if path.exists() else []


def _read_table(src: Path, root: Path | None = None) -> pa.Table:
    """A results file or part (:class:`StoreCorruptError` if unreadable or not one)."""
    data = src.read_bytes()
    try:
        want = _digest(src).read_text().strip()
    except (FileNotFoundError, UnicodeDecodeError):
        want = None  # written before digests, or by a crash between file and digest
    if want is not None and hashlib.sha256(data).hexdigest() != want:
        bad = ValueError("its SHA-256 is not the one written with it (bit rot, or an edit)")
        raise _corrupt(src, root, bad)
    try:
        table = pq.ParquetFile(pa.BufferReader(data), **READ).read()  # no pandas import
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(src, root, exc) from exc
    if "attempt_id" not in table.column_names or "run_id" not in table.column_names:
        raise _corrupt(src, root, ValueError("no run_id/attempt_id columns"))
    return table


def _concat(sources: Sequence[Path], schema: pa.Schema, root: Path | None = None) -> pa.Table:
    return _concat_tables([_read_table(src, root) for src in sources], schema)


def _concat_tables(tables: Sequence[pa.Table], schema: pa.Schema) -> pa.Table:
    conformed = [_conform(t, schema) for t in tables]
    if not conformed:
        return _empty_table(schema)
    if len(conformed) == 1:
        return conformed[0]
    return pa.concat_tables(conformed, promote_options="permissive")


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in order (missing ones null) plus any extra ones."""
    cols, fields = [], []
    names, wanted = set(table.column_names), set(schema.names)  # each a new list per access
    for f in schema:
        if f.name in names:
            col = table.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
        fields.append(f)
    for name in table.column_names:
        if name not in wanted:
            cols.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))


def _drop_duplicate_attempts(table: pa.Table) -> pa.Table:
    # a crash between replacing the compacted file and deleting its parts leaves duplicates
    ids = table.column("attempt_id").to_pylist()
    seen: set[str] = set()
    keep = []
    for a in ids:
        keep.append(a not in seen)
        seen.add(a)
    return table if all(keep) else table.filter(_bools(keep))


def _read_schema(path: Path, root: Path | None, full: bool = False) -> pa.Schema:
    """A parquet file's schema (``full``: also check every row group's metadata)."""
    try:
        if full:
            pf = pq.ParquetFile(path, **READ)
            for i in range(pf.num_row_groups):
                pf.metadata.row_group(i)
            return pf.schema_arrow
        return pq.read_schema(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise _corrupt(path, root, exc) from exc


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:200]}"


def _corrupt(path: Path, root: Path | None, exc: BaseException) -> StoreCorruptError:
    folder = root if root is not None else path.parent
    if path.name == TRACES:
        fix = "its traces cannot be rebuilt; repairing sets it aside and keeps the results"
    else:
        fix = "it can be rebuilt from the run parts kept in results/"
    return StoreCorruptError(
        f"{path} is unreadable ({_short(exc)}); {fix}: run `sarlearn report {folder} --repair`, "
        f"or resume the sweep (it repairs the folder first)"
    )


__all__ = [
    "METRICS",
    "RESULTS",
    "RESULT_SCHEMA",
    "TRACES",
    "MergedStore",
    "ResultStore",
    "StoreCorruptError",
    "StoreLockedError",
    "SummaryError",
    "base_record",
    "downsample_trace",
    "fill_error",
    "fill_summary",
    "now_utc",
    "trace_rows",
]
