"""Sweep throughput: runs per minute of the local pool, the local pool without populations,
and a local Ray cluster, alternating in one process (the machine state is shared).

The plan is the issue's: ``--rule sar --rule gdm --seeds N --steps S`` (default 10 seeds,
8000 steps: 20 runs). Each timing is one whole ``run_sweep`` into a fresh folder (process
start-up of the workers included; Ray's own start-up excluded: it is started once, before).
CPU time is the driver's plus its pool workers' (Ray workers are not this process's children,
so their CPU is not counted). Prints a JSON summary with medians.

Usage::

    PYTHONPATH=src python benchmarks/sweep_backends.py [--seeds 10] [--steps 8000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()

    from sarlearn.sweeps.spec import parse_spec
    from sarlearn.sweeps.sweep import run_sweep

    spec = parse_spec(
        {
            "base": {"steps": args.steps},
            "grid": {"rule.name": ["sar", "gdm"], "seed": list(range(args.seeds))},
        }
    )
    n_runs = 2 * args.seeds
    variants = {
        "populations, default (in-process when small)": {},
        f"populations, {args.jobs} workers": {"jobs": args.jobs},
        f"one run per task, {args.jobs} workers (before populations)": {
            "jobs": args.jobs,
            "population": 1,
        },
    }
    if not args.no_ray:
        import ray

        t0 = time.perf_counter()
        ray.init(num_cpus=args.jobs, include_dashboard=False, logging_level="WARNING")
        print(f"ray started in {time.perf_counter() - t0:.1f} s", flush=True)
        variants["ray (local cluster), populations"] = {"backend": "ray"}
    tmp = Path(tempfile.mkdtemp(prefix="sarlearn-sweep-bench-"))
    timings: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for rep in range(args.repeats):
        for name, kwargs in variants.items():
            out = tmp / f"{len(timings[name])}-{abs(hash(name))}"
            load = os.getloadavg()[0]
            c0, t0 = cpu_seconds(), time.perf_counter()
            summary = run_sweep(spec, out, **kwargs)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            assert summary.ran == n_runs, summary
            timings[name].append((wall, cpu))
            print(
                f"{rep} {name}: {wall:.1f} s wall, {cpu:.1f} s CPU, "
                f"{60 * n_runs / wall:.0f} runs/min (load {load:.1f})",
                flush=True,
            )
    result = {
        "cpu": platform.processor() or platform.machine(),
        "runs": n_runs,
        "steps": args.steps,
        "jobs": args.jobs,
        "load_average_at_end": os.getloadavg()[0],
        "variants": {
            name: {
                "median_wall_s": statistics.median(w for w, _ in ts),
                "median_cpu_s": statistics.median(c for _, c in ts),
                "runs_per_min": 60 * n_runs / statistics.median(w for w, _ in ts),
            }
            for name, ts in timings.items()
        },
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
