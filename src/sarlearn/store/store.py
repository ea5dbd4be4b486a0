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
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from sarlearn.atomic import (
    atomic_write_bytes,
    atomic_write_with,
    read_json,
    write_json,
)
from sarlearn.store.files import (
    READ,
    TRACES,
    WRITE,
    StoreCorruptError,
    bools,
    concat_arrow,
    concat_records,
    conform,
    corrupt_error,
    drop_duplicate_attempts,
    existing_files,
    file_digest,
    iter_table,
    parquet_bytes,
    part_files,
    read_checked_table,
    read_file_schema,
    short,
    write_checked,
    write_checked_with,
    write_parquet,
)
from sarlearn.store.lock import folder_lock
from sarlearn.store.records import (
    INT_METRICS,
    METRICS,
    RESULT_SCHEMA,
    SummaryError,
    base_record,
    downsample_trace,
    fill_error,
    fill_summary,
    now_utc,
    records_table,
    trace_rows,
    trace_table,
)

if TYPE_CHECKING:
    import pandas as pd

    from sarlearn.store.records import TraceData


#: Bytes of trace parts a store keeps in memory for their compaction (beyond: read back).
TRACE_MEMORY = 64 * 2**20

RESULTS = "results.parquet"
MANIFEST = "sweep.json"
LOCK = ".sweep.lock"
COMPACTED = "compacted"
#: Records per row group of ``results.parquet`` (and held at a time while compacting).
COMPACT_ROWS = 16_384
#: The long texts of a record (config, summary, grid values, traceback): what a reader of a
#: large sweep leaves out when it needs the numbers only.
BULKY = ("config_json", "summary_json", "params_json", "error_traceback")


class StoreLockedError(RuntimeError):
    """Another live sweep process is writing to the same folder."""


class _Finished:
    """What resume needs from any store: which runs already have a record."""

    def load(self, latest: bool = True, without: Sequence[str] = ()) -> pd.DataFrame:
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


