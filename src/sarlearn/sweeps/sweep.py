"""Running a sweep: many single runs, in parallel, resumable, every outcome recorded.

The unit of work is a list of :class:`RunTask`. With the default run function, runs that share
a rule, network shape, track and world (they differ in seed and learning rate) are batched into
one engine population (:mod:`sarlearn.sweeps.population`): one process, one compiled
loop, the same per-run numbers as run one by one. Other runs (custom run functions, kept run
folders, configurations the engine does not cover) go one run per task through the run
function.

Units run in spawned worker processes (safe with numba and threads on every platform), each
limited to one BLAS/numba thread so ``jobs`` processes use ``jobs`` cores, or on a Ray cluster
(``backend="ray"``, :mod:`sarlearn.sweeps.ray_backend`). Workers only compute; the main
process is the only writer of the store, so the store needs no cross-process locking. Workers
exit when the main process dies (a parent-death watch), so a ``kill -9`` leaves no orphans.

Outcomes:

- a run that raises is recorded with its error type, message and traceback (a result);
- an *infrastructure* error (``OSError`` such as a full disk, ``MemoryError``) is not a result:
  it is counted and reported, nothing is recorded, and the next invocation runs it again;
- a worker process that dies (out of memory, a crash in compiled code) breaks the pool; the
  runs that were in flight are then retried one at a time in a fresh process, and a run that
  kills its process again is recorded as ``WorkerCrashed``.

Before anything runs, :func:`validate_plan` builds one loop of every distinct configuration
(rules, tracks, world, network), so a bad rule name or a missing track image is a
:class:`~sarlearn.config.ConfigError`, not a sweep of recorded failures.

On a cluster, ``shard=(i, n)`` runs only the runs at positions ``i, i + n, i + 2n, ...`` of the
deterministic plan, each shard into its own folder; :class:`~sarlearn.store.store.MergedStore`
and the report read the folders back as one sweep.
"""

from __future__ import annotations

import importlib
import itertools
import json
import math
import multiprocessing
import operator
import os
import pickle
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sarlearn.config import ConfigError, RunConfig
from sarlearn.errors import SarlearnError
from sarlearn.store.store import (
    ResultStore,
    StoreCorruptError,
    base_record,
    downsample_trace,
    fill_error,
    fill_summary,
    now_utc,
    trace_rows,
)
from sarlearn.sweeps.spec import PlannedRun, SweepSpec, run_id

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np
    import pandas as pd

#: ``run_fn(config, out_dir) -> summary``; the default is :func:`follow_or_resume`.
RunFunction = Callable[[RunConfig, Path | None], Mapping[str, Any]]
#: Errors of the machine, not of the run: never recorded as results, retried on the next run.
INFRA_ERRORS: tuple[type[BaseException], ...] = (OSError, MemoryError)
#: Largest engine population a sweep builds by default (memory grows with it).
MAX_POPULATION = 64
BACKENDS = ("local", "ray")
_STARTED = ".sweep-started"
_T = TypeVar("_T")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
_GUARD_HINT = (
    'if run_sweep is called from a script, put the call under `if __name__ == "__main__":` '
    "(worker processes are spawned and import the script again)"
)


class SweepError(RuntimeError):
    """The sweep cannot run at all (e.g. the run function cannot be imported)."""


class SweepInfraError(SweepError):
    """The machine failed the sweep (e.g. the results cannot be written: disk full)."""


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


class Outcome:
    """One finished run: its results record and downsampled trace (or None).

    ``record["status"]`` is ``ok``, ``error`` (the run raised: a result) or ``infra`` (the
    machine failed: not a result, never stored).

    The trace may be given as its columns (``columns``: name -> 1-d numpy array, as an engine
    population makes it); :attr:`trace` then makes the DataFrame on first access, and the
    store writes the columns as they are (a sweep that never looks at ``trace`` never
    imports pandas).
    """

    __slots__ = ("_trace", "columns", "record")

    def __init__(
        self,
        record: dict[str, Any],
        trace: pd.DataFrame | None = None,
        *,
        columns: dict[str, np.ndarray] | None = None,
    ) -> None:
        if trace is not None and columns is not None:
            raise ValueError("Outcome: give the trace or its columns, not both")
        self.record = record
        self._trace = trace
        self.columns = columns

    @property
    def trace(self) -> pd.DataFrame | None:
        """The downsampled trace as a DataFrame (None: no trace)."""
        if self._trace is None and self.columns is not None:
            import pandas as pd

            self._trace = pd.DataFrame(self.columns)
        return self._trace

    @property
    def stored_trace(self) -> pd.DataFrame | dict[str, np.ndarray] | None:
        """The trace in the form the store takes (the columns if that is what there is)."""
        return self.columns if self.columns is not None else self._trace

    def __repr__(self) -> str:
        rows = None if self.stored_trace is None else trace_rows(self.stored_trace)
        return f"Outcome(record={self.record!r}, trace rows={rows})"


