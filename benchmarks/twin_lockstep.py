"""Learning on the twin's physics without the wall clock: which imperfection breaks what.

The closed loop drives :class:`sarlearn.robots.twin.LockstepTwin` (the robot and board of
``sarlearn twin``: motor lag and deadband, noisy 10-bit readings, PWM rounding, a latency
between reading the sensors and the motor command) on a simulated clock, so the result
depends on the physics and the seed only, not on the machine's load. One line per run::

    python benchmarks/twin_lockstep.py --rule sar --latency 0.01 --lag 0.05 --noise 6 \
        --seeds 0 1 2 [--steps 8000] [--load run/network.npz] [--json out.json]

``--realism realistic`` uses the board of ``sarlearn twin --realism realistic`` (its motor
lag, deadband, wheel mismatch and noise); ``--mismatch M`` unequal wheels, ``--trim M`` the
drive's correction of them (``sarlearn drive --trim``). ``--load`` drives a saved network
frozen (e.g. one trained by ``sarlearn follow --inputs camera``).

The calibration is what ``sarlearn calibrate`` finds on the twin: the floor's level plus
five noise widths as light (a bare floor reads exactly 0), the line's level as dark.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from sarlearn.config import RunConfig
from sarlearn.loop import ClosedLoop
from sarlearn.robots.drive import NOISE_MARGIN
from sarlearn.robots.twin import LockstepTwin
from sarlearn.robots.twin_physics import BoardPhysics
from sarlearn.runs.run import run_follow


def run_one(
    rule: str,
    latency: float,
    lag: float,
    noise: float,
    seed: int,
    steps: int,
    track: str,
    load: str | None = None,
    margin: float = NOISE_MARGIN,
    preset: str | None = None,
    mismatch: float = 0.0,
    trim: float = 0.0,
) -> dict[str, Any]:
    """One run (``load``: a saved network, driven frozen); its summary's measures."""
    over: dict[str, Any] = {"world.inputs": "camera", "world.track": track, "rule.name": rule,
                            "steps": steps, "seed": seed}  # fmt: skip
    if load is not None:
        from sarlearn.cli.follow import loaded_defaults

        over = {**loaded_defaults(Path(load)), **over, "load": load, "freeze": True}
        over.pop("rule.name")
    cfg = RunConfig().with_overrides(over)
    if preset is not None:  # the board of `sarlearn twin --realism PRESET`
        from sarlearn.stages.world.realism import PRESETS

        physics = BoardPhysics.from_realism(PRESETS[preset], seed=seed)
        lag, noise = physics.tau, physics.noise
    else:
        physics = BoardPhysics(tau=lag, noise=noise, mismatch=mismatch, seed=seed)
    light = physics.light + margin * noise
    robot = LockstepTwin(
        cfg.world, physics, calibration=((light, light), (physics.dark,) * 2), latency=latency,
        seed=seed, trim=trim,
    )  # fmt: skip
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        s = run_follow(
            cfg, out, figures=False, make_loop=lambda c: ClosedLoop.from_config(c, robot=robot)
        )
    keys = ("status", "steps", "steps_to_success", "settled", "relapses",
            "mean_abs_error_last_1000", "off_track_steps")  # fmt: skip
    return {
        "rule": cfg.rule.name, "load": load, "track": track, "latency": latency, "lag": lag,
        "noise": noise, "mismatch": physics.mismatch, "margin": margin, "trim": trim,
        "preset": preset, "seed": seed, **{k: s[k] for k in keys},
        "seconds": time.perf_counter() - t0,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rule", default="sar")
    ap.add_argument("--track", default="curvy")
    ap.add_argument("--latency", type=float, default=0.0, help="s from reading to command")
    ap.add_argument("--lag", type=float, default=0.05, help="motor time constant (s)")
    ap.add_argument("--noise", type=float, default=6.0, help="sensor noise (ADC counts)")
    ap.add_argument("--mismatch", type=float, default=0.0, help="relative wheel gain difference")
    ap.add_argument("--trim", type=float, default=0.0, help="the motors' gain correction")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--load", help="a saved network.npz, driven frozen")
    ap.add_argument(
        "--margin", type=float, default=NOISE_MARGIN, help="noise widths added to the light level"
    )
    ap.add_argument(
        "--realism", help="the board of `sarlearn twin --realism NAME` (overrides --lag, --noise)"
    )
    ap.add_argument("--json", help="append the results to this JSON list")
    args = ap.parse_args(argv)
    rows = []
    for seed in args.seeds:
        row = run_one(
            args.rule,
            args.latency,
            args.lag,
            args.noise,
            seed,
            args.steps,
            args.track,
            args.load,
            args.margin,
            args.realism,
            args.mismatch,
            args.trim,
        )
        rows.append(row)
        print(json.dumps(row))
    if args.json:
        try:
            with open(args.json) as fh:
                old = json.load(fh)
        except FileNotFoundError:
            old = []
        with open(args.json, "w") as fh:
            json.dump(old + rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
