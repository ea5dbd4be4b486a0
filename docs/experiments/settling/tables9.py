"""Tables of docs/results.md section 6 ("Thick lines, mirror predictors, a hidden-layer bound").

    python docs/experiments/settling/tables9.py runs/settling/screen9.jsonl '<json spec>'

spec: {"rows": [[tag, lr, label], ...], "tracks": [...]}. One line per row: per track
"settled/n · median flips per 1,000 steps", then pooled settled, full dead layers, mean
saturated-steering share.
Several files: comma-separated.
"""
import json
import sys

import numpy as np
from runs9 import grouped

g = grouped(sys.argv[1])
spec = json.loads(sys.argv[2])
tracks = spec["tracks"]
print("| setup | lr | " + " | ".join(tracks)
      + " | settled, all | median settled step | full dead layers | sat. steering |")
print("|---|---|" + "---|" * len(tracks) + "---|---|---|---|")
for tag, lr, label in spec["rows"]:
    cells, tot, n, dead, sat, steps = [], 0, 0, 0, [], []
    for t in tracks:
        rs = [r for r in g[(tag, lr, t)] if "diverged" not in r]
        if not rs:
            cells.append("–")
            continue
        s = sum(bool(r["settled"]) for r in rs)
        tot, n = tot + s, n + len(rs)
        dead += sum(r.get("full_dead_layers", 0) > 0 for r in rs)
        sat += [r["sat_frac"] for r in rs]
        steps += [r["settled_step"] for r in rs if r["settled"]]
        cells.append(f"{s}/{len(rs)} · {np.median([r['flips_per_1000'] for r in rs]):.0f}")
    print(f"| {label} | {lr:g} | " + " | ".join(cells)
          + f" | {tot}/{n} | {np.median(steps):,.0f} | {dead}/{n} | {np.mean(sat):.2f} |")
