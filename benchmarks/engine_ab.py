"""The engine's learner against another version of itself, in one process: this checkout's
``sarlearn`` (A) and a copy of another source tree loaded as ``sarlearn_b`` (B), alternating
chunks of 2,000 steps (``--mode learner``: the learner alone, every step learning, as
``sarlearn bench --mode learner``; ``--mode dense``: the closed loop on the graded floor where
every step learns, as ``--mode single-dense``), so that the machine's load falls on both.
Prints the medians and the median of the per-round ratios B/A.

    taskset -c 1 python benchmarks/engine_ab.py OTHER_SRC [--layers 10,10,...,2] \
        [--rule sar] [--rounds 60] [--mode learner|dense] \
        [--b-overrides '{"network.activation": "linear"}']

``OTHER_SRC`` is a ``src`` folder (e.g. of a git worktree with a patched engine); give this
checkout's own ``src`` for an A/A run, which shows how far apart two identical copies land
(up to 1.1x here: array placement), and with ``--b-overrides`` for an ablation (B runs the
same code with other settings). The copy goes to a temporary folder; its numba cache too.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STEPS = 2000


def load_copy(src: Path, where: Path) -> str:
    """Copy ``src/sarlearn`` to ``where/sarlearn_b`` with its imports renamed; its name."""
    target = where / "sarlearn_b"
    shutil.copytree(src / "sarlearn", target, ignore=shutil.ignore_patterns("__pycache__"))
    for f in target.rglob("*.py"):
        f.write_text(re.sub(r"\bsarlearn\b", "sarlearn_b", f.read_text()))
    sys.path.insert(0, str(where))
    return "sarlearn_b"


def chunk_runner(
    package: str, overrides: dict[str, Any], mode: str = "learner"
) -> Callable[[], float]:
    """A warm chunk runner of ``package``'s engine; returns microseconds per step.

    ``mode``: ``learner`` (the learner alone on random inputs, every step learning) or
    ``dense`` (the closed loop on the graded floor of ``sarlearn bench --mode single-dense``:
    every step learns, on the correlated inputs of a robot driving)."""
    config = importlib.import_module(f"{package}.config")
    engine = importlib.import_module(f"{package}.engine")
    bench = importlib.import_module(f"{package}.engine.bench")
    cfg = config.RunConfig().with_overrides(overrides)
    if mode == "dense":
        loop_mod = importlib.import_module(f"{package}.loop")
        sim = importlib.import_module(f"{package}.stages.world.sim")
        track, start = bench.dense_floor(cfg)
        cfg = cfg.with_overrides({"world.start": list(start)})
        ref = loop_mod.ClosedLoop.from_config(cfg, 1, robot=sim.SimWorld(cfg.world, 1, track=track))
        world = engine.FastClosedLoop(ref)
        world.run(STEPS)  # compile or load, and past the filters' decay

        def run_world() -> float:
            t = time.perf_counter()
            world.run(STEPS, sync=False)
            return (time.perf_counter() - t) / STEPS * 1e6

        return run_world
    loop = engine.FastClosedLoop.from_config(cfg, 1)
    pred, err = bench.learner_inputs(STEPS, n_in=loop.agent.bank.n_predictors)
    p3, e2 = pred[:, None, :], err[:, None]
    loop.step_agents(p3[:50], e2[:50])  # compile or load

    def run() -> float:
        t = time.perf_counter()
        loop.step_agents(p3, e2)
        return (time.perf_counter() - t) / STEPS * 1e6

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("other_src", type=Path)
    ap.add_argument("--layers", default="", help="comma-separated layer sizes")
    ap.add_argument("--rule", default="sar")
    ap.add_argument("--rounds", type=int, default=60)
    ap.add_argument("--mode", choices=["learner", "dense"], default="learner")
    ap.add_argument("--b-overrides", default="{}", help="JSON config overrides for B only")
    a = ap.parse_args()
    base: dict[str, Any] = {"rule.name": a.rule}
    if a.layers:
        base["network.layers"] = [int(x) for x in a.layers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        run_a = chunk_runner("sarlearn", base, a.mode)
        b_over = {**base, **json.loads(a.b_overrides)}
        run_b = chunk_runner(load_copy(a.other_src, Path(tmp)), b_over, a.mode)
        ta, tb = [], []
        for _ in range(a.rounds):
            ta.append(run_a())
            tb.append(run_b())
    ratio = statistics.median(b / x for x, b in zip(ta, tb, strict=True))
    print(
        f"A {statistics.median(ta):.3f} us/step (best {min(ta):.3f})  "
        f"B {statistics.median(tb):.3f} us/step (best {min(tb):.3f})  B/A median {ratio:.3f}"
    )


if __name__ == "__main__":
    main()
