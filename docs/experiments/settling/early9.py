"""Where the settling time goes: the reflex events (steps with e != 0)
of the first steps, per rule, on the engine.

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python docs/experiments/settling/early9.py '<json spec>'

spec: {"jobs": [[tag, overrides, lr], ...], "tracks": [...], "seeds": n, "steps": n}. Per job
and track, medians over seeds of: steps with e != 0 before the last one, the last such step
(+200 ~ the settled step), the sum of |e| over the run, and the number of error episodes
(runs of consecutive e != 0 steps).
"""
import json
import sys

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop

spec = json.loads(sys.argv[1])
print("| setup | lr | track | e != 0 steps | episodes | last e != 0 step | sum abs(e) | settled-run share |")
print("|---|---|---|---|---|---|---|---|")
for tag, base, lr in spec["jobs"]:
    for track in spec["tracks"]:
        cfgs = [RunConfig().with_overrides({**base, "world.track": track, "rule.lr": lr,
                                            "seed": s, "steps": spec["steps"]})
                for s in range(spec["seeds"])]
        e = FastClosedLoop.from_configs(cfgs).run(spec["steps"])["error"]
        nz = e != 0
        n = nz.sum(axis=1)
        last = np.array([np.flatnonzero(x)[-1] if x.any() else 0 for x in nz])
        ep = np.array([int(x[0]) + int(np.sum(x[1:] & ~x[:-1])) for x in nz])
        tail_clean = (~nz[:, -spec.get("clean", 1000):]).all(axis=1)
        print(f"| {tag} | {lr:g} | {track} | {np.median(n):.0f} | {np.median(ep):.0f} | "
              f"{np.median(last):.0f} | {np.median(np.abs(e).sum(axis=1)):.1f} | "
              f"{tail_clean.mean():.2f} |", flush=True)
