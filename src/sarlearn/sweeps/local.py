"""The local executor: a pool of spawned worker processes, or this process.

Units run in spawned worker processes (safe with numba and threads on every platform), each
limited to one BLAS/numba thread so ``jobs`` processes use ``jobs`` cores. Workers only
compute; the main process is the only writer of the store, so the store needs no cross-process
locking. Workers exit when the main process dies (a parent-death watch), so a ``kill -9``
leaves no orphans. At most :data:`IN_FLIGHT` units per worker are submitted at a time, so the
driver's memory does not grow with the number of runs.

A worker process that dies (out of memory, a crash in compiled code) breaks the pool; the
runs that were in flight are then retried one at a time in a fresh process, and a run that
kills its process again is recorded as ``WorkerCrashed``.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sarlearn.sweeps.tasks import (
    GUARD_HINT,
    IN_FLIGHT,
    STARTED,
    THREAD_VARS,
    Handler,
    Outcome,
    RunFunction,
    RunTask,
    SweepError,
    SweepSummary,
    Unit,
    crashed_outcome,
    execute_unit,
    make_units,
    sweep_progress_bar,
    with_ticks,
)

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


def usable_cores() -> int:
    """CPU cores this process may use (respects affinity masks, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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
                f"messages above); {GUARD_HINT}"
            )
        for task in suspects:  # alone in a fresh process: a second crash is its own doing
            if any(_pool_pass([([task], False)], run_fn, 1, handle)):
                handle([crashed_outcome(task)])
                if not task.keep_run_dir:
                    shutil.rmtree(task.out_dir, ignore_errors=True)
        units = [([t], False) for t in requeue]


def _pool_pass(
    units: list[Unit],
    run_fn: RunFunction | str | None,
    jobs: int,
    handle: Callable[[Sequence[Outcome]], None],
) -> tuple[list[RunTask], list[RunTask]]:
    """Run units in a pool; if it breaks, return (runs in flight, runs not started)."""
    # imported here: a sweep that runs in its own process never needs them (~0.02 s)
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    token = uuid.uuid4().hex
    lost: list[RunTask] = []
    workers = min(jobs, len(units))
    queue = iter(units)
    with (
        _single_threaded_workers(),
        ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=watch_parent,
            initargs=(os.getpid(),),
        ) as pool,
    ):
        futures: dict[Future[list[Outcome]], list[RunTask]] = {}

        def fill() -> None:
            """Keep IN_FLIGHT units per worker submitted: the driver's memory stays bounded
            by the work in flight, not by the size of the sweep."""
            for tasks, as_pop in itertools.islice(queue, IN_FLIGHT * workers - len(futures)):
                marked = [replace(t, pass_token=token) for t in tasks]
                try:
                    futures[pool.submit(execute_unit, marked, run_fn, as_pop)] = tasks
                except BrokenProcessPool:  # a worker died before any future said so
                    lost.extend(tasks)  # never started: requeued
                    return

        try:
            fill()
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for fut in done:
                    tasks = futures.pop(fut)  # its outcomes are released once handled
                    try:
                        outcomes = fut.result()
                    except BrokenProcessPool:
                        lost.extend(tasks)
                        continue
                    except Exception as exc:  # outside any run, e.g. run_fn not importable
                        raise SweepError(f"a worker failed outside any run: {exc!r}") from exc
                    handle(outcomes)
                if not lost:
                    fill()
            for tasks, _ in queue:  # never submitted once the pool broke: not started
                lost.extend(tasks)
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
    marker = task.out_dir / STARTED
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


@dataclass
class LocalExecutor:
    """Runs units in ``jobs`` worker processes (1: in this process, the engine's threads on
    ``threads`` cores when populations run here); see the module."""

    jobs: int
    threads: int
    batch_size: int = 1
    population: int | None = None
    progress: bool = False

    def __call__(
        self,
        todo: Sequence[RunTask],
        run_fn: RunFunction | str | None,
        handle: Handler,
        summary: SweepSummary,
    ) -> None:
        units = make_units(todo, run_fn, self.jobs, self.batch_size, self.population)
        bar = sweep_progress_bar(len(todo), summary) if self.progress else nullcontext(None)
        here = self.jobs == 1 and run_fn is None  # the engine runs in this process
        with bar as tick, _engine_threads(self.threads if here else None):
            _execute(units, run_fn, self.jobs, with_ticks(handle, tick))


__all__ = ["IN_FLIGHT", "LocalExecutor", "usable_cores", "watch_parent"]
