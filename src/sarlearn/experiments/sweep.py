"""Running a sweep: many single runs, in parallel, resumable, every outcome recorded.

The unit of work is a list of :class:`RunTask` handed to :func:`execute_runs` (one task per
list today; a population engine can later take a whole list of seeds at once). Workers are
spawned processes (safe with numba and threads on every platform), each limited to one BLAS/
numba thread so ``jobs`` processes use ``jobs`` cores. Workers only compute; the main process
is the only writer of the store, so the store needs no cross-process locking.

A run that raises is recorded with its error type and message. A worker process that dies
(out of memory, a crash in compiled code) breaks the pool; the runs that were in flight are
then retried one at a time in a fresh process, and a run that kills its process again is
recorded as ``WorkerCrashed``.

On a cluster, ``shard=(i, n)`` runs only the runs at positions ``i, i + n, i + 2n, ...`` of the
deterministic plan, each shard into its own folder; :class:`~sarlearn.experiments.store.MergedStore`
and the report read the folders back as one sweep.
"""

from __future__ import annotations

import importlib
import operator
import os
import pickle
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from sarlearn.config import ConfigError, RunConfig
from sarlearn.experiments.spec import PlannedRun, SweepSpec, run_id
from sarlearn.experiments.store import (
    ResultStore,
    base_record,
    downsample_trace,
    fill_error,
    fill_summary,
    now_utc,
)

#: ``run_fn(config, out_dir) -> summary``; the default is :func:`follow_or_resume`.
RunFunction = Callable[[RunConfig, Path | None], Mapping[str, Any]]
_STARTED = ".sweep-started"
_T = TypeVar("_T")
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


class SweepError(RuntimeError):
    """The sweep cannot run at all (e.g. the run function cannot be imported)."""


class WorkerCrashed(RuntimeError):
    """A run killed the process running it (recorded as this error type)."""


@dataclass(frozen=True)
class RunTask:
    """What a worker needs for one run (picklable)."""

    run_id: str
    config: RunConfig
    params: dict[str, Any]
    out_dir: Path
    trace_every: int = 10
    keep_run_dir: bool = False
    pass_token: str = ""


@dataclass(frozen=True)
class Outcome:
    """One finished run: its results record and downsampled trace (or None)."""

    record: dict[str, Any]
    trace: pd.DataFrame | None


@dataclass
class SweepSummary:
    """Counts of a sweep invocation."""

    out: Path
    planned: int
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    succeeded: int = 0  # ok runs that reached the success criterion

    @property
    def ran(self) -> int:
        """Runs finished by this invocation."""
        return self.ok + self.failed


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; what had finished is stored. ``summary`` has the counts."""

    def __init__(self, summary: SweepSummary) -> None:
        super().__init__("sweep interrupted")
        self.summary = summary


def follow_or_resume(cfg: RunConfig, out_dir: Path | None) -> dict[str, Any]:
    """``run_follow``, resuming the run in ``out_dir`` if an interrupted sweep left its
    checkpoint there (the run folder is keyed by run id, so it is the same run)."""
    from sarlearn.experiments.outputs import CHECKPOINT, SUMMARY
    from sarlearn.experiments.run import run_follow

    # The report draws its own figures, so per-run figures would only cost time.
    if out_dir is not None and (out_dir / CHECKPOINT).is_file():
        return run_follow(cfg, out_dir, resume=True, figures=False)
    if out_dir is not None:  # killed before its first checkpoint: start again
        (out_dir / SUMMARY).unlink(missing_ok=True)
    return run_follow(cfg, out_dir, figures=False)


def resolve_run_function(run_fn: RunFunction | str | None) -> RunFunction:
    """The callable for ``run_fn``: itself, a ``"module:function"`` path, or the default
    :func:`follow_or_resume`."""
    if run_fn is None:
        return follow_or_resume
    if callable(run_fn):
        return run_fn
    module_name, _, attr = run_fn.partition(":")
    fn = getattr(importlib.import_module(module_name), attr)
    if not callable(fn):
        raise TypeError(f"{run_fn!r} is not a function")
    return fn


def execute_runs(
    tasks: Sequence[RunTask], run_fn: RunFunction | str | None = None
) -> list[Outcome]:
    """Run each task and return its outcome; exceptions become error records.

    The work unit of a sweep (top-level so spawned workers can import it). Only ``Exception``
    is caught: Ctrl-C stops the runs rather than being recorded as their failure.
    """
    fn = resolve_run_function(run_fn)
    return [_execute_one(task, fn) for task in tasks]


def _execute_one(task: RunTask, fn: RunFunction) -> Outcome:
    record = base_record(task.run_id, task.config, task.params)
    record["started_at"] = now_utc()
    trace = None
    t0 = time.perf_counter()
    task.out_dir.mkdir(parents=True, exist_ok=True)
    # tells the main process, should this worker die, that this run was in flight
    (task.out_dir / _STARTED).write_text(task.pass_token)
    try:
        summary = fn(task.config, task.out_dir)
        fill_summary(record, summary)
        if task.trace_every:
            trace = _read_trace(summary, task.out_dir, task.trace_every)
    except Exception as exc:
        fill_error(record, exc)
        trace = None
    record["wall_time_s"] = time.perf_counter() - t0
    record["finished_at"] = now_utc()
    if not task.keep_run_dir:
        shutil.rmtree(task.out_dir, ignore_errors=True)
    return Outcome(record, trace)


def _read_trace(summary: Mapping[str, Any], out_dir: Path, every: int) -> pd.DataFrame | None:
    """The run's trace from ``summary["trace"]`` or ``out_dir/trace.parquet``, downsampled."""
    raw = summary.get("trace")
    if raw is None:
        path = out_dir / "trace.parquet"
        if not path.exists():
            return None
        raw = pd.read_parquet(path)
    frame = raw if isinstance(raw, pd.DataFrame) else pd.DataFrame(raw)
    return downsample_trace(frame, every)


