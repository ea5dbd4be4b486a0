"""Where the time of one ``sarlearn sweep`` command goes: wall seconds of its phases.

Runs the command in this process (give the sweep's arguments), with timers wrapped around a
few functions (no profiler, so no profiling overhead): the imports, drawing the track,
checking the plan, the first engine call (numba's target context and the cached kernel), the
engine's steps, the per-run traces, writing and compacting the store. Run it in a fresh
process for each measurement::

    PYTHONPATH=src python benchmarks/sweep_phases.py sweep --rule sar --rule gdm --seeds 10 \
        --steps 8000 --out /tmp/sw --no-progress
"""

from __future__ import annotations

import atexit
import sys
import time
from collections.abc import Callable
from typing import Any

T0 = time.perf_counter()
ACC: dict[str, float] = {}


def timed(fn: Callable[..., Any], label: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            ACC[label] = ACC.get(label, 0.0) + time.perf_counter() - t

    return wrapper


import sarlearn.cli  # noqa: E402

T_CLI = time.perf_counter()
import sarlearn.store.store as store  # noqa: E402
import sarlearn.sweeps.population as population  # noqa: E402
import sarlearn.sweeps.sweep as sweep  # noqa: E402

T_STORE = time.perf_counter()
import numba  # noqa: E402, F401

import sarlearn.engine.fast_loop as fast_loop  # noqa: E402
import sarlearn.stages.world.tracks as tracks  # noqa: E402

T_NUMBA = time.perf_counter()

# numba's CPU target loads its lowering registries on the first call of any kernel (part of
# the first engine call); numba.np.arraymath imports scipy.linalg there to check for BLAS
from numba.core import cpu  # noqa: E402

cpu.CPUContext.load_additional_registries = timed(
    cpu.CPUContext.load_additional_registries, "  of which numba's target registries"
)
tracks._generated = timed(tracks._generated, "track image")
sweep.validate_plan = timed(sweep.validate_plan, "validate_plan (incl. the track)")
population._trace = timed(population._trace, "per-run traces (population._trace)")
# add() calls add_many(): wrapping add_many alone counts every write once
if hasattr(store.ResultStore, "add_many"):
    store.ResultStore.add_many = timed(store.ResultStore.add_many, "store: add (part files)")
else:
    store.ResultStore.add = timed(store.ResultStore.add, "store: add (part files)")
store.ResultStore.compact = timed(store.ResultStore.compact, "store: compact")
_run = fast_loop.FastClosedLoop.run
_first = [True]


def run(self: Any, n: int, *args: Any, **kwargs: Any) -> Any:
    t = time.perf_counter()
    try:
        return _run(self, n, *args, **kwargs)
    finally:
        label = "first engine call (kernel load)" if _first[0] else "engine steps"
        _first[0] = False
        ACC[label] = ACC.get(label, 0.0) + time.perf_counter() - t


fast_loop.FastClosedLoop.run = run


def report() -> None:
    sub = "  of which numba's target registries"
    rows = {
        "import sarlearn.cli": T_CLI - T0,
        "import the store (pyarrow)": T_STORE - T_CLI,
        "import numba and the engine": T_NUMBA - T_STORE,
    }
    for name, sec in ACC.items():
        if name != sub:
            rows[name] = sec
        if name == "first engine call (kernel load)" and sub in ACC:
            rows[sub] = ACC[sub]  # part of the first engine call
    total = time.perf_counter() - T0
    for name, sec in rows.items():
        print(f"{name:40s} {sec:7.3f} s", file=sys.stderr)
    print(f"{'total in this process':40s} {total:7.3f} s", file=sys.stderr)


atexit.register(report)
sys.argv = ["sarlearn", *sys.argv[1:]]
sarlearn.cli.app()
