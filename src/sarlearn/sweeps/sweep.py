"""Running a sweep: many single runs, in parallel, resumable, every outcome recorded.

:func:`run_sweep` plans the runs (:func:`plan_tasks`, a shard of them with ``shard``), checks
that each can start, skips those already in the store, and hands the rest to an executor
(:mod:`sarlearn.sweeps.local` or :mod:`sarlearn.sweeps.ray_backend`) that runs them in work
units (:mod:`sarlearn.sweeps.tasks`); each unit's outcomes go to the store as they arrive.

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
import json
import multiprocessing
import operator
import pickle
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TypeVar

from sarlearn.config import ConfigError, RunConfig
from sarlearn.errors import SarlearnError
from sarlearn.store.store import ResultStore, StoreCorruptError, now_utc
from sarlearn.sweeps.local import LocalExecutor, usable_cores, watch_parent
from sarlearn.sweeps.spec import PlannedRun, SweepSpec, run_id
from sarlearn.sweeps.tasks import (
    GUARD_HINT,
    IN_FLIGHT,
    INFRA_ERRORS,
    MAX_POPULATION,
    THREAD_VARS,
    Executor,
    Outcome,
    RunFunction,
    RunTask,
    SweepError,
    SweepInfraError,
    SweepInterrupted,
    SweepSummary,
    Unit,
    WorkerCrashed,
    crashed_outcome,
    execute_population,
    execute_runs,
    execute_unit,
    follow_or_resume,
    infra_outcome,
    make_units,
    resolve_run_function,
    sweep_progress_bar,
    with_ticks,
)

BACKENDS = ("local", "ray")
_T = TypeVar("_T")


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
                item.params,  # the plan's own dict (read, never changed): no copy per run
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
        raise SweepError(f"run_sweep was called while a worker process was starting: {GUARD_HINT}")
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
    if backend == "ray":
        from sarlearn.sweeps.ray_backend import check_address

        check_address(address)  # before the folder is created: a wrong address fails fast
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

        executor: Executor
        if backend == "ray":
            from sarlearn.sweeps.ray_backend import RayExecutor

            executor = RayExecutor(address, jobs, batch_size, population, max_retries, progress)
        else:
            executor = LocalExecutor(jobs, threads, batch_size, population, progress)
        try:
            executor(todo, run_fn, handle_all, summary)
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


__all__ = [
    "BACKENDS",
    "INFRA_ERRORS",
    "IN_FLIGHT",
    "MAX_POPULATION",
    "THREAD_VARS",
    "Outcome",
    "RunFunction",
    "RunTask",
    "SweepError",
    "SweepInfraError",
    "SweepInterrupted",
    "SweepSummary",
    "Unit",
    "WorkerCrashed",
    "check_shard",
    "crashed_outcome",
    "execute_population",
    "execute_runs",
    "execute_unit",
    "follow_or_resume",
    "infra_outcome",
    "make_units",
    "parse_shard",
    "plan_tasks",
    "resolve_run_function",
    "run_sweep",
    "select_shard",
    "sweep_progress_bar",
    "usable_cores",
    "validate_plan",
    "watch_parent",
    "with_ticks",
]
