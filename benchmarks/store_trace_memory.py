"""Memory a result store holds per run it has written but not yet compacted.

Runs one engine population of 64 runs (``--steps``, default 50) in this process, pickles its
outcomes as a worker would send them, then feeds ``--units`` unpickled copies to a store the
way a sweep's driver does (``add_many`` per unit, the records compacted every 20 units, the
traces only at the end) and prints the growth of resident memory per run::

    PYTHONPATH=src python benchmarks/store_trace_memory.py --units 150

Before the store kept trace parts as their bytes it kept the Arrow tables, which share the
unpickled numpy columns' memory: 22.2 kB per run here, against 0.8 kB since.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
from multiprocessing.reduction import ForkingPickler
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        line = next(x for x in fh if x.startswith("VmRSS"))
    return int(line.split()[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--units", type=int, default=150, help="64-run units to store")
    ap.add_argument("--steps", type=int, default=50, help="steps of each run")
    args = ap.parse_args()

    from sarlearn.store.store import ResultStore
    from sarlearn.sweeps.spec import SweepSpec
    from sarlearn.sweeps.sweep import plan_tasks
    from sarlearn.sweeps.tasks import execute_unit

    spec = SweepSpec(source="flags").override(
        base={"steps": args.steps}, grid={"rule.name": ["gdm"], "seed": list(range(64))}
    )
    root = Path(tempfile.mkdtemp(prefix="store-trace-memory-"))
    try:
        store = ResultStore(root)
        blob = bytes(ForkingPickler.dumps(execute_unit(plan_tasks(spec, store), None, True)))

        def unit() -> None:
            outcomes = ForkingPickler.loads(memoryview(blob))
            store.add_many([(o.record, o.stored_trace) for o in outcomes])

        for _ in range(20):  # warm up: pools, imports, the first compaction
            unit()
        store.compact()
        gc.collect()
        before = rss_mb()
        for i in range(args.units):
            unit()
            if i % 20 == 19:
                store.compact(traces=False)  # as a sweep does: records now and then
        gc.collect()
        grown = rss_mb() - before
        runs = args.units * 64
        print(
            f"{runs} runs stored: resident memory +{grown:.0f} MB, "
            f"{grown * 1024 / runs:.1f} kB per run"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
