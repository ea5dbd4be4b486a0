"""Is SaR's flipping a limit cycle of the learned controller?

    PYTHONPATH=src NUMBA_NUM_THREADS=1 python docs/experiments/settling/freeze.py '<spec>'

spec: {"base": {overrides}, "lr": eta, "tracks": [...], "seeds": n, "learn": steps,
"frozen": steps, "scales": [1.0, 0.5, ...], "layer": -1, "out": path}. For every track, a population of
`seeds` runs learns for `learn` steps; then learning is switched off (agent.learning = False)
and, for each scale c, the weights of `layer` (default -1, the output layer) are multiplied by c (from the learned
weights) and the frozen controller drives `frozen` more steps. Reported per scale: median
flips per 1,000 steps, saturated share, share of steps with e != 0, runs whose whole frozen
stretch stays below the threshold ("clean"), and the steering's median |y|.
"""
from __future__ import annotations

import copy
import json
import sys

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.metrics import moving_sum


def measure(err, steer):
    s = np.sign(steer)
    flips = [(np.diff(np.sign(r[r != 0])) != 0).sum() * 1000.0 / len(r) for r in steer]
    ms = moving_sum(np.abs(err), 200)
    return {
        "flips": float(np.median(flips)),
        "sat": float((np.abs(steer) > 1.35).mean()),
        "e_nonzero": float((err != 0).mean()),
        "clean": int((ms[:, 200:] < 0.1).all(axis=1).sum()),
        "abs_y": float(np.median(np.abs(steer))),
        "n": int(len(steer)),
    }


def main() -> None:
    spec = json.loads(sys.argv[1])
    for track in spec["tracks"]:
        cfgs = [RunConfig().with_overrides({**spec["base"], "world.track": track,
                                            "rule.lr": spec["lr"], "seed": s,
                                            "steps": spec["learn"]})
                for s in range(spec["seeds"])]
        fast = FastClosedLoop.from_configs(cfgs)
        rec = fast.run(spec["learn"])
        row = {"tag": spec.get("tag", ""), "track": track, "lr": spec["lr"],
               "learning_last": measure(rec["error"][:, -1000:], rec["steering"][:, -1000:])}
        saved = [copy.deepcopy((lp.agent.network.weights, lp.robot.state_dict(),
                                lp.agent.bank.state_dict())) for lp in fast.loops]
        for c in spec["scales"]:
            for lp, (w, world, bank) in zip(fast.loops, saved):
                lp.agent.learning = False
                for li, wl in enumerate(w):
                    lp.agent.network.weights[li][...] = wl
                lp.agent.network.weights[spec.get("layer", -1)][...] *= c
                lp.robot.load_state_dict(world)
                lp.agent.bank.load_state_dict(bank)
            fast.reload()
            r = fast.run(spec["frozen"])
            row[f"frozen_x{c:g}"] = measure(r["error"], r["steering"])
        print(json.dumps(row), flush=True)
        with open(spec["out"], "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
