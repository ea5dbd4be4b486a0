"""Camera inputs (numpy reference loop; the engine covers rows only): P agents of one seed in
one vectorised loop per config; strict measures as harness.strict; dead units from the loop's
'saturated' record (min over the last 1000 steps)."""
import json, sys, time
import numpy as np
sys.path.insert(0, __import__("os").path.dirname(__file__))

from sarlearn.config import RunConfig
from sarlearn.loop import ClosedLoop
from sarlearn.errors import SarlearnError

spec = json.loads(sys.argv[1])
import harness
harness.LAST = spec.get("last", 5000)
for tag, ov, lr in spec["jobs"]:
    cfg = RunConfig().with_overrides({"world.inputs": "camera", "seed": spec.get("seed", 0), **ov, "rule.lr": lr, "steps": spec["steps"]})
    loop = ClosedLoop.from_config(cfg, spec["population"])
    t = time.time()
    try:
        errs, steers, sats = [], [], []
        for _ in range(spec["steps"] // 1000):
            rec = loop.run(1000)
            errs.append(rec["error"]); steers.append(rec["steering"]); sats.append(rec["saturated"])
        err = np.concatenate(errs, 1); steer = np.concatenate(steers, 1); sat = np.concatenate(sats, 1)
        rows = []
        for p in range(spec["population"]):
            m = harness.strict(err[p], steer[p], cfg)
            dead = sat[p, -1000:].min(axis=0).tolist()
            m.update(tag=tag, lr=lr, agent=p, seed=p, track="camera:" + cfg.world.track, dead=dead,
                     full_dead_layers=int(sum(d == 1.0 for d in dead)), steps=spec["steps"], seconds=time.time() - t)
            rows.append(m)
    except SarlearnError as exc:
        rows = [{"tag": tag, "lr": lr, "seed": 0, "track": "camera:" + cfg.world.track, "diverged": str(exc)[:200]}]
    with open(spec["out"], "a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    print(tag, lr, sum(bool(r.get("settled")) for r in rows), f"{time.time()-t:.0f}s", flush=True)
