"""Where a sweep driver's memory goes: ``sarlearn ARGS`` run in this process, sampled.

A thread samples, every ``PROFILE_INTERVAL`` seconds (default 2), the process's ``VmRSS``,
``VmHWM``, ``RssAnon``, ``RssFile`` and ``RssShmem`` (``/proc/self/status``), pyarrow's
allocated bytes and its pool's peak, and the garbage collector's object count; with
``PROFILE_TRACE=1`` also ``tracemalloc``'s traced memory, and every ``PROFILE_SNAP`` seconds
(default 60) the 10 source lines whose live allocations grew most since the first snapshot.
One JSON line per sample goes to ``PROFILE_LOG`` (default ``sweep-memory.jsonl``)::

    PROFILE_TRACE=1 PROFILE_SNAP=30 PYTHONPATH=src python benchmarks/sweep_memory_profile.py \\
        sweep --rule sar --rule gdm --seeds 5000 --steps 50 --jobs 2 --out /tmp/s10k --no-progress

Worker processes (spawned) import this file without running it: only the driver is sampled.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from typing import Any

FIELDS = ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem")


def status() -> dict[str, int]:
    """The memory fields of ``/proc/self/status``, MB."""
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in FIELDS:
                out[name] = int(value.split()[0]) // 1024
    return out


def sample_forever(path: str, interval: float, trace: bool, snap_every: float) -> None:
    import pyarrow as pa

    t0 = last = time.time()
    first = None
    with open(path, "w") as fh:
        while True:
            row: dict[str, Any] = {"t": round(time.time() - t0, 1), **status()}
            row["pyarrow_mb"] = pa.total_allocated_bytes() // 2**20
            row["pyarrow_pool_peak_mb"] = pa.default_memory_pool().max_memory() // 2**20
            row["gc_objects"] = len(gc.get_objects())
            if trace:
                current, peak = tracemalloc.get_traced_memory()
                row["traced_mb"], row["traced_peak_mb"] = current // 2**20, peak // 2**20
                if time.time() - last > snap_every:
                    last = time.time()
                    snap = tracemalloc.take_snapshot()
                    if first is None:
                        first = snap
                    else:
                        grown = snap.compare_to(first, "lineno")[:10]
                        row["grown_since_first"] = [str(s) for s in grown]
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            time.sleep(interval)


def main() -> None:
    trace = os.environ.get("PROFILE_TRACE") == "1"
    if trace:
        tracemalloc.start()
    args = (
        os.environ.get("PROFILE_LOG", "sweep-memory.jsonl"),
        float(os.environ.get("PROFILE_INTERVAL", "2")),
        trace,
        float(os.environ.get("PROFILE_SNAP", "60")),
    )
    threading.Thread(target=sample_forever, args=args, daemon=True).start()
    from sarlearn.cli import main as sarlearn

    sys.argv = ["sarlearn", *sys.argv[1:]]
    try:
        sarlearn()
    finally:
        print(json.dumps({"final": status()}), file=sys.stderr)


if __name__ == "__main__":
    main()
