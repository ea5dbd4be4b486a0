"""The C++ target (the learner >= 6x the C++ library), measured in pairs: the engine against
the lab's C++ library in alternating chunks of the same process, so that the VM host's load
(which moved the C++ library's own rate 1.7x between runs here) falls on both sides of each
ratio.

Each round times, one after the other, for each rule:

- ``single``: the default world, one agent (``FastClosedLoop``: world, sensors, filters,
  network, rule, motors; a step with e = 0 skips the update, as the engine always does);
- ``dense``: the same on the graded "dense" floor of ``sarlearn bench``, where every step
  learns (the world included);
- ``learner``: the engine's learner alone, every step learning (random predictors, errors that
  are never 0; ``FastClosedLoop.step_agents``), the like-for-like comparison;

and once per round the C++ library's learner alone (``FeedforwardClosedloopLearningWithFilterbank``,
144 predictors x 5 filters -> 10 x 10 -> 2, threads off, inputs converted before timing; see
``sarlearn.engine.bench.bench_cpp_learner``). It prints and writes the per-round ratios to the
C++ round and their medians, wall clock and CPU time.

    taskset -c 1 python benchmarks/vs_cpp_paired.py [--rounds 9] [--steps 8000] \
        [--out benchmarks/results/vs-cpp-paired.json]

The C++ package is optional and not a project dependency (install command in
docs/performance.md); without it the script says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.engine.bench import (
    N_PREDICTORS,
    WARMUP_STEPS,
    dense_floor,
    import_cpp,
    learner_inputs,
    machine_info,
)
from sarlearn.loop import ClosedLoop
from sarlearn.stages.world.sim import SimWorld


def timed(run: Callable[[], int]) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second) of one call of ``run``."""
    t0, c0 = time.perf_counter(), time.process_time()
    work = run()
    t1, c1 = time.perf_counter(), time.process_time()
    return work / (t1 - t0), work / max(c1 - c0, 1e-9)


def world_run(loop: FastClosedLoop, steps: int) -> Callable[[], int]:
    """A chunk runner of a closed loop that records the share of steps that learned."""
    loop.run(WARMUP_STEPS)  # compile (or load), then past the filter states' decay
    updates: list[float] = []

    def run() -> int:
        rec = loop.run(steps)
        updates.append(float(np.mean(rec["error"] != 0)))
        return steps

    run.updates = updates  # type: ignore[attr-defined]
    return run


def engine_runs(rule: str, steps: int) -> dict[str, Callable[[], int]]:
    """Warm chunk runners: the default world, the dense floor (one agent each) and the learner
    alone."""
    # raw rows: 144 predictors x 5 filters = 720 inputs, the network the C++ library runs
    cfg = RunConfig().with_overrides({"rule.name": rule, "world.predictor_mode": "raw"})
    track, start = dense_floor(cfg)
    dense_cfg = cfg.with_overrides({"world.start": list(start)})
    dense = ClosedLoop.from_config(dense_cfg, 1, robot=SimWorld(dense_cfg.world, 1, track=track))
    learner = FastClosedLoop.from_config(cfg, 1)
    pred, err = learner_inputs(steps)
    p3, e2 = pred[:, None, :], err[:, None]
    learner.step_agents(p3[:WARMUP_STEPS], e2[:WARMUP_STEPS])

    def learn() -> int:
        learner.step_agents(p3, e2)
        return steps

    return {
        "single": world_run(FastClosedLoop.from_config(cfg, 1), steps),
        "dense": world_run(FastClosedLoop(dense), steps),
        "learner": learn,
    }


def cpp_run(fcl: Any, layers: list[int], steps: int) -> Callable[[], int]:
    """A warm chunk runner of the C++ library's learner, threads off (as ``bench_cpp_learner``)."""
    from sarlearn.engine.bench import quiet_stdout

    net = fcl.FeedforwardClosedloopLearningWithFilterbank(
        N_PREDICTORS, fcl.IntVector(layers), 5, 3.0, 10.0
    )
    net.initWeights(1.0, 0, fcl.FCLNeuron.MAX_OUTPUT_RANDOM)
    net.setLearningRate(1e-5)
    with quiet_stdout():
        for i in range(net.getNumLayers()):
            net.getLayer(i).setUseThreads(0)
    rng = np.random.default_rng(0)
    m = min(steps, 2000)
    inputs = [fcl.DoubleVector(rng.random(N_PREDICTORS).tolist()) for _ in range(m)]
    errors = [fcl.DoubleVector([float(e)] * N_PREDICTORS) for e in rng.normal(0.0, 5.0, m)]

    def run() -> int:
        for t in range(steps):
            net.doStep(inputs[t % m], errors[t % m])
            net.getOutput(0)
        return steps

    run()  # warm
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--steps", type=int, default=8000, help="engine steps per chunk")
    ap.add_argument("--cpp-steps", type=int, default=2000, help="C++ steps per chunk")
    ap.add_argument("--rule", action="append", default=None)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    fcl, why = import_cpp()
    if fcl is None:
        print(why, file=sys.stderr)
        return 2
    rules = a.rule or ["sar", "gdm"]
    layers = list(RunConfig().network.layers)
    runs = {rule: engine_runs(rule, a.steps) for rule in rules}
    cpp = cpp_run(fcl, layers, a.cpp_steps)
    rows: list[dict[str, Any]] = []
    for r in range(a.rounds):
        row: dict[str, Any] = {"round": r}
        row["cpp"], row["cpp_cpu"] = timed(cpp)
        for rule in rules:
            for mode, run in runs[rule].items():
                wall, cpu = timed(run)
                row[f"{rule} {mode}"], row[f"{rule} {mode} cpu"] = wall, cpu
        rows.append(row)
        print(
            f"round {r + 1}/{a.rounds}: C++ {row['cpp']:,.0f}/s  "
            + "  ".join(
                f"{rule} {mode} {row[f'{rule} {mode}'] / row['cpp']:.2f}x"
                for rule in rules
                for mode in runs[rule]
            ),
            flush=True,
        )
    summary: dict[str, Any] = {}
    for rule in rules:
        for mode in runs[rule]:
            key = f"{rule} {mode}"
            wall = [row[key] / row["cpp"] for row in rows]
            cpu = [row[f"{key} cpu"] / row["cpp_cpu"] for row in rows]
            summary[f"{key}/cpp"] = {
                "median": statistics.median(wall),
                "min": min(wall),
                "max": max(wall),
                "rounds_at_least_6x": sum(x >= 6 for x in wall),
                "cpu_median": statistics.median(cpu),
                "engine_median_steps_per_s": statistics.median(row[key] for row in rows),
            }
        for mode in ("single", "dense"):
            summary[f"{rule} {mode} update_fraction"] = statistics.mean(
                runs[rule][mode].updates  # type: ignore[attr-defined]
            )
    summary["cpp_median_steps_per_s"] = statistics.median(row["cpp"] for row in rows)
    for key, val in summary.items():
        if isinstance(val, dict):
            print(
                f"{key:22s} median {val['median']:.2f}x (range {val['min']:.2f}-{val['max']:.2f},"
                f" {val['rounds_at_least_6x']}/{a.rounds} rounds >= 6x), CPU time"
                f" {val['cpu_median']:.2f}x; engine {val['engine_median_steps_per_s']:,.0f}/s"
            )
        else:
            print(f"{key:22s} {val:,.3f}")
    if a.out is not None:
        out = {
            "machine": machine_info(),
            "command": " ".join(sys.argv),
            "layers": layers,
            "steps": a.steps,
            "cpp_steps": a.cpp_steps,
            "rounds": rows,
            "summary": summary,
        }
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
