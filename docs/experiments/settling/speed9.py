"""Settling speed: per (tag, lr), per track "settled/n · median settled
step (settled runs)", then pooled settled, the median over tracks' ratios to a reference row,
flips, full dead layers; and each tag's best rate.

    python docs/experiments/settling/speed9.py runs/settling/confirm.jsonl '<json spec>'

spec: {"tags": [tag, ...], "tracks": [...], "ref": [tag, lr] (optional), "lrs": [..] (optional),
"pertrack": [tag, ...] (optional: each tag's best rate per track), "all_runs": true (optional:
the median settled step over every run, an unsettled run counting as never settled)}.
"Best rate" of a tag: the rate with the most settled runs over all the tracks, ties broken by
the smaller median (over tracks) of the per-track median settled step. Several files:
comma-separated.
"""
import json
import sys

import numpy as np
from runs9 import grouped

g = grouped(sys.argv[1])
spec = json.loads(sys.argv[2])
tracks = spec["tracks"]


def cell(tag, lr, t):
    rs = [r for r in g[(tag, lr, t)] if "diverged" not in r]
    st = [r["settled_step"] for r in rs if r.get("settled")]
    if spec.get("all_runs"):  # median over every run, an unsettled run counting as never
        allst = sorted(st) + [np.inf] * (len(rs) - len(st))
        return rs, st, (float(np.median(allst)) if allst else np.nan)
    return rs, st, (float(np.median(st)) if st else np.nan)


ref = {}
if spec.get("ref"):
    ref = {t: cell(spec["ref"][0], spec["ref"][1], t)[2] for t in tracks}
print("| setup | lr | " + " | ".join(tracks) + " | settled, all | slower than ref on | "
      "median ratio to ref | flips /1000, median | full dead layers |")
print("|---|---|" + "---|" * len(tracks) + "---|---|---|---|---|")
best = {}
for tag in spec["tags"]:
    lrs = sorted({k[1] for k in g if k[0] == tag})
    if spec.get("lrs"):
        lrs = [x for x in lrs if x in spec["lrs"]]
    for lr in lrs:
        cells, tot, n, dead, flips, meds, ratios = [], 0, 0, 0, [], [], []
        for t in tracks:
            rs, st, med = cell(tag, lr, t)
            if not rs:
                cells.append("–")
                continue
            s = len(st)
            tot, n = tot + s, n + len(rs)
            dead += sum(r.get("full_dead_layers", 0) > 0 for r in rs)
            flips += [r["flips_per_1000"] for r in rs]
            meds.append(med)
            if ref and np.isfinite(med) and np.isfinite(ref[t]):
                ratios.append(med / ref[t])
            cells.append(f"{s}/{len(rs)} · {med:,.0f}" if st else f"0/{len(rs)}")
        slower = sum(x > 1 for x in ratios)
        rat = f"{np.median(ratios):.2f}" if ratios else "–"
        print(f"| {tag} | {lr:g} | " + " | ".join(cells) + f" | {tot}/{n} | "
              f"{slower}/{len(ratios) if ratios else 0} | {rat} | {np.median(flips):.0f} | {dead}/{n} |")
        key = (-tot, np.nanmedian(meds) if meds else np.inf)
        if tag not in best or key < best[tag][0]:
            best[tag] = (key, lr)
print()
for tag, (key, lr) in best.items():
    print(f"best rate of {tag}: {lr:g} ({-key[0]} settled, median over tracks of the median "
          f"settled step {key[1]:,.0f})")

# per track: each tag's best rate on that track (most settled runs, ties by the smaller median
# settled step), against the reference tag's best rate on the same track
if spec.get("pertrack"):
    print()
    print("| setup | " + " | ".join(tracks) + " |")
    print("|---|" + "---|" * len(tracks))
    for tag in spec["pertrack"]:
        lrs = sorted({k[1] for k in g if k[0] == tag})
        if spec.get("lrs"):
            lrs = [x for x in lrs if x in spec["lrs"]]
        cells = []
        for t in tracks:
            opts = []
            for lr in lrs:
                rs, st, med = cell(tag, lr, t)
                if rs:
                    opts.append((-len(st), med if st else np.inf, lr, len(rs)))
            n_set, med, lr, n = min(opts)
            cells.append(f"η {lr:g}: {-n_set}/{n} · {med:,.0f}")
        print(f"| {tag} (best rate per track) | " + " | ".join(cells) + " |")