@dataclass
class SweepSummary:
    """Counts of a sweep invocation."""

    out: Path
    planned: int
    skipped: int = 0
    ok: int = 0
    failed: int = 0
    succeeded: int = 0  # ok runs that reached the success criterion
    infra: int = 0  # runs lost to infrastructure errors (not recorded; run again next time)
    infra_errors: list[str] = field(default_factory=list)  # the first few, "Type: message"
    repaired: list[str] = field(default_factory=list)  # what resume rebuilt (corrupt files)

    @property
    def ran(self) -> int:
        """Runs finished (and recorded) by this invocation."""
        return self.ok + self.failed


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sweep; what had finished is stored. ``summary`` has the counts."""

    def __init__(self, summary: SweepSummary) -> None:
        super().__init__("sweep interrupted")
        self.summary = summary


def follow_or_resume(cfg: RunConfig, out_dir: Path | None) -> dict[str, Any]:
    """``run_follow``, resuming the run in ``out_dir`` if an interrupted sweep left its
    checkpoint there (the run folder is keyed by run id, so it is the same run)."""
    from sarlearn.runs.outputs import CHECKPOINT, SUMMARY
    from sarlearn.runs.run import run_follow

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


def execute_population(tasks: Sequence[RunTask]) -> list[Outcome]:
    """Run the tasks (default run function, one population key) as one engine population.

    Per-run records as :func:`execute_runs` would make them (same metrics). If the population
    fails (a run diverged, the engine declines the configs), it is split in halves that run
    again, so a failing run ends up alone and goes through run_follow, which records it
    exactly as a solo run.
    """
    from sarlearn.sweeps.population import run_population

    if len(tasks) <= 1:
        return execute_runs(tasks)
    started = now_utc()
    for task in tasks:
        if task.pass_token:  # in a worker pool; in this process no marker is ever read
            _mark_started(task)
    t0 = time.perf_counter()
    try:
        summaries = run_population(
            [t.config for t in tasks], trace_every=tasks[0].trace_every, trace_format="columns"
        )
    except INFRA_ERRORS as exc:
        return [infra_outcome(t, exc, started) for t in tasks]
    except Exception:  # a run diverged, or the engine cannot run these configs together
        half = len(tasks) // 2
        return execute_population(tasks[:half]) + execute_population(tasks[half:])
    wall = (time.perf_counter() - t0) / len(tasks)  # each run's share of the population
    finished = now_utc()
    outcomes = []
    for task, summary in zip(tasks, summaries, strict=True):
        record = base_record(task.run_id, task.config, task.params)
        record["started_at"] = started
        trace = summary.pop("trace", None)
        fill_summary(record, summary)
        record["wall_time_s"] = wall
        record["finished_at"] = finished
        if not task.keep_run_dir:
            shutil.rmtree(task.out_dir, ignore_errors=True)
        outcomes.append(Outcome(record, columns=trace))
    return outcomes


def execute_unit(
    tasks: Sequence[RunTask],
    run_fn: RunFunction | str | None = None,
    population: bool = False,
) -> list[Outcome]:
    """One unit of work: an engine population, or the runs one by one."""
    if population and run_fn is None:
        return execute_population(tasks)
    return execute_runs(tasks, run_fn)


def _mark_started(task: RunTask) -> None:
    # tells the main process, should this worker die, that this run was in flight
    task.out_dir.mkdir(parents=True, exist_ok=True)
    (task.out_dir / _STARTED).write_text(task.pass_token)


def _execute_one(task: RunTask, fn: RunFunction) -> Outcome:
    record = base_record(task.run_id, task.config, task.params)
    record["started_at"] = now_utc()
    trace = None
    t0 = time.perf_counter()
    try:
        _mark_started(task)
        summary = fn(task.config, task.out_dir)
        fill_summary(record, summary)
        if task.trace_every:
            trace = _read_trace(summary, task.out_dir, task.trace_every)
    except INFRA_ERRORS as exc:
        # not a result: the run folder (and any checkpoint) stays for the next invocation
        return infra_outcome(task, exc, record["started_at"])
    except Exception as exc:
        fill_error(record, exc)
        trace = None
    record["wall_time_s"] = time.perf_counter() - t0
    record["finished_at"] = now_utc()
    if not task.keep_run_dir:
        shutil.rmtree(task.out_dir, ignore_errors=True)
    return Outcome(record, trace)


def infra_outcome(task: RunTask, exc: BaseException, started: Any) -> Outcome:
    record = base_record(task.run_id, task.config, task.params)
    fill_error(record, exc)
    record["status"] = "infra"
    record["started_at"] = started
    record["finished_at"] = now_utc()
    return Outcome(record, None)


def _read_trace(summary: Mapping[str, Any], out_dir: Path, every: int) -> pd.DataFrame | None:
    """The run's trace from ``summary["trace"]`` or ``out_dir/trace.parquet``, downsampled."""
    import pandas as pd

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


