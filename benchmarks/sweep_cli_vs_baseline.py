"""The sweep speed target (>= 5x), end to end: the whole ``sarlearn sweep`` command (a fresh
Python process: imports, kernel loading, runs, result store) of this checkout against the
commit before sweeps ran as engine populations (``4952f0e``: one process task per run),
alternating, same machine.

Both use the same interpreter (the current environment); the baseline's source is checked out
into a temporary git worktree and put first on ``PYTHONPATH``. ``--ref COMMIT`` (repeatable)
adds more commits the same way, e.g. the one before a change to the fixed costs. Each version
runs the measured command once untimed first, so all have their compiled kernels cached.
Prints and writes JSON with medians of the wall time and of the command's CPU time (user +
system of the process and its children: on a machine shared with other jobs the wall time
moves with their load, the CPU time much less).

Usage::

    python benchmarks/sweep_cli_vs_baseline.py [--seeds 10] [--steps 8000] [--repeats 3] \
        [--ref COMMIT ...] [--out benchmarks/results/sweep-cli-vs-baseline.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = "4952f0e"
ROOT = Path(__file__).resolve().parents[1]


def timed_sweep(src: Path, seeds: int, steps: int, bytecode: bool = False) -> tuple[float, float]:
    """(wall, CPU) seconds of one sweep command (``bytecode``: Python may cache the compiled
    sources, as an installed package has them, even if PYTHONDONTWRITEBYTECODE is set)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-c", "from sarlearn.cli import app; app()", "sweep"]
        cmd += ["--rule", "sar", "--rule", "gdm", "--seeds", str(seeds), "--steps", str(steps)]
        cmd += ["--out", out, "--no-progress"]
        env = {**os.environ, "PYTHONPATH": str(src)}
        if bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ref", action="append", default=[], help="another commit to time")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--bytecode",
        action="store_true",
        help="let Python cache compiled sources (.pyc) even if PYTHONDONTWRITEBYTECODE is set: "
        "every version then starts as an installed package does (the warm-up run writes them)",
    )
    args = parser.parse_args()
    n_runs = 2 * args.seeds
    refs = {"before populations": BASELINE, **{f"at {r}": r for r in args.ref}}
    with tempfile.TemporaryDirectory() as tmp:
        sources = {}
        try:
            for k, (name, commit) in enumerate(refs.items()):
                path = Path(tmp) / f"ref{k}"
                subprocess.run(
                    ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
                    check=True,
                    capture_output=True,
                )
                sources[name] = path / "src"
            sources["now"] = ROOT / "src"
            times: dict[str, list[float]] = {k: [] for k in sources}
            cpu: dict[str, list[float]] = {k: [] for k in sources}
            for src in sources.values():  # compile and cache the kernels, untimed
                timed_sweep(src, args.seeds, args.steps, args.bytecode)
            for i in range(args.repeats):
                for name, src in sources.items():
                    wall, used = timed_sweep(src, args.seeds, args.steps, args.bytecode)
                    times[name].append(wall)
                    cpu[name].append(used)
                    print(f"{i} {name}: {wall:.2f} s wall, {used:.2f} s CPU", flush=True)
        finally:
            for src in sources.values():
                if src != ROOT / "src":
                    subprocess.run(
                        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(src.parent)],
                        check=False,
                        capture_output=True,
                    )
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    result = {
        "runs": n_runs,
        "steps": args.steps,
        "commits": {**refs, "now": "this checkout"},
        "numba_num_threads": os.environ.get("NUMBA_NUM_THREADS", "default (all cores)"),
        "python_bytecode_cached": args.bytecode or not os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "load_average_at_end": os.getloadavg()[0],
        "seconds": times,
        "cpu_seconds": cpu,
        "median_seconds": med,
        "median_cpu_seconds": med_cpu,
        "runs_per_min": {k: 60 * n_runs / v for k, v in med.items()},
        "speed-up": med["before populations"] / med["now"],
        "speed-up_cpu": med_cpu["before populations"] / med_cpu["now"],
    }
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
