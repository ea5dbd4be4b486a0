"""Camera inputs: the numpy reference loop against the compiled engine, in one process.

Default configuration with ``world.inputs = "camera"`` (32 x 24 frame, 2 x 2 rays per pixel,
4 x 8 segment grid -> 16 predictors x 5 filters -> 10 x 10 -> 2, sar, float64). For one agent
and for a population of ``--population`` agents (the numpy loop batched over the population,
the engine's agents in parallel on its threads) the loops take turns, ``--repeats`` times, and
the script reports the median rates in steps per second (agent-steps per second for the
population) of wall-clock time and of CPU time (the machine may be shared). Ground-sensor
inputs (``rows``) on the engine are timed alongside for scale. With ``--exactness`` it also
measures, for camera inputs, the teacher-forced one-step deviation, the free-run deviation and
the reference's own 1-ulp sensitivity (``sarlearn.engine.verify``; 3 agents, 300 steps).

Usage::

    python benchmarks/camera_engine.py [--steps 20000] [--numpy-steps 1000] [--repeats 5]
        [--population 16] [--exactness] [--out results/NAME.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.engine.bench import machine_info
from sarlearn.loop import ClosedLoop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000, help="steps per engine timing")
    parser.add_argument("--numpy-steps", type=int, default=1_000, help="per numpy timing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--exactness", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    camera = RunConfig().with_overrides({"world.inputs": "camera"})
    cases: dict[str, tuple[Any, int, int]] = {}  # name -> (loop, agents, steps per timing)
    for pop in (1, args.population):
        cases[f"numpy camera P={pop}"] = (
            ClosedLoop.from_config(camera, pop),
            pop,
            args.numpy_steps,
        )
        cases[f"engine camera P={pop}"] = (FastClosedLoop.from_config(camera, pop), pop, args.steps)
        cases[f"engine rows P={pop}"] = (
            FastClosedLoop.from_config(RunConfig(), pop),
            pop,
            args.steps,
        )
    for loop, _, steps in cases.values():
        loop.run(min(steps, 500))  # compile (or load the cache) and warm up
    wall: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(args.repeats):
        for name, (loop, agents, steps) in cases.items():
            t0, c0 = time.perf_counter(), time.process_time()
            loop.run(steps)
            wall[name].append(agents * steps / (time.perf_counter() - t0))
            cpu[name].append(agents * steps / (time.process_time() - c0))
    out: dict[str, Any] = {
        "machine": machine_info(),
        "note": "shared machine (2 cores, 1-2 other jobs running); medians of alternating runs",
        "unit": "agent-steps per second",
        "repeats": args.repeats,
    }
    for name, (_, agents, steps) in cases.items():
        out[name] = {
            "agents": agents,
            "steps": steps,
            "median": statistics.median(wall[name]),
            "cpu_median": statistics.median(cpu[name]),
            "rates": wall[name],
        }
    for pop in (1, args.population):
        fast, slow = out[f"engine camera P={pop}"], out[f"numpy camera P={pop}"]
        out[f"speedup camera P={pop}"] = fast["median"] / slow["median"]
    if args.exactness:
        out["exactness"] = exactness(camera)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


def exactness(camera: RunConfig, steps: int = 300, population: int = 3) -> dict[str, Any]:
    """Largest deviations (relative to each record's largest value) with camera inputs."""
    from sarlearn.engine.verify import (
        reference_sensitivity,
        stepwise_deviation,
        trajectory_deviation,
    )

    cases = {
        "sar": {},
        "gdm": {"rule.name": "gdm", "rule.lr": 1e-3},
        "relevance-only": {"rule.name": "relevance-only", "rule.lr": 1e-4},
        "dfa": {"rule.name": "dfa", "rule.lr": 1e-3},
        "sign-only": {"rule.name": "sign-only", "rule.lr": 1e-4},
        "sar, float32": {"dtype": "float32"},
    }
    res: dict[str, Any] = {"steps": steps, "population": population}
    for name, over in cases.items():
        cfg = camera.with_overrides(over)
        res[name] = {
            "teacher_forced": max(stepwise_deviation(cfg, steps, population).values()),
            "free_run": max(trajectory_deviation(cfg, steps, population).values()),
            "reference_vs_itself": max(reference_sensitivity(cfg, steps, population).values()),
        }
        print(name, res[name], flush=True)
    return res


if __name__ == "__main__":
    main()
