"""Sweeps on Ray: the same work units as the local pool, run as Ray tasks on any cluster.

``run_sweep(..., backend="ray", address=...)`` (``sarlearn sweep --backend ray``) sends each
work unit (an engine population, or runs one by one; see
:func:`~sarlearn.sweeps.sweep.make_units`) to a Ray task of one CPU. The task returns the
runs' records and downsampled traces; the driver (this process) writes them to the result
store as they arrive, exactly as with the local pool, so resume, ``--shard``, the report and
the ``results.parquet`` rows do not depend on the backend.

Faults:

- a worker process that dies (killed, out of memory, a node lost) makes Ray run the task again,
  up to ``max_retries`` times; a unit still lost after that is split into single runs, and a
  single run whose worker dies every time is recorded as ``WorkerCrashed``, as locally;
- other failures of the cluster (a node or object lost for good, the task cancelled) are
  infrastructure errors: nothing is recorded, the runs are counted as not done and the next
  invocation runs them;
- the driver is the only writer: if it dies, Ray cancels its tasks, and running the same command
  again skips every run already stored.

Workers need sarlearn importable (the same version as the driver: run ids hash the config);
runs write their scratch files in the worker's temporary folder, never on the driver's disk.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Sequence
from contextlib import nullcontext, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sarlearn.sweeps.tasks import (
    IN_FLIGHT,
    THREAD_VARS,
    Handler,
    Outcome,
    RunFunction,
    RunTask,
    SweepError,
    SweepSummary,
    crashed_outcome,
    execute_unit,
    infra_outcome,
    make_units,
    now_utc,
    sweep_progress_bar,
    with_ticks,
)

RAY_EXTRA = 'Ray is not installed: pip install "sarlearn[ray]" (or pip install "ray>=2.9")'


def import_ray() -> Any:
    """The ``ray`` module, or :class:`SweepError` naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise SweepError(f"--backend ray: {RAY_EXTRA} ({exc})") from None
    return ray


def run_unit_on_worker(
    tasks: Sequence[RunTask], run_fn: RunFunction | str | None, population: bool
) -> list[Outcome]:
    """The body of a Ray task: one work unit, one thread, scratch files in a local temp dir."""
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    try:
        import numba

        numba.set_num_threads(1)  # the task holds one CPU
    except Exception:  # numba missing or already fixed: nothing to limit
        pass
    scratch = Path(tempfile.mkdtemp(prefix="sarlearn-ray-"))
    try:
        local = [replace(t, out_dir=scratch / t.run_id, keep_run_dir=False) for t in tasks]
        return execute_unit(local, run_fn, population)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


#: Seconds to wait for a Ray head to answer before a sweep gives up on its address.
CONNECT_TIMEOUT = 5.0


def check_address(address: str | None, timeout: float = CONNECT_TIMEOUT) -> None:
    """Fail fast on a Ray address nobody answers at (``host:port`` or ``ray://host:port``):
    ``ray.init`` would otherwise wait for minutes. ``None`` (a private local Ray) and
    ``"auto"`` (Ray finds the local cluster itself) are not checked.

    Raises:
        SweepError: the address is malformed or nothing listens there within ``timeout``.
    """
    if address is None or address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SweepError(f"Ray address {address!r}: expected auto, host:port or ray://host:port")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise SweepError(
            f"cannot reach Ray at {address} within {timeout:g} s ({exc.strerror or exc}); is "
            "`ray start --head` running there, and the port open?"
        ) from None


