"""Probe: start the default deep SaR from hidden layers 2..10 drawn inside
the hidden bound but partly aligned (each row = B_h * unit(a * 1/sqrt(n) + (1 - a) * random
unit row)), so the untrained stack passes the line to its top layer although every row is on
the bound. The first hidden layer (fed by the predictors) and the zero output layer are as
initialised. Engine; measures as harness.py.

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python docs/experiments/settling/aligned9.py '<json spec>'

spec: {"tag": str, "align": a, "base": {overrides}, "lrs": [..], "tracks": [..], "seeds": n,
"steps": n, "out": path}
"""
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import PROBE, strict  # noqa: E402

from sarlearn.config import RunConfig  # noqa: E402
from sarlearn.engine import FastClosedLoop  # noqa: E402

spec = json.loads(sys.argv[1])
a = float(spec["align"])
for track in spec["tracks"]:
    cfgs = [RunConfig().with_overrides({**spec["base"], "world.track": track, "rule.lr": lr,
                                        "seed": s, "steps": spec["steps"]})
            for lr in spec["lrs"] for s in range(spec["seeds"])]
    fast = FastClosedLoop.from_configs(cfgs)
    for k, loop in enumerate(fast.loops):
        net = loop.agent.network
        bh = loop.agent.rule.hidden_bound
        rng = np.random.default_rng(1000 + cfgs[k].seed)
        for w in net.weights[1:-1]:
            n = w.shape[-1]
            r = rng.standard_normal(w.shape)
            r /= np.linalg.norm(r, axis=-1, keepdims=True)
            v = a / np.sqrt(n) * np.ones(w.shape) + (1 - a) * r
            v /= np.linalg.norm(v, axis=-1, keepdims=True)
            w[...] = bh * v
    fast.reload()
    t0 = time.time()
    rec = fast.run(spec["steps"])
    # dead units as harness.py: f'(h)/f'(0) < 0.01 on every one of PROBE further steps
    noff = fast._noff.astype(int)
    sat = np.ones((len(cfgs), int(noff[-1])), dtype=bool)
    for _ in range(PROBE):
        fast.run(1)
        sat &= fast._slope * 4.0 < 0.01
    L = fast.n_layers
    rows = []
    for p, cfg in enumerate(cfgs):
        m = strict(rec["error"][p], rec["steering"][p], cfg)
        dead = [float(sat[p, noff[i] : noff[i + 1]].mean()) for i in range(L)]
        m.update(seed=cfg.seed, lr=cfg.rule.learning_rate, tag=spec["tag"],
                 track=json.dumps({"world.track": track}), steps=spec["steps"], dead=dead,
                 full_dead_layers=int(sum(d == 1.0 for d in dead)), seconds=time.time() - t0)
        rows.append(m)
    with open(spec["out"], "a") as f:
        for m in rows:
            f.write(json.dumps(m) + "\n")
    print(spec["tag"], track, f"settled {sum(m['settled'] for m in rows)}/{len(rows)}", flush=True)
