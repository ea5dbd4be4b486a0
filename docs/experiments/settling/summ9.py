"""Compact per-track summary of harness rows: settled, median flips, sat., layer-1 dead share,
mean |e| over the last 5,000 steps, per (tag, lr).

    python docs/experiments/settling/summ9.py runs/settling/screen9.jsonl [tag ...]
"""
import collections, json, sys
import numpy as np

rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    rows[(r["tag"], r["track"], r["lr"], r["seed"])] = r
tags = sys.argv[2:] or sorted({k[0] for k in rows})
g = collections.defaultdict(list)
for (tag, tr, lr, _), r in rows.items():
    g[(tag, lr)].append(r)
for tag in tags:
    for lr in sorted({k[1] for k in g if k[0] == tag}):
        parts = []
        for r_tr in sorted({json.loads(r["track"])["world.track"] for r in g[(tag, lr)]},
                           key=["curvy","hairpin","random","figure8","circle","oval","thick","photo","wide","tight"].index):
            rs = [r for r in g[(tag, lr)] if json.loads(r["track"])["world.track"] == r_tr and "diverged" not in r]
            if not rs:
                parts.append(f"{r_tr}:div"); continue
            s = sum(bool(r["settled"]) for r in rs)
            parts.append(f"{r_tr[:5]} {s}/{len(rs)} f{np.median([r['flips_per_1000'] for r in rs]):.0f}"
                         f" s{np.mean([r['sat_frac'] for r in rs]):.2f} d{np.mean([r['dead'][0] for r in rs]):.2f}"
                         f" e{np.mean([r['mean_abs_e_last'] for r in rs]):.2f}")
        print(f"{tag:22s} {lr:<5g} | " + " | ".join(parts))
