"""Comparing run summaries in tests: the keys that legitimately differ between two runs of the
same config (timings, paths, resume bookkeeping)."""

from __future__ import annotations

VOLATILE = {
    "steps_per_second",
    "loop_steps_per_second",
    "run_seconds",
    "out_dir",
    "written_at",
    "resumed_from",
    "files",
    "problems",
}