def plan_tasks(
    runs: SweepSpec | Sequence[PlannedRun | RunConfig],
    store: ResultStore,
    trace_every: int = 10,
    keep_run_dirs: bool = False,
) -> list[RunTask]:
    """Tasks for every planned run (done or not), in plan order."""
    planned = runs.expand() if isinstance(runs, SweepSpec) else list(runs)
    tasks = []
    for item in planned:
        if isinstance(item, RunConfig):
            item = PlannedRun(run_id(item), item, {})
        tasks.append(
            RunTask(
                item.run_id,
                item.config,
                dict(item.params),
                store.run_dir(item.run_id),
                trace_every,
                keep_run_dirs,
            )
        )
    return tasks


def check_shard(shard: tuple[int, int]) -> tuple[int, int]:
    """``shard`` as ``(i, n)`` if both are integers and ``0 <= i < n``; raises
    :class:`ConfigError` otherwise."""
    try:
        i, n = (operator.index(x) for x in shard)
    except (TypeError, ValueError):
        raise ConfigError(f"shard {shard!r}: expected (i, n), two integers") from None
    if not 0 <= i < n:
        raise ConfigError(f"shard {i}/{n}: expected I/N with 0 <= I < N, e.g. 3/16 (0-based I)")
    return i, n


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (as given to ``--shard``) as ``(i, n)``; raises :class:`ConfigError`."""
    i, sep, n = text.partition("/")
    if sep and i.strip().isdigit() and n.strip().isdigit() and int(i) < int(n):
        return int(i), int(n)
    raise ConfigError(f"--shard {text!r}: expected I/N with 0 <= I < N, e.g. 3/16 (0-based I)")


def select_shard(planned: Sequence[_T], shard: tuple[int, int] | None) -> list[_T]:
    """The planned runs of shard ``(i, n)``: those at positions ``p`` with ``p % n == i``
    (all of them for ``None``). The shards of one plan are disjoint and cover it."""
    if shard is None:
        return list(planned)
    i, n = check_shard(shard)
    return list(planned[i::n])


def run_sweep(
    runs: SweepSpec | Sequence[PlannedRun | RunConfig],
    out: str | Path,
    *,
    run_fn: RunFunction | str | None = None,
    jobs: int | None = None,
    trace_every: int = 10,
    keep_run_dirs: bool = False,
    retry_failed: bool = False,
    batch_size: int = 1,
    progress: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
    name: str | None = None,
    shard: tuple[int, int] | None = None,
) -> SweepSummary:
    """Run every planned run not yet in ``out``'s store and record each outcome.

    - ``runs``: a :class:`SweepSpec`, or planned runs / configs (ids are computed).
    - ``run_fn``: ``(config, out_dir) -> summary`` or ``"module:function"``; default
      ``run_follow``. With ``jobs > 1`` it must be importable by spawned workers (top-level).
    - ``jobs``: worker processes (default: all usable cores); 1 runs in this process.
    - ``trace_every``: keep every n-th step of each run's trace in ``traces.parquet``
      (0: keep none).
    - ``retry_failed``: also rerun runs whose latest attempt raised (they are skipped
      otherwise: a recorded failure is a result).
    - ``batch_size``: runs per work unit sent to a worker.
    - ``shard``: ``(i, n)`` runs only the planned runs whose position ``p`` in the plan has
      ``p % n == i`` (for a cluster: one shard per machine, each into its own ``out``; see
      :func:`select_shard`). ``planned`` then counts the shard's runs.

    Raises :class:`SweepInterrupted` on Ctrl-C after storing what finished.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if shard is not None:
        shard = check_shard(shard)  # before the folder is created
    store = ResultStore(out)
    with store.lock():
        tasks = select_shard(plan_tasks(runs, store, trace_every, keep_run_dirs), shard)
        done = store.finished_ids(include_failed=not retry_failed)
        todo = [t for t in tasks if t.run_id not in done]
        summary = SweepSummary(Path(out), planned=len(tasks), skipped=len(tasks) - len(todo))
        if todo and not callable(run_fn):
            _check_importable(run_fn)
        _write_manifest(store, runs, tasks, name, shard)
        jobs = max(1, min(jobs or usable_cores(), len(todo) or 1))
        if jobs > 1 and callable(run_fn):
            _check_picklable(run_fn)
        compactor = _Compactor(store)

        def handle(outcome: Outcome) -> None:
            store.add(outcome.record, outcome.trace)
            if outcome.record["status"] == "ok":
                summary.ok += 1
                summary.succeeded += bool(outcome.record["success"])
            else:
                summary.failed += 1
            if on_outcome is not None:
                on_outcome(outcome)
            compactor.maybe()

        batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
        bar = _progress_bar(len(todo), summary) if progress else nullcontext(None)
        try:
            with bar as tick:
                if tick is not None:
                    handle = _with_tick(handle, tick)
                _execute(batches, run_fn, jobs, handle)
        except KeyboardInterrupt:
            store.compact()
            raise SweepInterrupted(summary) from None
        store.compact()
    return summary


