"""Is a run's remaining error the network's steering ceiling? Camera runs, compiled engine.

Usage::

    python docs/experiments/unseen/ceiling.py TRACK@SEED [TRACK@SEED ...] [--set KEY=VALUE ...]

For the last 5,000 steps of each run (20,000 steps unless ``--set steps=N``): the mean |e|, the
share of steps with |e| > 0.005, the largest |y| the network steered with, the mean |y| at the
steps with an error, and how often y had the error's sign there. A run whose error comes only
where |y| sits at its largest value, on the error's side, asks for more steering than the
network gives.
"""

from __future__ import annotations

import argparse

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.config.files import parse_assignment
from sarlearn.engine.fast_loop import FastClosedLoop

ERR = 0.005  # |e| above this counts as an error step
TAIL = 5000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="TRACK@SEED, e.g. random:15@0")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    overrides = {"steps": 20000, "world.inputs": "camera"}
    overrides.update(parse_assignment(s) for s in args.set)
    for run in args.runs:
        track, seed = run.rsplit("@", 1)
        cfg = RunConfig().with_overrides({**overrides, "world.track": track, "seed": int(seed)})
        out = FastClosedLoop.from_configs([cfg]).run(cfg.steps)
        y, e = out["steering"][0][-TAIL:], out["error"][0][-TAIL:]
        bad = np.abs(e) > ERR
        at_err = f"{np.abs(y[bad]).mean():.3f}" if bad.any() else "-"
        same = f"{np.mean(np.sign(e[bad]) == np.sign(y[bad])):.2f}" if bad.any() else "-"
        print(
            f"{run}: mean |e| {np.abs(e).mean():.3f}, |e| > {ERR} in {bad.mean():.3f} of steps, "
            f"max |y| {np.abs(y).max():.3f}, |y| there {at_err}, y on e's side {same}"
        )


if __name__ == "__main__":
    main()
