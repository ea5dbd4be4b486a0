"""Where one engine step's time goes: each compiled stage timed alone, on a warm agent's state.

The stages are the engine's own functions (``compiled_sensors.sense``, the filter bank's
``filter_step``, the network's ``forward`` and its parts), each called in a compiled loop on
copies of the arrays of one agent that has run ``--warm`` steps in the default world (past
the filter states' decay, so about half the network's inputs are exactly 0, as in a sweep).
Beside them, the whole step in its two modes: the default world (an agent that learns on few
steps, as in a sweep) and the learner alone (every step learns, ``sarlearn bench --mode
learner``), with and without the rule. Medians of ``--rounds`` rounds, the stages alternating,
so that the machine's load falls on all of them; microseconds per call::

    taskset -c 1 NUMBA_NUM_THREADS=1 python benchmarks/step_stages.py [--rule sar] \
        [--rounds 15] [--json out.json]

The stages run outside the kernel, so their sum is not exactly the step: the kernel inlines
them, and the rest (records, the saturation count, the motors, the rule's early exit) is the
difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.engine.bench import learner_inputs, machine_info
from sarlearn.stages.filters.compiled import filter_step
from sarlearn.stages.network.compiled import activate, forward, forward_layer
from sarlearn.stages.world.compiled_sensors import sense

U = np.uint64


@njit(cache=False)
def _sense(n, pose, ground, lost, img, sx, sy, wp):
    for _ in range(n):
        pose[0, 2] += 1e-9  # a new heading each call, so nothing is hoisted out of the loop
        sense(U(0), pose, ground, lost, img, sx, sy, wp)


@njit(cache=False)
def _filter(n, src, switches, fcoef, fy1, fy2, fu1, fux, flush, zero):
    for _ in range(n):
        filter_step(U(0), src, 0, U(2), switches, fcoef, fy1, fy2, fu1, fux, flush, zero, 0)


@njit(cache=False)
def _forward(n, switches, consts, fy1, sizes, woff, noff, W, bias, hbuf, post, slope, readout):
    acc = 0.0
    for _ in range(n):
        _, y = forward(
            U(0),
            switches,
            consts,
            fy1,
            U(0),
            sizes,
            woff,
            noff,
            W,
            bias,
            hbuf,
            post,
            slope,
            readout,
        )
        acc += y
    return acc


@njit(cache=False)
def _layer0(n, W, fy1, hbuf, n_in, n_out, zero):
    for _ in range(n):
        forward_layer(W, U(0), U(0), fy1, U(0), hbuf, U(0), n_in, n_out, zero)


@njit(cache=False)
def _activations(n, hbuf, post, slope, n_units, act, half, one, sat):
    for t in range(n):
        for k in range(n_units):
            f, s = activate(hbuf[0, k] + t * 1e-12, act, half, one, sat)
            post[0, k] = f
            slope[0, k] = s


def stage_runners(loop: FastClosedLoop, calls: int) -> dict[str, Callable[[], None]]:
    """Compiled loops of ``calls`` calls of each stage on copies of ``loop``'s agent 0."""
    s = loop.state
    img, sx, sy = s.world
    pose, lost, ground = s.wstate
    fcoef, fy1, fy2, fu1, fux = s.filt
    net = s.net
    sizes, woff, noff, W, bias = net.sizes, net.woff, net.noff, net.W, net.bias
    hbuf, post, slope = net.pre, net.post, net.slope
    sw, c = s.switches, s.consts
    cp = np.copy
    n_units = int(noff[-1])
    return {
        "sense": lambda: _sense(calls, cp(pose), cp(ground), cp(lost), img, sx, sy, s.world_par),
        "filters": lambda: _filter(
            calls, cp(ground), sw, fcoef, cp(fy1), cp(fy2), cp(fu1), cp(fux), c.flush, c.zero
        ),
        "forward": lambda: _forward(
            calls,
            sw,
            c,
            fy1,
            sizes,
            woff,
            noff,
            W,
            bias,
            cp(hbuf),
            cp(post),
            cp(slope),
            net.readout,
        ),
        "forward: layer 0 sums": lambda: _layer0(
            calls, W, fy1, cp(hbuf), sizes[0], sizes[1], c.zero
        ),
        "forward: activations": lambda: _activations(
            calls, cp(hbuf), cp(post), cp(slope), n_units, sw.act, c.half, c.one, c.tanh_sat
        ),
    }


def step_runners(cfg: RunConfig, steps: int, warm: int) -> dict[str, Callable[[], None]]:
    """The whole step: default world (learning on, off) and learner alone (learning on, off)."""
    world = FastClosedLoop.from_config(cfg, 1)
    world.run(warm, sync=False)
    learner = FastClosedLoop.from_config(cfg, 1)
    pred, err = learner_inputs(steps, n_in=learner.agent.bank.n_predictors)
    p3, e2 = pred[:, None, :], err[:, None]
    learner.step_agents(p3[:50], e2[:50])

    def switched(loop: FastClosedLoop, on: bool, run: Callable[[], Any]) -> Callable[[], None]:
        def go() -> None:
            base = loop.state.switches
            loop.state.switches = base if on else base._replace(learning=0)
            try:
                run()
            finally:
                loop.state.switches = base

        return go

    def world_chunk() -> None:
        world.run(steps, sync=False)

    def learner_chunk() -> None:
        learner.step_agents(p3, e2)

    return {
        "step, default world": switched(world, True, world_chunk),
        "step, default world, rule off": switched(world, False, world_chunk),
        "step, learner alone (every step learns)": switched(learner, True, learner_chunk),
        "step, learner alone, rule off": switched(learner, False, learner_chunk),
    }


def measure(rule: str, rounds: int, calls: int, steps: int, warm: int) -> dict[str, Any]:
    """Median microseconds per call of every stage and step (alternating rounds)."""
    cfg = RunConfig().with_overrides({"rule.name": rule})
    world = FastClosedLoop.from_config(cfg, 1)
    world.run(warm, sync=False)
    zeros = float(np.mean(world.state.filt.y1 == 0))
    runs = {**stage_runners(world, calls), **step_runners(cfg, steps, warm)}
    per_call = {k: (steps if k.startswith("step") else calls) for k in runs}
    for run in runs.values():  # compile
        run()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for k, run in runs.items():
            t = time.perf_counter()
            run()
            times[k].append((time.perf_counter() - t) / per_call[k] * 1e6)
    return {
        "rule": rule,
        "machine": machine_info(),
        "rounds": rounds,
        "warm_steps": warm,
        "inputs_exactly_zero": zeros,
        "us_per_call": {k: statistics.median(v) for k, v in times.items()},
        "us_per_call_min": {k: min(v) for k, v in times.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rule", default="sar")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=20_000)
    ap.add_argument("--steps", type=int, default=4_000)
    ap.add_argument("--warm", type=int, default=3_000)
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    out = measure(a.rule, a.rounds, a.calls, a.steps, a.warm)
    print(f"{out['machine'].get('cpu', '')}; rule {a.rule}; rounds {a.rounds}")
    print(f"network inputs exactly 0 after {a.warm} steps: {out['inputs_exactly_zero']:.0%}")
    for k, v in out["us_per_call"].items():
        print(f"  {k:42s} {v:7.2f} us (best {out['us_per_call_min'][k]:.2f})")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
