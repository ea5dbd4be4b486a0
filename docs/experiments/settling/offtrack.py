"""Which runs the harness called settled had left the line (the figure8 correction).

    PYTHONPATH=src python docs/experiments/settling/offtrack.py

SaR at eta 1 and GDM at eta 0.3, 20 seeds x 30,000 steps on the eight tracks: per track, the
runs the harness's settling test passes (before it read the off-track record), how many ever
went off track, how many passed it without ever going off, and how many end off track.
"""
import numpy as np
from harness import strict
from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
TR = ["curvy", "hairpin", "random", "figure8", "circle", "oval", "photo", "wide"]
for tag, base, lr in (("sar", {}, 1.0), ("gdm", {"rule.name": "gdm"}, 0.3)):
    for tr in TR:
        cfgs = [RunConfig().with_overrides({**base, "rule.lr": lr, "world.track": tr, "seed": s, "steps": 30000}) for s in range(20)]
        fast = FastClosedLoop.from_configs(cfgs)
        errs, steers, offs = [], [], []
        for _ in range(6):
            rec = fast.run(5000); errs.append(rec["error"]); steers.append(rec["steering"]); offs.append(rec["off_track"])
        err = np.concatenate(errs, 1); steer = np.concatenate(steers, 1); off = np.concatenate(offs, 1)
        st = [strict(err[p], steer[p], cfgs[p]) for p in range(20)]
        settled = np.array([s["settled"] for s in st])
        ever_off = off.any(axis=1)
        print(f"{tag} {tr:8s} settled {settled.sum():2d}/20  ever off-track {ever_off.sum():2d}  settled and never off {np.sum(settled & ~ever_off):2d}  off at end {off[:, -1].sum():2d}", flush=True)
