"""Peak memory of a sweep's store receiving N records in parts of 64, compacted every 5,000
records and at the end, as a sweep's driver does (the records carry the default config and a
2 kB summary, like a real run's)::

    PYTHONPATH=src python benchmarks/store_compaction.py 100000 /tmp/store
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from sarlearn.config import RunConfig
from sarlearn.store.store import ResultStore, base_record, fill_summary, now_utc


def peak_mb() -> float:
    """This process's peak resident memory (Linux)."""
    with open("/proc/self/status") as fh:
        line = next(ln for ln in fh if ln.startswith("VmHWM"))
    return int(line.split()[1]) / 1024


def main() -> None:
    n, root = int(sys.argv[1]), Path(sys.argv[2])
    shutil.rmtree(root, ignore_errors=True)
    store = ResultStore(root)
    cfg = RunConfig()
    summary = {"steps_to_success": 500, "status": "finished", "steps": 300, "note": "x" * 1500}
    t0, start = time.perf_counter(), peak_mb()
    for first in range(0, n, 64):
        items = []
        for k in range(first, min(n, first + 64)):
            record = fill_summary(base_record(f"{k:016x}", cfg, {"seed": k}), summary)
            record["started_at"] = record["finished_at"] = now_utc()
            items.append((record, None))
        store.add_many(items)
        if first % 5000 < 64:
            store.compact(traces=False)
    store.compact()
    print(f"{n} records: {time.perf_counter() - t0:.1f} s, peak {peak_mb():.0f} MB "
          f"(at start {start:.0f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
