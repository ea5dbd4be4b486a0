"""Pre-activations |h| per layer after learning: how binary are the units?

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python docs/experiments/settling/preact.py '<spec>'

spec as mech.py. After `steps` steps, 200 more steps are run one at a time and each layer's
pre-activations are read from the synced reference networks (public state). Prints per layer:
median |h| and the share of units with |h| > 3 (logistic slope below 18 % of f'(0)).
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
        fast.run(spec["steps"])
        hs = []
        for _ in range(200):
            fast.run(1)
            hs.append([np.concatenate([lp.agent.network.pre[li] for lp in fast.loops])
                       for li in range(fast.n_layers)])
        L = fast.n_layers
        cells = []
        for li in sorted({0, 1, L // 2, L - 2, L - 1}):
            h = np.abs(np.stack([s[li] for s in hs]))
            cells.append(f"L{li}: |h| med {np.median(h):.1f} >3 {np.mean(h > 3):.2f}")
        print(f"{tag:14s} {track:7s} " + " | ".join(cells), flush=True)
