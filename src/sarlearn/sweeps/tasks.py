"""The work of a sweep: tasks, their outcomes, and what a worker runs.

The unit of work is a list of :class:`RunTask`. With the default run function, runs that share
a rule, network shape, track and world (they differ in seed and learning rate) are batched into
one engine population (:mod:`sarlearn.sweeps.population`): one process, one compiled
loop, the same per-run numbers as run one by one. Other runs (custom run functions, kept run
folders, configurations the engine does not cover) go one run per task through the run
function.

An :class:`Executor` runs units and hands each unit's outcomes to the sweep as they arrive:
:class:`sarlearn.sweeps.local.LocalExecutor` (a process pool, or this process) and
:class:`sarlearn.sweeps.ray_backend.RayExecutor` (Ray tasks) are the two, siblings that depend
on this module only.
"""

from __future__ import annotations

import importlib
import itertools
import math
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sarlearn.config import RunConfig
from sarlearn.store.store import (
    base_record,
    downsample_trace,
    fill_error,
    fill_summary,
    now_utc,
    trace_rows,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

#: ``run_fn(config, out_dir) -> summary``; the default is :func:`follow_or_resume`.
RunFunction = Callable[[RunConfig, Path | None], Mapping[str, Any]]


#: Errors of the machine, not of the run: never recorded as results, retried on the next run.
INFRA_ERRORS: tuple[type[BaseException], ...] = (OSError, MemoryError)


#: Largest engine population a sweep builds by default (memory grows with it).
MAX_POPULATION = 64


STARTED = ".sweep-started"


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


GUARD_HINT = (
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
    (task.out_dir / STARTED).write_text(task.pass_token)


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


def crashed_outcome(task: RunTask) -> Outcome:
    """The record of a run that killed the process running it, alone, again."""
    record = base_record(task.run_id, task.config, task.params)
    record["started_at"] = record["finished_at"] = now_utc()
    record["worker_pid"] = None  # the dead worker's pid is not known here
    fill_error(record, WorkerCrashed("the process running this run died"))
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


#: Work units submitted per worker (or CPU) at a time (one running, one queued to start at once).
IN_FLIGHT = 2

#: What an executor hands the sweep: the outcomes of one unit of work.
Handler = Callable[[Sequence[Outcome]], None]


class Executor(Protocol):
    """Runs the tasks to do and calls ``handle`` with each unit's outcomes as they arrive,
    holding a bounded amount of work in flight (not the whole sweep)."""

    def __call__(
        self,
        todo: Sequence[RunTask],
        run_fn: RunFunction | str | None,
        handle: Handler,
        summary: SweepSummary,
    ) -> None: ...


__all__ = [
    "INFRA_ERRORS",
    "IN_FLIGHT",
    "MAX_POPULATION",
    "THREAD_VARS",
    "Executor",
    "Handler",
    "Outcome",
    "RunFunction",
    "RunTask",
    "SweepError",
    "SweepInfraError",
    "SweepInterrupted",
    "SweepSummary",
    "Unit",
    "WorkerCrashed",
    "crashed_outcome",
    "execute_population",
    "execute_runs",
    "execute_unit",
    "follow_or_resume",
    "infra_outcome",
    "make_units",
    "resolve_run_function",
    "sweep_progress_bar",
    "with_ticks",
]
