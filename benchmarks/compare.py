"""Side-by-side speed: sarlearn's compiled engine, its numpy reference, and the lab's C++ library.

Everything runs in one process, one after the other, so the ratios compare like with like on
the same machine state. Each figure is the median of ``--repeats`` timed chunks after a
warm-up (numba compilation, or loading it from the cache, happens in the warm-up).

What is measured (default sizes: 144 predictors x 5 filters = 720 inputs -> 10 x 10 -> 2):

1. the whole closed loop, one agent (world, sensors, filters, network, rule, motors):
   engine vs the numpy loop (``sarlearn.loop.ClosedLoop``), rules sar and gdm, float64 (and
   the engine in float32);
2. the learner alone, with a non-zero error every step (so every step learns): the engine
   (``FastClosedLoop.step_agents``), the numpy agent (``ClosedLoopAgent.step``) and the C++
   ``feedforward-closedloop-learning`` 2.2.1 (``FeedforwardClosedloopLearningWithFilterbank``,
   144 inputs x 5 filters; and the plain network with 720 inputs), with its default threading
   and with threads switched off per layer;
3. populations: engine (blocked and lockstep, on the track and on the graded "dense" floor
   where every step learns, 256 agents and 1024 agents lockstep, which no longer fit in the
   32 MB L3 cache) vs the batched numpy loop (256 agents in lockstep);
4. the memory bandwidth (numpy copy) and the resulting roofline of a lockstep population.

The C++ package is optional: if it cannot be imported its part is skipped with a message.
Install it (not a project dependency) with::

    pip install swig && PATH=$VIRTUAL_ENV/bin:$PATH \\
        pip install --no-build-isolation feedforward-closedloop-learning==2.2.1

Usage::

    python benchmarks/compare.py [--quick] [--repeats 5] [--out benchmarks/results/NAME.json]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sarlearn.agent import ClosedLoopAgent
from sarlearn.config import RunConfig
from sarlearn.engine.bench import (
    bench_cpp_learner,
    bench_engine,
    bench_learner,
    bench_numpy,
    import_cpp,
    learner_inputs,
    machine_info,
    measure_bandwidth,
    roofline,
)

N_PRED = 144
LAYERS = [10] * 10 + [2]


def median_rate(run: Callable[[], int], repeats: int) -> dict[str, Any]:
    """Median of ``repeats`` rates (work units returned by ``run`` per second)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work = run()
        rates.append(work / (time.perf_counter() - t0))
    return {"median": statistics.median(rates), "rates": rates}


# ---------------------------------------------------------------------- the learner alone


def engine_learner(rule: str, dtype: str, n: int, repeats: int) -> dict[str, Any]:
    cfg = RunConfig().with_overrides({"rule.name": rule, "dtype": dtype})
    return bench_learner(cfg, n, repeats)


def numpy_learner(rule: str, n: int, repeats: int) -> dict[str, Any]:
    cfg = RunConfig().with_overrides({"rule.name": rule})
    agent = ClosedLoopAgent.from_config(cfg, N_PRED, population=1, rng=np.random.default_rng(0))
    pred, err = learner_inputs(n)
    p2, e1 = pred[:, None, :], err[:, None]
    for t in range(20):
        agent.step(e1[t], p2[t])

    def run() -> int:
        for t in range(n):
            agent.step(e1[t], p2[t])
        return n

    return median_rate(run, repeats)


def cpp_learner(
    fcl: Any, filterbank: bool, threads: bool, n: int, repeats: int, convert: bool = False
) -> dict[str, Any]:
    """The C++ library's doStep (see :func:`sarlearn.engine.bench.bench_cpp_learner`)."""
    return bench_cpp_learner(
        fcl, LAYERS, n, repeats, filterbank=filterbank, threads=threads, convert=convert
    )


def import_fcl() -> Any | None:
    fcl, why = import_cpp()
    if fcl is None:
        print(f"C++ comparison skipped: {why}")
    return fcl


# ---------------------------------------------------------------------- main


