"""How much of the line's variation reaches each hidden layer of the untrained default
network: learning frozen, the reflex drives; per layer, the standard
deviation over time of each unit's activity (median over units and seeds), for the initial
weights and for the same weights with the hidden rows scaled onto a bound (what sar's
hidden bound does to them at its first step).

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python docs/experiments/settling/gain9.py curvy 1.5,2,inf ['{overrides}']
"""
import json
import sys

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.loop import ClosedLoop

track = sys.argv[1] if len(sys.argv) > 1 else "curvy"
bounds = [float(b) for b in (sys.argv[2] if len(sys.argv) > 2 else "1.5,inf").split(",")]
extra = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
seeds, steps = 6, 600
print("| hidden rows | " + " | ".join(f"layer {i}" for i in range(1, 11)) + " |")
print("|---|" + "---|" * 10)
for b in bounds:
    per_layer = []
    for s in range(seeds):
        loop = ClosedLoop.from_config(RunConfig().with_overrides(
            {**extra, "world.track": track, "seed": s, "freeze": True, "steps": steps}))
        net = loop.agent.network
        if np.isfinite(b):
            for w in net.weights[:-1]:
                n = np.sqrt(np.einsum("pij,pij->pi", w, w))
                w *= np.minimum(1.0, b / n)[:, :, None]
        acts = [[] for _ in range(net.n_layers - 1)]
        for _ in range(steps):
            loop.step()
            for i in range(net.n_layers - 1):
                acts[i].append(net.post[i][0].copy())
        per_layer.append([np.median(np.std(np.array(a)[100:], axis=0)) for a in acts])
    med = np.median(np.array(per_layer), axis=0)
    print(f"| {'init' if not np.isfinite(b) else f'scaled onto {b:g}'} | "
          + " | ".join(f"{v:.2g}" for v in med) + " |", flush=True)