def _attempt_ids(data: bytes) -> list[str]:
    """The ``attempt_id`` column of a parquet file given as its bytes."""
    table = pq.read_table(pa.BufferReader(data), columns=["attempt_id"], **READ)
    return table.column("attempt_id").to_pylist()


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
        self._written: dict[Path, tuple[pa.Table, bytes]] = {}  # record parts, not compacted
        self._trace_bytes: dict[Path, bytes] = {}  # trace parts' files, not compacted
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
                traces.append(trace_table(record, trace))
        if traces:
            table = (
                traces[0]
                if len(traces) == 1
                else pa.concat_tables(traces, promote_options="permissive")
            )
            self._write_part(self.trace_parts / f"part-{stamp}.parquet", table)
        records = records_table([r for r, _ in items])
        self._write_part(self.parts / f"part-{stamp}.parquet", records)

    def _write_part(self, path: Path, table: pa.Table) -> None:
        # Kept so that compaction need not read it back: record parts until compacted, trace
        # parts up to TRACE_MEMORY as bytes, never as the table, which shares the runs' numpy
        # columns (~20 kB per run where the bytes hold ~0.7 kB). Traces compact at the end.
        data = write_parquet(path, table)
        if path.parent != self.trace_parts:
            self._written[path] = (table, data)
            return
        if self._trace_memory is None:  # over the budget since traces were compacted
            return
        self._trace_memory += len(data)
        if self._trace_memory > TRACE_MEMORY:
            self._trace_bytes.clear()
            self._trace_memory = None
            return
        self._trace_bytes[path] = data

    def _read_part(self, path: Path) -> pa.Table:
        """A part file's table (from memory if this store wrote it)."""
        mine = self._written.get(path)
        return mine[0] if mine is not None else read_checked_table(path, self.root)

    def compact(self, traces: bool = True) -> None:
        """Merge the part files into ``results.parquet`` (and ``traces.parquet``).

        Safe to interrupt: the compacted file is replaced atomically before its parts go.
        """
        parts = part_files(self.parts)
        results = None
        if parts or not self.results_path.exists():
            existing = existing_files(self.results_path)
            mine = self._written.get(parts[0]) if len(parts) == 1 and not existing else None
            if mine is not None:
                # a fresh folder and one part this store wrote (e.g. a sweep of one engine
                # population): results.parquet is that part (RESULT_SCHEMA, one row per
                # attempt), written again as it is
                results = mine[0]
                write_checked(self.results_path, mine[1])
            else:
                self._write_results([*existing, *parts])
            kept = self.parts / COMPACTED
            kept.mkdir(exist_ok=True)
            for part in parts:  # kept, so that results.parquet can be rebuilt from them
                with contextlib.suppress(FileNotFoundError):
                    os.replace(file_digest(part), file_digest(kept / part.name))
                with contextlib.suppress(FileNotFoundError):
                    os.replace(part, kept / part.name)
                self._written.pop(part, None)
        if traces:
            self._compact_traces(results)

    def _write_results(self, sources: list[Path]) -> None:
        """Write ``results.parquet`` from the files given (the compacted one first, then
        parts), each attempt once, in row groups of at most :data:`COMPACT_ROWS` records: the
        records are streamed, never all in memory (a large sweep's records hold kilobytes of
        config and summary text each)."""
        seen: set[str] = set()

        def pieces() -> Iterator[pa.Table]:
            for src in sources:
                if src == self.results_path:
                    yield from iter_table(src, self.root, COMPACT_ROWS)
                else:
                    yield self._read_part(src)

        def write(tmp: Path) -> None:
            with pq.ParquetWriter(tmp, RESULT_SCHEMA, **WRITE) as writer:
                held: list[pa.Table] = []
                n = 0
                for piece in pieces():
                    table = conform(piece, RESULT_SCHEMA).select(RESULT_SCHEMA.names)
                    keep = []
                    for attempt in table.column("attempt_id").to_pylist():
                        keep.append(attempt not in seen)
                        seen.add(attempt)
                    held.append(table if all(keep) else table.filter(bools(keep)))
                    n += held[-1].num_rows
                    if n >= COMPACT_ROWS:
                        writer.write_table(pa.concat_tables(held))
                        held, n = [], 0
                if held:
                    writer.write_table(pa.concat_tables(held))

        write_checked_with(self.results_path, write)

    def _compact_traces(self, results: pa.Table | None = None) -> None:
        parts = part_files(self.trace_parts)
        if not parts:
            return
        if results is None or part_files(self.parts):
            results = self._table(without=BULKY)
        keep = _latest_attempts(results)
        existing = existing_files(self.traces_path)
        mine = self._trace_bytes.get(parts[0]) if len(parts) == 1 and not existing else None
        if mine is not None and all(a in keep for a in _attempt_ids(mine)):
            # one part this store wrote, every row of it kept: traces.parquet is that part
            atomic_write_bytes(self.traces_path, mine)
        else:  # the parts this store wrote from memory, the others read back
            sources = [*existing, *(self._trace_bytes.get(p, p) for p in parts)]
            self._stream_traces(sources, keep)
        for part in parts:
            part.unlink(missing_ok=True)
            file_digest(part).unlink(missing_ok=True)
            self._trace_bytes.pop(part, None)
        self._trace_memory = 0

    def _stream_traces(self, sources: list[Path | bytes], keep: set[str]) -> None:
        # a file's schema is checked here, before anything is written
        schemas = [
            pq.read_schema(pa.BufferReader(s)) if isinstance(s, bytes) else
            read_file_schema(s, self.root) for s in sources
        ]  # fmt: skip
        schema = pa.unify_schemas(schemas, promote_options="permissive")

        def pieces(src: Path | bytes) -> Iterator[pa.Table]:
            pf = pq.ParquetFile(pa.BufferReader(src) if isinstance(src, bytes) else src, **READ)
            for i in range(pf.num_row_groups):
                yield pf.read_row_group(i)

        def write(tmp: Path) -> None:
            # stream row groups so a big sweep's traces never have to fit in memory at once
            with pq.ParquetWriter(tmp, schema, **WRITE) as writer:
                for src in sources:
                    for tab in pieces(src):
                        mask = [a in keep for a in tab.column("attempt_id").to_pylist()]
                        if all(mask):
                            writer.write_table(conform(tab, schema))
                        elif any(mask):
                            writer.write_table(conform(tab.filter(bools(mask)), schema))

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
            read_file_schema(self.traces_path, self.root, full=True)
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
            for part in part_files(folder):
                try:
                    read_checked_table(part, self.root)
                except Exception as exc:
                    os.replace(part, part.with_name(f".{part.name}.corrupt-{stamp}"))
                    done.append(f"{part} was unreadable ({short(exc)}); set aside")
        if self.results_path.exists():
            try:
                read_checked_table(self.results_path, self.root)
            except Exception as exc:
                aside = self.results_path.with_name(f"{RESULTS}.corrupt-{stamp}")
                os.replace(self.results_path, aside)
                sources = [*part_files(kept), *part_files(self.parts)]
                table = drop_duplicate_attempts(concat_records(sources, RESULT_SCHEMA, self.root))
                write_checked(self.results_path, parquet_bytes(table))
                n_runs = len(set(table.column("run_id").to_pylist()))
                done.append(
                    f"{self.results_path} was unreadable ({short(exc)}); rebuilt from "
                    f"{len(sources)} run parts ({n_runs} runs), the damaged file is {aside.name}"
                )
        if self.traces_path.exists():
            try:
                read_file_schema(self.traces_path, self.root, full=True)
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

    def _table(self, without: Sequence[str] = ()) -> pa.Table:
        """All records (every attempt once) as an Arrow table with :data:`RESULT_SCHEMA`,
        less the columns named in ``without``."""
        schema = pa.schema([f for f in RESULT_SCHEMA if f.name not in without])
        for _ in range(3):  # a part can vanish under us if a compaction runs meanwhile
            try:
                files = existing_files(self.results_path)
                tables = [read_checked_table(p, self.root, without) for p in files]
                for part in part_files(self.parts):
                    table = self._read_part(part)
                    gone = [c for c in without if c in table.schema.names]
                    tables.append(table.drop_columns(gone))
                return drop_duplicate_attempts(concat_arrow(tables, schema))
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

    def load(self, latest: bool = True, without: Sequence[str] = ()) -> pd.DataFrame:
        """All records as a DataFrame (columns of :data:`RESULT_SCHEMA`, less those named in
        ``without``: :data:`BULKY` leaves out the long texts a large sweep need not read).

        With ``latest`` (the default) each run id appears once, its most recent attempt: a
        failed run retried later counts by its retry. Integer columns are nullable
        (``Int64``), so a missing ``steps_to_success`` stays missing, never 0.
        """
        import pandas as pd

        table = self._table(without)
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

        results = self.load(latest=True, without=BULKY)
        if run_ids is not None:
            results = results[results["run_id"].isin(list(run_ids))]
        attempts = list(results["attempt_id"])
        sources = [*existing_files(self.traces_path), *part_files(self.trace_parts)]
        if not sources or not attempts:
            return pd.DataFrame(columns=["run_id", "step"])
        frames = []
        for src in sources:
            names = read_file_schema(src, self.root).names
            cols = None
            if columns is not None:
                want = ["run_id", "attempt_id", "step", *columns]
                cols = [c for c in dict.fromkeys(want) if c in names]
            try:
                tab = pq.read_table(
                    src, columns=cols, filters=[("attempt_id", "in", attempts)], **READ
                )
            except (pa.ArrowException, OSError) as exc:
                raise corrupt_error(src, self.root, exc) from exc
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

    def load(self, latest: bool = True, without: Sequence[str] = ()) -> pd.DataFrame:
        """All records of all folders (see :meth:`ResultStore.load`)."""
        return self._load(latest, without).drop(columns="_folder")

    def _load(self, latest: bool, without: Sequence[str] = ()) -> pd.DataFrame:
        import pandas as pd

        frames = [
            s.load(latest=latest, without=without).assign(_folder=k)
            for k, s in enumerate(self.stores)
        ]
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

        results = self._load(latest=True, without=BULKY)
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


__all__ = [
    "BULKY",
    "INT_METRICS",
    "LOCK",
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
    "records_table",
    "trace_rows",
    "trace_table",
]
