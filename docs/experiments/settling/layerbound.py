"""Scratch test of a per-layer weight bound on the numpy reference loop.

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python docs/experiments/settling/layerbound.py '<spec>'

The package's ``rule.weight_bound`` is one bound for every layer (3 by default for sar). Here,
after every step of the reference loop (ClosedLoop), the rows of the *hidden* layers are
scaled back onto a smaller bound ``hidden`` (the rule has already applied its own bound, 3,
to every layer), i.e. a bound of ``hidden`` on the hidden layers and 3 on the output layer.
Not in the engine (its learning stage is being edited elsewhere), hence this slow scratch
loop. spec: {"hidden": b, "lrs": [...], "tracks": [...], "seeds": n, "steps": n,
"base": {...}, "tag": str, "out": path}; one population of `seeds` agents of seed 0 per
cell (agent p = "seed" p in the rows); rows as harness.py's (no dead-unit probe).
"""
import json
import sys
import time

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from harness import strict  # noqa: E402

from sarlearn.config import RunConfig  # noqa: E402
from sarlearn.loop import ClosedLoop  # noqa: E402

spec = json.loads(sys.argv[1])
for track in spec["tracks"]:
    for lr in spec["lrs"]:
        t0 = time.time()
        P = spec["seeds"]  # one population of P agents drawn from seed 0 (as camera.py)
        cfg = RunConfig().with_overrides({**spec.get("base", {}), "world.track": track,
                                          "rule.lr": lr, "seed": 0, "steps": spec["steps"]})
        lp = ClosedLoop.from_config(cfg, population=P)
        b = float(spec["hidden"])
        err = np.empty((P, spec["steps"]))
        steer = np.empty((P, spec["steps"]))
        ws = lp.agent.network.weights[:-1]
        for t in range(spec["steps"]):
            r = lp.step()
            err[:, t] = r["error"]
            steer[:, t] = r["steering"]
            for w in ws:  # the hidden layers' rows onto the smaller bound
                n2 = np.einsum("pij,pij->pi", w, w)
                over = n2 > b * b
                if over.any():
                    w *= np.where(over, b / np.sqrt(np.where(over, n2, 1.0)), 1.0)[:, :, None]
        out = []
        for p in range(P):
            m = strict(err[p], steer[p], cfg)
            m.update(seed=p, lr=lr, track=json.dumps({"world.track": track}),
                     tag=spec["tag"], steps=spec["steps"], dead=[float("nan")],
                     full_dead_layers=0, seconds=time.time() - t0)
            out.append(m)
        with open(spec["out"], "a") as f:
            for m in out:
                f.write(json.dumps(m) + "\n")
        print(spec["tag"], track, lr, f"settled {sum(m['settled'] for m in out)}/{len(out)}",
              f"flips {np.median([m['flips_per_1000'] for m in out]):.0f}",
              f"sat {np.mean([m['sat_frac'] for m in out]):.2f}", f"{time.time() - t0:.0f}s",
              flush=True)