def usable_cores() -> int:
    """CPU cores this process may use (respects affinity masks, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _execute(
    batches: list[list[RunTask]],
    run_fn: RunFunction | str | None,
    jobs: int,
    handle: Callable[[Outcome], None],
) -> None:
    if jobs == 1:
        for batch in batches:
            for outcome in execute_runs(batch, run_fn):
                handle(outcome)
        return
    while batches:
        suspects, requeue = _pool_pass(batches, run_fn, jobs, handle)
        if requeue and not suspects:
            raise SweepError("worker processes died before starting any run")
        for task in suspects:  # alone in a fresh process: a second crash is its own doing
            if any(_pool_pass([[task]], run_fn, 1, handle)):
                record = base_record(task.run_id, task.config, task.params)
                record["started_at"] = record["finished_at"] = now_utc()
                record["worker_pid"] = None  # the dead worker's pid is not known here
                fill_error(record, WorkerCrashed("the process running this run died"))
                handle(Outcome(record, None))
                if not task.keep_run_dir:
                    shutil.rmtree(task.out_dir, ignore_errors=True)
        batches = [[t] for t in requeue]


def _pool_pass(
    batches: list[list[RunTask]],
    run_fn: RunFunction | str | None,
    jobs: int,
    handle: Callable[[Outcome], None],
) -> tuple[list[RunTask], list[RunTask]]:
    """Run batches in a pool; if it breaks, return (runs in flight, runs not started)."""
    token = uuid.uuid4().hex
    lost: list[RunTask] = []
    workers = min(jobs, len(batches))
    with (
        _single_threaded_workers(),
        ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool,
    ):
        futures = {
            pool.submit(execute_runs, [replace(t, pass_token=token) for t in b], run_fn): b
            for b in batches
        }
        try:
            for fut in as_completed(futures):
                try:
                    outcomes = fut.result()
                except BrokenProcessPool:
                    lost.extend(futures[fut])
                    continue
                except Exception as exc:  # outside any run, e.g. run_fn not importable there
                    raise SweepError(f"a worker failed outside any run: {exc!r}") from exc
                for outcome in outcomes:
                    handle(outcome)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    suspects = [t for t in lost if _started_in(t, token)]
    return suspects, [t for t in lost if not _started_in(t, token)]


def _started_in(task: RunTask, token: str) -> bool:
    marker = task.out_dir / _STARTED
    return marker.exists() and marker.read_text() == token


@contextmanager
def _single_threaded_workers() -> Iterator[None]:
    """One BLAS/numba thread per worker (inherited by spawned processes), unless the user
    set these variables; restored afterwards."""
    saved = {v: os.environ.get(v) for v in _THREAD_VARS}
    for v in _THREAD_VARS:
        os.environ.setdefault(v, "1")
    try:
        yield
    finally:
        for v, old in saved.items():
            if old is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = old


class _Compactor:
    """Rewrites results.parquet now and then during a sweep (traces only at the end), never
    so often that compaction, which grows with the table, dominates."""

    def __init__(self, store: ResultStore) -> None:
        self.store = store
        self.last = time.monotonic()
        self.interval = 5.0

    def maybe(self) -> None:
        if time.monotonic() - self.last < self.interval:
            return
        t0 = time.monotonic()
        self.store.compact(traces=False)
        self.last = time.monotonic()
        self.interval = max(5.0, 20 * (self.last - t0))


def _check_picklable(run_fn: RunFunction) -> None:
    """A run function sent to worker processes must pickle (a module-level function). Checked
    here, before any pool exists: a task that fails to pickle inside ProcessPoolExecutor's
    feeder thread can leave the pool hung at interpreter exit."""
    try:
        pickle.dumps(run_fn)
    except Exception as exc:
        raise SweepError(
            f"a worker failed outside any run: the run function {run_fn!r} cannot be sent to "
            f"worker processes ({exc}); use a module-level function, a 'module:function' "
            "path, or jobs=1"
        ) from exc


def _check_importable(run_fn: str | None) -> None:
    try:
        if run_fn is None:
            importlib.import_module("sarlearn.experiments.run")
        else:
            resolve_run_function(run_fn)
    except (ImportError, AttributeError, TypeError) as exc:
        name = run_fn or "sarlearn.experiments.run:run_follow"
        raise SweepError(f"cannot load the run function {name!r}: {exc}") from exc


def _write_manifest(
    store: ResultStore,
    runs: object,
    tasks: Sequence[RunTask],
    name: str | None,
    shard: tuple[int, int] | None = None,
) -> None:
    spec = runs if isinstance(runs, SweepSpec) else None
    store.write_manifest(
        {
            "name": name,
            "shard": list(shard) if shard else None,
            "source": spec.source if spec else "python",
            "spec": {"base": spec.base, "grid": spec.grid, "cases": spec.cases} if spec else None,
            "written_at": now_utc().isoformat(),
            "n_runs": len(tasks),
            "runs": [{"run_id": t.run_id, "params": t.params} for t in tasks],
        }
    )


@contextmanager
def _progress_bar(total: int, summary: SweepSummary) -> Iterator[Callable[[], None]]:
    from rich.console import Console

    from sarlearn.progress import progress_bar

    bar = progress_bar(
        "sweep", "ok {task.fields[ok]}  failed {task.fields[failed]}", console=Console(stderr=True)
    )
    with bar:
        task = bar.add_task("sweep", total=total, ok=0, failed=0)

        def tick() -> None:
            bar.update(task, advance=1, ok=summary.ok, failed=summary.failed)

        yield tick


def _with_tick(
    handle: Callable[[Outcome], None], tick: Callable[[], None]
) -> Callable[[Outcome], None]:
    def both(outcome: Outcome) -> None:
        handle(outcome)
        tick()

    return both


__all__ = [
    "Outcome",
    "RunFunction",
    "RunTask",
    "SweepError",
    "SweepInterrupted",
    "SweepSummary",
    "WorkerCrashed",
    "check_shard",
    "execute_runs",
    "follow_or_resume",
    "parse_shard",
    "plan_tasks",
    "resolve_run_function",
    "run_sweep",
    "select_shard",
    "usable_cores",
]
