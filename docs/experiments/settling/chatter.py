"""How many seeds of the default SaR still chatter: per track, 20 seeds x 30,000 steps on the
engine; over the last 1,000 steps before step 10,000 and 30,000, the median steering flips,
the seeds above 200 flips, and the seeds whose median |y| exceeds 1 (a large-amplitude switch
that the 'saturated steering' measure, |y| > 0.9 * 1.5, misses when a bound keeps |y| < 1.35).

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python docs/experiments/settling/chatter.py [tracks] [overrides]

overrides: a JSON object of RunConfig overrides, e.g. '{"rule.name": "gdm", "rule.lr": 0.3}'
(default: none, i.e. the default SaR).
"""

import json
import sys

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop

tracks = sys.argv[1].split(",") if len(sys.argv) > 1 else ["curvy", "hairpin", "photo"]
overrides = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
print("| track | after step | flips /1000, median | seeds > 200 flips | seeds with median abs(y) > 1 | median abs(y), median over seeds |")
print("|---|---|---|---|---|---|")
for track in tracks:
    cfgs = [RunConfig().with_overrides({**overrides, "world.track": track, "seed": s, "steps": 30000}) for s in range(20)]
    loop = FastClosedLoop.from_configs(cfgs)
    y = np.concatenate([loop.run(5000)["steering"] for _ in range(6)], axis=1)
    for t in (10000, 30000):
        w = y[:, t - 1000 : t]
        flips = np.array([(np.diff(np.sign(x)[x != 0]) != 0).sum() for x in w])
        med = np.median(np.abs(w), axis=1)
        print(f"| {track} | {t:,} | {np.median(flips):.0f} | {(flips > 200).sum()}/20 | {(med > 1).sum()}/20 | {np.median(med):.2f} |")