def validate_plan(runs: Sequence[PlannedRun | RunTask | RunConfig]) -> None:
    """Check that every run of a plan can start, before any of them does.

    Builds the closed loop of one run of each distinct configuration (all fields but seed and
    learning rate): the rule name, the track (a missing or unreadable image), the world,
    network and filters. Raises :class:`ConfigError` naming the first run that cannot start.
    """
    from sarlearn.agent import check_rule_name
    from sarlearn.loop import ClosedLoop
    from sarlearn.sweeps.population import PER_AGENT_FIELDS

    seen: set[str] = set()
    for item in runs:
        cfg = item if isinstance(item, RunConfig) else item.config
        data = cfg.model_dump(mode="json")
        for path in PER_AGENT_FIELDS:
            node = data
            for part in path[:-1]:
                node = node[part]
            node.pop(path[-1], None)
        key = json.dumps(data, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        params = getattr(item, "params", None) or {}
        what = ", ".join(f"{k}={v!r}" for k, v in params.items()) or run_id(cfg)
        try:
            check_rule_name(cfg.rule.name)
            ClosedLoop.from_config(cfg, 1)
        except SarlearnError as exc:
            raise ConfigError(f"the run {what} cannot start: {exc}") from None
        except Exception as exc:  # anything else a valid-looking config trips over
            raise ConfigError(f"the run {what} cannot start: {type(exc).__name__}: {exc}") from None


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


#: A unit of work: its tasks, and whether they run as one engine population.
Unit = tuple[list[RunTask], bool]


def make_units(
    todo: Sequence[RunTask],
    run_fn: RunFunction | str | None,
    slots: int,
    batch_size: int = 1,
    population: int | None = None,
) -> list[Unit]:
    """Split the runs to do into work units.

    With the default run function, runs with the same population key become populations of
    at most ``population`` runs (default: enough units to keep ``slots`` workers busy, at most
    :data:`MAX_POPULATION`); the rest, and everything with a custom run function, go in
    batches of ``batch_size`` runs run one by one. ``population=1`` turns batching off.
    """
    from sarlearn.sweeps.population import population_key

    plain: list[RunTask] = list(todo)
    units: list[Unit] = []
    if run_fn is None and population != 1:
        groups: dict[str, list[RunTask]] = {}
        plain = []
        for task in todo:
            # a kept run folder, or a checkpoint to resume from: run_follow's own business
            solo = task.keep_run_dir or (task.out_dir / "checkpoint.pkl").is_file()
            key = None if solo else population_key(task.config)
            if key is None:
                plain.append(task)
            else:
                groups.setdefault(key, []).append(task)
        size = population or min(MAX_POPULATION, max(1, math.ceil(len(todo) / max(1, slots))))
        for group in groups.values():
            # shares differing by at most one run, so no unit is a small remainder
            n_units = math.ceil(len(group) / size)
            cuts = [len(group) * i // n_units for i in range(n_units + 1)]
            units += [(group[a:b], True) for a, b in itertools.pairwise(cuts)]
    units += [(plain[i : i + batch_size], False) for i in range(0, len(plain), batch_size)]
    return units


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
    population: int | None = None,
    progress: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
    name: str | None = None,
    shard: tuple[int, int] | None = None,
    backend: str = "local",
    address: str | None = None,
    max_retries: int = 3,
) -> SweepSummary:
    """Run every planned run not yet in ``out``'s store and record each outcome.

    - ``runs``: a :class:`SweepSpec`, or planned runs / configs (ids are computed).
    - ``run_fn``: ``(config, out_dir) -> summary`` or ``"module:function"``; default
      ``run_follow`` (with population batching). With ``jobs > 1`` or Ray it must be importable
      by the workers (top-level).
    - ``jobs``: worker processes (default: all usable cores; a small sweep of populations,
      under ``IN_PROCESS_STEPS`` agent-steps, runs in this process with the engine's threads
      on all usable cores); 1 runs in this process (one engine thread).
    - ``trace_every``: keep every n-th step of each run's trace in ``traces.parquet``
      (0: keep none).
    - ``retry_failed``: also rerun runs whose latest attempt raised (they are skipped
      otherwise: a recorded failure is a result).
    - ``batch_size``: runs per work unit run one by one (custom run functions).
    - ``population``: most runs per engine population (default: automatic, see
      :func:`make_units`); 1 runs every run on its own through ``run_follow``.
    - ``shard``: ``(i, n)`` runs only the planned runs whose position ``p`` in the plan has
      ``p % n == i`` (for a cluster: one shard per machine, each into its own ``out``; see
      :func:`select_shard`). ``planned`` then counts the shard's runs.
    - ``backend``: ``"local"`` (a process pool) or ``"ray"`` (Ray tasks, at ``address``:
      ``None`` starts a local Ray, ``"auto"`` or ``"ray://host:port"`` joins a cluster);
      ``max_retries``: Ray's retries of a task whose worker process died.

    Raises :class:`ConfigError` (before anything runs) if a run of the plan cannot start,
    :class:`SweepError` if the sweep cannot run, :class:`SweepInfraError` if the results cannot
    be written, and :class:`SweepInterrupted` on Ctrl-C after storing what finished.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SweepError(f"run_sweep was called while a worker process was starting: {_GUARD_HINT}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if population is not None and population < 1:
        raise ValueError(f"population must be >= 1, got {population}")
    if backend not in BACKENDS:
        raise ConfigError(f"backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if backend == "ray" and keep_run_dirs:
        raise ConfigError("keep_run_dirs (--keep-run-dirs) works with the local backend only")
    if shard is not None:
        shard = check_shard(shard)  # before the folder is created
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file; a sweep needs a folder")
    store = ResultStore(out)
    with store.lock():
        tasks = select_shard(plan_tasks(runs, store, trace_every, keep_run_dirs), shard)
        summary = SweepSummary(out, planned=len(tasks))
        summary.repaired = _repair_if_needed(store)
        done = store.finished_ids(include_failed=not retry_failed)
        todo = [t for t in tasks if t.run_id not in done]
        summary.skipped = len(tasks) - len(todo)
        if todo and not callable(run_fn):
            _check_importable(run_fn)
        if todo and run_fn is None:
            validate_plan(todo)
        _write_manifest(store, runs, tasks, name, shard)
        threads = jobs or usable_cores()  # engine threads when populations run in-process
        in_process = (
            jobs is None
            and backend == "local"
            and _small_population_sweep(todo, run_fn, population)
        )
        jobs = 1 if in_process else max(1, min(jobs or usable_cores(), len(todo) or 1))
        if (jobs > 1 or backend == "ray") and callable(run_fn):
            _check_picklable(run_fn)
        compactor = _Compactor(store)

        def handle_all(outcomes: Sequence[Outcome]) -> None:
            """Store the outcomes of one unit of work (one part file for all of them)."""
            results = [o for o in outcomes if o.record["status"] != "infra"]
            try:
                if results:
                    store.add_many([(o.record, o.stored_trace) for o in results])
            except INFRA_ERRORS as exc:
                raise SweepInfraError(
                    f"cannot write the results to {out}: {type(exc).__name__}: {exc}; the "
                    "runs stored so far are kept, run the same command again to resume"
                ) from exc
            for outcome in outcomes:
                status = outcome.record["status"]
                if status == "infra":
                    summary.infra += 1
                    if len(summary.infra_errors) < 3:
                        rec = outcome.record
                        summary.infra_errors.append(f"{rec['error_type']}: {rec['error_message']}")
                elif status == "ok":
                    summary.ok += 1
                    summary.succeeded += bool(outcome.record["success"])
                else:
                    summary.failed += 1
                if on_outcome is not None:
                    on_outcome(outcome)
            compactor.maybe()

        try:
            if backend == "ray":
                from sarlearn.sweeps.ray_backend import execute_on_ray

                execute_on_ray(
                    todo,
                    run_fn,
                    handle_all,
                    summary,
                    address=address,
                    jobs=jobs,
                    batch_size=batch_size,
                    population=population,
                    max_retries=max_retries,
                    progress=progress,
                )
            else:
                units = make_units(todo, run_fn, jobs, batch_size, population)
                bar = sweep_progress_bar(len(todo), summary) if progress else nullcontext(None)
                here = jobs == 1 and run_fn is None  # the engine runs in this process
                with bar as tick, _engine_threads(threads if here else None):
                    _execute(units, run_fn, jobs, with_ticks(handle_all, tick))
        except KeyboardInterrupt:
            _compact_quietly(store)
            raise SweepInterrupted(summary) from None
        except BaseException:
            _compact_quietly(store)
            raise
        try:
            store.compact()
        except INFRA_ERRORS as exc:
            raise SweepInfraError(
                f"cannot compact the results in {out}: {type(exc).__name__}: {exc}; every run "
                "is stored in its part file, run the same command again to compact"
            ) from exc
    return summary


#: Below this many agent-steps in all, a sweep of populations runs in this process (the
#: engine's threads spread each population over the cores): starting worker processes (~2 s
#: of imports and compiled-kernel loading each) would cost more than they save.
IN_PROCESS_STEPS = 2_000_000


def _small_population_sweep(
    todo: Sequence[RunTask], run_fn: RunFunction | str | None, population: int | None
) -> bool:
    """True if every run to do goes into a population and all of them are little work."""
    from sarlearn.sweeps.population import population_key

    if run_fn is not None or population == 1 or not todo:
        return False
    if sum(t.config.steps for t in todo) > IN_PROCESS_STEPS:
        return False
    return all(not t.keep_run_dir and population_key(t.config) is not None for t in todo)


@contextmanager
def _engine_threads(n: int | None) -> Iterator[None]:
    """Let the compiled engine use ``n`` threads in this process (None: leave it alone)."""
    if n is None:
        yield
        return
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _compact_quietly(store: ResultStore) -> None:
    with suppress(Exception):  # the parts stay; the next invocation compacts them
        store.compact()


def _repair_if_needed(store: ResultStore) -> list[str]:
    """Rebuild an unreadable results/traces file from the run parts (resume does this)."""
    try:
        store.check()
        return []
    except StoreCorruptError:
        return store.repair()


def usable_cores() -> int:
    """CPU cores this process may use (respects affinity masks, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _execute(
    units: list[Unit],
    run_fn: RunFunction | str | None,
    jobs: int,
    handle: Callable[[Sequence[Outcome]], None],
) -> None:
    """Run the units; ``handle`` gets the outcomes of each unit, all at once."""
    if jobs == 1:
        for tasks, as_population in units:
            handle(execute_unit(tasks, run_fn, as_population))
        return
    while units:
        suspects, requeue = _pool_pass(units, run_fn, jobs, handle)
        if requeue and not suspects:
            raise SweepError(
                "worker processes died before starting any run (out of memory? see their "
                f"messages above); {_GUARD_HINT}"
            )
        for task in suspects:  # alone in a fresh process: a second crash is its own doing
            if any(_pool_pass([([task], False)], run_fn, 1, handle)):
                handle([crashed_outcome(task)])
                if not task.keep_run_dir:
                    shutil.rmtree(task.out_dir, ignore_errors=True)
        units = [([t], False) for t in requeue]


def crashed_outcome(task: RunTask) -> Outcome:
    """The record of a run that killed the process running it, alone, again."""
    record = base_record(task.run_id, task.config, task.params)
    record["started_at"] = record["finished_at"] = now_utc()
    record["worker_pid"] = None  # the dead worker's pid is not known here
    fill_error(record, WorkerCrashed("the process running this run died"))
    return Outcome(record, None)


def _pool_pass(
    units: list[Unit],
    run_fn: RunFunction | str | None,
    jobs: int,
    handle: Callable[[Sequence[Outcome]], None],
) -> tuple[list[RunTask], list[RunTask]]:
    """Run units in a pool; if it breaks, return (runs in flight, runs not started)."""
    # imported here: a sweep that runs in its own process never needs them (~0.02 s)
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    token = uuid.uuid4().hex
    lost: list[RunTask] = []
    workers = min(jobs, len(units))
    with (
        _single_threaded_workers(),
        ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=watch_parent,
            initargs=(os.getpid(),),
        ) as pool,
    ):
        futures = {
            pool.submit(
                execute_unit, [replace(t, pass_token=token) for t in tasks], run_fn, as_pop
            ): tasks
            for tasks, as_pop in units
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
                handle(outcomes)
        except BaseException:
            _kill_workers(pool)  # before shutdown, which forgets the processes
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    suspects = [t for t in lost if _started_in(t, token)]
    return suspects, [t for t in lost if not _started_in(t, token)]


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop the pool's workers now (Ctrl-C, an error): their runs are not waited for."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        with suppress(Exception):
            proc.terminate()


def _started_in(task: RunTask, token: str) -> bool:
    marker = task.out_dir / _STARTED
    try:
        return marker.read_text() == token
    except OSError:
        return False


def watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Worker initializer: exit when the process that started this worker dies.

    On Linux the kernel sends SIGKILL on the parent's death (``prctl(PR_SET_PDEATHSIG)``);
    everywhere a daemon thread also polls ``os.getppid()`` (a dead parent's children are
    re-parented) and exits the process. Either way a ``kill -9`` of a sweep leaves no
    workers behind.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except Exception:  # no libc prctl: the polling thread still works
            pass
    if os.getppid() != parent_pid:  # the parent died before the watch was set
        os._exit(1)

    def poll() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=poll, name="sarlearn-parent-watch", daemon=True).start()


@contextmanager
def _single_threaded_workers() -> Iterator[None]:
    """One BLAS/numba thread per worker (inherited by spawned processes), unless the user
    set these variables; restored afterwards."""
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    for v in THREAD_VARS:
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
            importlib.import_module("sarlearn.runs.run")
        else:
            resolve_run_function(run_fn)
    except (ImportError, AttributeError, TypeError) as exc:
        name = run_fn or "sarlearn.runs.run:run_follow"
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
def sweep_progress_bar(
    total: int, summary: SweepSummary, label: str = "sweep"
) -> Iterator[Callable[[], None]]:
    from rich.console import Console

    from sarlearn.progress import progress_bar

    bar = progress_bar(
        "{task.description}",
        "ok {task.fields[ok]}  failed {task.fields[failed]}",
        console=Console(stderr=True),
    )
    with bar:
        task = bar.add_task(label, total=total, ok=0, failed=0)

        def tick() -> None:
            bar.update(task, advance=1, ok=summary.ok, failed=summary.failed)

        yield tick


def with_ticks(
    handle: Callable[[Sequence[Outcome]], None], tick: Callable[[], None] | None
) -> Callable[[Sequence[Outcome]], None]:
    """``handle`` (of a unit's outcomes), then one ``tick`` per outcome (None: no ticks)."""
    if tick is None:
        return handle

    def both(outcomes: Sequence[Outcome]) -> None:
        handle(outcomes)
        for _ in outcomes:
            tick()

    return both


__all__ = [
    "BACKENDS",
    "INFRA_ERRORS",
    "MAX_POPULATION",
    "Outcome",
    "RunFunction",
    "RunTask",
    "SweepError",
    "SweepInfraError",
    "SweepInterrupted",
    "SweepSummary",
    "WorkerCrashed",
    "check_shard",
    "crashed_outcome",
    "execute_population",
    "execute_runs",
    "execute_unit",
    "follow_or_resume",
    "make_units",
    "parse_shard",
    "plan_tasks",
    "resolve_run_function",
    "run_sweep",
    "select_shard",
    "usable_cores",
    "validate_plan",
    "watch_parent",
]
