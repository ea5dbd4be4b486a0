"""Issue 10's sweep target, end to end: the whole ``sarlearn sweep`` command (a fresh Python
process: imports, kernel loading, runs, result store) of this checkout against the commit
before issue 10 (``4952f0e``: one process task per run), alternating, same machine.

Both use the same interpreter (the current environment); the baseline's source is checked out
into a temporary git worktree and put first on ``PYTHONPATH``. Each version runs once untimed
first, so both have their compiled kernels cached. Prints and writes JSON with medians.

Usage::

    python benchmarks/sweep_cli_vs_baseline.py [--seeds 10] [--steps 8000] [--repeats 3] \
        [--out benchmarks/results/sweep-cli-vs-baseline.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = "4952f0e"
ROOT = Path(__file__).resolve().parents[1]


def timed_sweep(src: Path, seeds: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-c", "from sarlearn.cli import app; app()", "sweep"]
        cmd += ["--rule", "sar", "--rule", "gdm", "--seeds", str(seeds), "--steps", str(steps)]
        cmd += ["--out", out, "--no-progress"]
        env = {**os.environ, "PYTHONPATH": str(src)}
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    n_runs = 2 * args.seeds
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), BASELINE],
            check=True,
            capture_output=True,
        )
        try:
            sources = {"before issue 10": base / "src", "now": ROOT / "src"}
            times: dict[str, list[float]] = {k: [] for k in sources}
            for src in sources.values():  # compile and cache the kernels, untimed
                timed_sweep(src, 1, 100)
            for i in range(args.repeats):
                for name, src in sources.items():
                    times[name].append(timed_sweep(src, args.seeds, args.steps))
                    print(f"{i} {name}: {times[name][-1]:.2f} s", flush=True)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                check=False,
                capture_output=True,
            )
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "runs": n_runs,
        "steps": args.steps,
        "load_average_at_end": os.getloadavg()[0],
        "seconds": times,
        "median_seconds": med,
        "runs_per_min": {k: 60 * n_runs / v for k, v in med.items()},
        "speed-up": med["before issue 10"] / med["now"],
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
