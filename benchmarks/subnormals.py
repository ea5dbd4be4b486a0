"""The cost of subnormal numbers: the engine with and without flushing, in one process.

Both loops flush decaying states below sqrt(tiny) to exactly 0 (``sarlearn.numerics``). This
script turns the engine's flush threshold off in one of two otherwise identical single-agent
loops (default world, sar, float64), warms both up past the states' decay, and times them in
alternation, reporting wall-clock and CPU-time rates (the machine may be shared) and the number
of subnormal filter states at the end.

Usage::

    python benchmarks/subnormals.py [--steps 20000] [--repeats 5] [--out results/NAME.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.engine.bench import WARMUP_STEPS, machine_info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    loops = {"flush": FastClosedLoop.from_config(RunConfig(), 1)}
    loops["no flush"] = FastClosedLoop.from_config(RunConfig(), 1)
    nf = loops["no flush"]
    nf.state.consts = nf.state.consts._replace(flush=nf.state.consts.zero)  # no flush
    for loop in loops.values():
        loop.run(WARMUP_STEPS)
    wall: dict[str, list[float]] = {k: [] for k in loops}
    cpu: dict[str, list[float]] = {k: [] for k in loops}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            t0, c0 = time.perf_counter(), time.process_time()
            loop.run(args.steps)
            wall[name].append(args.steps / (time.perf_counter() - t0))
            cpu[name].append(args.steps / (time.process_time() - c0))
    tiny = np.finfo(np.float64).tiny
    out = {"machine": machine_info(), "steps": args.steps, "repeats": args.repeats}
    for name, loop in loops.items():
        y = loop.agent.bank.state_dict()["y1"]
        n_sub = int(np.sum((y != 0) & (np.abs(y) < tiny)))
        out[name] = {
            "median": statistics.median(wall[name]),
            "cpu_median": statistics.median(cpu[name]),
            "rates": wall[name],
            "cpu_rates": cpu[name],
            "subnormal_filter_states": n_sub,
        }
        print(f"{name:>9}: {out[name]['median']:>9,.0f} steps/s, "
              f"{out[name]['cpu_median']:>9,.0f} per CPU-s, {n_sub} subnormal states")  # fmt: skip
    out["speedup_cpu"] = out["flush"]["cpu_median"] / out["no flush"]["cpu_median"]
    print(f"flushing: {out['speedup_cpu']:.1f}x (CPU time)")
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