def compare(quick: bool, repeats: int) -> dict[str, Any]:
    s = 0.1 if quick else 1.0
    steps = int(20_000 * s)
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "settings": {"quick": quick, "repeats": repeats, "layers": LAYERS, "predictors": N_PRED},
        "closed_loop": [],
        "learner": [],
        "population": [],
    }

    def log(msg: str) -> None:
        print(msg, flush=True)

    # 1. closed loop, one agent
    for rule in ("sar", "gdm"):
        cfg = RunConfig().with_overrides({"rule.name": rule})
        log(f"closed loop, 1 agent, {rule}: numpy ...")
        numpy_res = bench_numpy(cfg, 1, max(100, steps // 10), repeats)
        out["closed_loop"].append({"impl": "numpy", "rule": rule, "dtype": "float64", **numpy_res})
        for dtype in ("float64", "float32"):
            for dense in (False, True):
                log(f"closed loop, 1 agent, {rule}: engine {dtype} dense={dense} ...")
                res = bench_engine(
                    cfg.with_overrides({"dtype": dtype}), 1, steps, repeats, dense=dense
                )
                out["closed_loop"].append(
                    {"impl": "engine", "rule": rule, "dtype": dtype, "dense": dense, **res}
                )

    # 2. the learner alone (every step learns)
    fcl = import_fcl()
    for rule in ("sar", "gdm"):
        log(f"learner alone, {rule}: engine / numpy ...")
        for dtype in ("float64", "float32"):
            out["learner"].append(
                {"impl": "engine", "rule": rule, "dtype": dtype,
                 **engine_learner(rule, dtype, steps, repeats)}
            )  # fmt: skip
        out["learner"].append(
            {"impl": "numpy", "rule": rule, "dtype": "float64",
             **numpy_learner(rule, max(100, steps // 10), repeats)}
        )  # fmt: skip
    if fcl is not None:
        for filterbank, threads, convert in (
            (True, True, False),
            (True, False, False),
            (True, False, True),
            (False, True, False),
            (False, False, False),
            (False, False, True),
        ):
            n = max(20, int((100 if threads else 20_000) * s))
            log(f"learner alone, C++: filterbank={filterbank} threads={threads} ...")
            out["learner"].append(
                {
                    "impl": "c++ fcl 2.2.1",
                    "rule": "fcl",
                    "dtype": "float64",
                    "filterbank": filterbank,
                    "threads": threads,
                    "convert": convert,
                    **cpp_learner(fcl, filterbank, threads, n, repeats, convert=convert),
                }
            )

    # 3. populations
    for rule in ("sar", "gdm"):
        cfg = RunConfig().with_overrides({"rule.name": rule})
        log(f"population 256, {rule}: numpy lockstep ...")
        res = bench_numpy(cfg, 256, max(5, int(50 * s)), repeats)
        out["population"].append({"impl": "numpy", "rule": rule, "dtype": "float64",
                                  "block": "lockstep", "dense": False, **res})  # fmt: skip
        for dtype in ("float64", "float32"):
            c = cfg.with_overrides({"dtype": dtype})
            for block, dense, pop in (
                (None, False, 256), (None, True, 256), (1, True, 256), (1, True, 1024)
            ):  # fmt: skip
                log(f"population {pop}, {rule} {dtype}: engine block={block} dense={dense} ...")
                n = max(10, int(800 * s * 256 / pop))
                res = bench_engine(c, pop, n, repeats, block=block, dense=dense)
                res["block"] = "lockstep" if block == 1 else "whole chunk"
                out["population"].append(
                    {"impl": "engine", "rule": rule, "dtype": dtype, "dense": dense, **res}
                )

    # 4. bandwidth and roofline
    log("memory bandwidth ...")
    out["roofline"] = roofline(RunConfig(), measure_bandwidth(repeats=repeats))
    out["ratios"] = ratios(out)
    return out


def _pick(rows: list[dict[str, Any]], **match: Any) -> float | None:
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return float(r["median"])
    return None


def ratios(out: dict[str, Any]) -> dict[str, float]:
    """Speed-ups of the engine over the numpy loop and the C++ library (same process)."""
    res: dict[str, float] = {}
    cl, le, po = out["closed_loop"], out["learner"], out["population"]
    for rule in ("sar", "gdm"):
        eng = _pick(cl, impl="engine", rule=rule, dtype="float64", dense=False)
        num = _pick(cl, impl="numpy", rule=rule)
        if eng and num:
            res[f"closed_loop_{rule}_engine_over_numpy"] = eng / num
        eng_l = _pick(le, impl="engine", rule=rule, dtype="float64")
        num_l = _pick(le, impl="numpy", rule=rule)
        if eng_l and num_l:
            res[f"learner_{rule}_engine_over_numpy"] = eng_l / num_l
        for threads in (True, False):
            cpp = _pick(le, impl="c++ fcl 2.2.1", filterbank=True, threads=threads, convert=False)
            if eng_l and cpp:
                key = "threads" if threads else "no_threads"
                res[f"learner_{rule}_engine_over_cpp_{key}"] = eng_l / cpp
        pop = _pick(po, impl="engine", rule=rule, dtype="float64", dense=False,
                    block="whole chunk", population=256)  # fmt: skip
        pop_np = _pick(po, impl="numpy", rule=rule)
        if pop and pop_np:
            res[f"population256_{rule}_engine_over_numpy"] = pop / pop_np
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer steps (a smoke run)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args()
    result = compare(args.quick, args.repeats)
    out = args.out
    if out is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out = Path(__file__).parent / "results" / f"compare-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(summary(result))
    print(f"wrote {out}")


def summary(result: dict[str, Any]) -> str:
    """A plain-text digest of the medians."""
    lines = []
    for section in ("closed_loop", "learner", "population"):
        lines.append(f"[{section}]")
        for r in result[section]:
            extra = " ".join(
                f"{k}={r[k]}"
                for k in ("dense", "block", "population", "filterbank", "threads", "convert")
                if k in r
            )
            lines.append(
                f"  {r['impl']:<14} {r['rule']:<4} {r['dtype']:<8} {extra:<55} "
                f"{r['median']:>12,.0f} /s"
            )
    roof = result["roofline"]
    lines.append(f"[memory] copy bandwidth {roof['bandwidth_gbs']:.1f} GB/s (read + write)")
    for name in ("float64", "float32"):
        b = roof[name]
        lines.append(
            f"  {name}: {b['bytes_per_agent_step'] / 1e3:.0f} kB per agent-step -> lockstep "
            f"bound {b['bound_agent_steps_per_s']:,.0f} agent-steps/s"
        )
    lines.append("[ratios]")
    for k, v in result["ratios"].items():
        lines.append(f"  {k}: {v:,.1f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