def cluster_label(ray: Any) -> str:
    """``"ray: 3 nodes, 96 CPUs"`` for the progress bar."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return f"ray: {nodes} node{'s' * (nodes != 1)}, {cpus} CPUs"


def execute_on_ray(
    todo: Sequence[RunTask],
    run_fn: RunFunction | str | None,
    handle: Callable[[Sequence[Outcome]], None],
    summary: SweepSummary,
    *,
    address: str | None = None,
    jobs: int | None = None,
    batch_size: int = 1,
    population: int | None = None,
    max_retries: int = 3,
    progress: bool = False,
) -> None:
    """Run ``todo`` as Ray tasks and hand each unit's outcomes to ``handle`` as they arrive.

    ``address``: None starts a private local Ray (``jobs`` CPUs) that is shut down at the end;
    ``"auto"``, ``"host:port"`` or ``"ray://host:port"`` joins a running cluster. An already
    initialised Ray (``ray.init`` called by the caller) is used as it is.
    """
    if not todo:
        return
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        check_address(address)
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING"}
        if address is None:
            # "local": a private Ray of our own, even when another cluster is registered on
            # this machine (address=None would join that one and refuse num_cpus).
            address = "local"
            kwargs["num_cpus"] = jobs
        try:
            ray.init(address=address, **kwargs)
        except Exception as exc:  # no cluster at that address, version mismatch, ...
            where = "a new local Ray" if address == "local" else address
            raise SweepError(f"cannot connect to Ray at {where}: {exc}") from None
        started_here = True
    try:
        label = cluster_label(ray)
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        units = make_units(todo, run_fn, cpus, batch_size, population)
        remote = ray.remote(run_unit_on_worker).options(
            num_cpus=1, max_retries=max_retries, retry_exceptions=False
        )
        pending: dict[Any, list[RunTask]] = {}

        def submit(tasks: list[RunTask], as_population: bool) -> None:
            pending[remote.remote(tasks, run_fn, as_population)] = tasks

        queue = iter(units)

        def fill() -> None:
            """Keep IN_FLIGHT units per CPU submitted: the driver holds the work in flight,
            not the whole sweep (its arguments, its references)."""
            for tasks, as_population in itertools.islice(queue, IN_FLIGHT * cpus - len(pending)):
                submit(tasks, as_population)

        fill()
        bar = sweep_progress_bar(len(todo), summary, label) if progress else nullcontext(None)
        with bar as tick:
            report = with_ticks(handle, tick)
            try:
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    for ref in done:
                        tasks = pending.pop(ref)
                        outcomes = _collect(ray, ref, tasks, submit)
                        if outcomes:  # empty: the unit was resubmitted run by run
                            report(outcomes)
                    fill()
            except BaseException:
                for ref in pending:  # Ctrl-C or an error: stop the cluster's work for us
                    with suppress(Exception):
                        ray.cancel(ref, force=True)
                raise
    finally:
        if started_here:
            ray.shutdown()


def _collect(
    ray: Any, ref: Any, tasks: list[RunTask], submit: Callable[[list[RunTask], bool], None]
) -> list[Outcome]:
    """The outcomes of a finished task; a lost unit is resubmitted run by run."""
    exc_mod = ray.exceptions
    try:
        return ray.get(ref)
    except exc_mod.WorkerCrashedError:
        # the worker died max_retries + 1 times: alone, a second crash is the run's own doing
        if len(tasks) > 1:
            for task in tasks:
                submit([task], False)
            return []
        return [crashed_outcome(tasks[0])]
    except exc_mod.RayTaskError as exc:  # raised outside any run (runs catch their errors)
        raise SweepError(f"a worker failed outside any run: {exc}") from exc
    except exc_mod.RayError as exc:  # the cluster failed us: not a result
        started = now_utc()
        return [infra_outcome(t, exc, started) for t in tasks]


@dataclass
class RayExecutor:
    """Runs units as Ray tasks (see :func:`execute_on_ray`)."""

    address: str | None
    jobs: int | None
    batch_size: int = 1
    population: int | None = None
    max_retries: int = 3
    progress: bool = False

    def __call__(
        self,
        todo: Sequence[RunTask],
        run_fn: RunFunction | str | None,
        handle: Handler,
        summary: SweepSummary,
    ) -> None:
        execute_on_ray(
            todo,
            run_fn,
            handle,
            summary,
            address=self.address,
            jobs=self.jobs,
            batch_size=self.batch_size,
            population=self.population,
            max_retries=self.max_retries,
            progress=self.progress,
        )


__all__ = [
    "RAY_EXTRA",
    "RayExecutor",
    "cluster_label",
    "execute_on_ray",
    "import_ray",
    "run_unit_on_worker",
]
