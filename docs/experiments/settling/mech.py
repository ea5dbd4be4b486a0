"""Where is the switch? Per-step saturated share of every layer, and the steering's gain
(the smooth-steering study).

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python docs/experiments/settling/mech.py '<spec>'

spec: {"jobs": [[tag, overrides, lr], ...], "tracks": [...], "seeds": n, "steps": n}.
Prints, over the last 1,000 steps of each population: the mean share of units saturated in
that step's forward pass (f'(h) < 1 % of f'(0)), per layer (first, middle, last hidden,
output), median flips per 1,000 steps and saturated-steering share.
"""
import json
import sys

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop

spec = json.loads(sys.argv[1])
for tag, ov, lr in spec["jobs"]:
    for track in spec["tracks"]:
        cfgs = [RunConfig().with_overrides({**ov, "world.track": track, "rule.lr": lr,
                                            "seed": s, "steps": spec["steps"]})
                for s in range(spec["seeds"])]
        fast = FastClosedLoop.from_configs(cfgs)
        rec = None
        done = 0
        while done < spec["steps"]:
            n = min(5000, spec["steps"] - done)
            rec = fast.run(n)
            done += n
        sat = rec["saturated"][:, -1000:, :].mean(axis=(0, 1))
        y = rec["steering"][:, -1000:]
        flips = [(np.diff(np.sign(r[r != 0])) != 0).sum() for r in y]
        L = sat.shape[0]
        pick = sorted({0, L // 2, max(L - 2, 0), L - 1})
        print(f"{tag:18s} {track:8s} sat/layer " + " ".join(f"L{i}:{sat[i]:.2f}" for i in pick)
              + f" | flips {np.median(flips):.0f} sat.steer {(np.abs(y) > 1.35).mean():.2f}"
              + f" | e!=0 {(rec['error'][:, -1000:] != 0).mean():.3f}", flush=True)
