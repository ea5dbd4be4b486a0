"""Markdown tables for docs/results.md from the harness's jsonl files."""
import json, sys, collections
import numpy as np

def load(paths):
    rows = {}
    for p in paths:
        for l in open(p):
            r = json.loads(l)
            rows[(r["tag"], r["track"], r["lr"], r["seed"])] = r
    return list(rows.values())

def tname(t):
    d = json.loads(t) if t.startswith("{") else {"world.track": t}
    n = d["world.track"].split("/")[-1].replace(".png", "")
    return n

def fmt(x, nd=0):
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:,.{nd}f}"

def table(rows, tags, tracks, label=None):
    """One line per (tag, lr): settled/n per track, then pooled medians."""
    g = collections.defaultdict(list)
    for r in rows:
        if r["tag"] in tags:
            g[(r["tag"], r["lr"])].append(r)
    out = ["| setup | lr | " + " | ".join(tracks) + " | all tracks | median settled step | full dead layers | flips /1000 | sat. steering |",
           "|---|---|" + "---|" * len(tracks) + "---|---|---|---|---|"]
    for tag in tags:
        for lr in sorted({k[1] for k in g if k[0] == tag}):
            rs = g[(tag, lr)]
            cells, tot, n = [], 0, 0
            for t in tracks:
                sub = [r for r in rs if tname(r["track"]) == t]
                if not sub:
                    cells.append("–"); continue
                if any("diverged" in r for r in sub):
                    cells.append("div."); n += len(sub); continue
                s = sum(bool(r["settled"]) for r in sub)
                cells.append(f"{s}/{len(sub)}"); tot += s; n += len(sub)
            ok = [r for r in rs if "diverged" not in r and tname(r["track"]) in tracks]
            st = [r["settled_step"] for r in ok if r["settled"]]
            dead = sum(r["full_dead_layers"] > 0 for r in ok)
            out.append(f"| {(label or {}).get(tag, tag)} | {lr:g} | " + " | ".join(cells) + f" | {tot}/{n} | {fmt(np.median(st)) if st else '–'} | {dead}/{len(ok)} | {fmt(np.median([r['flips_per_1000'] for r in ok]))} | {fmt(np.mean([r['sat_frac'] for r in ok]), 2)} |")
    return "\n".join(out)

def per_track(rows, tags, tracks, label=None):
    """One line per (tag, track): settled, first passage, settled step, relapses, frac above, flips, sat, dead."""
    out = ["| setup | track | settled | first passage, median | settled step, median (settled runs) | relapses, median | above threshold, last 5,000 | flips /1000, median | sat. steering | full dead layers | mean dead share, layer 1 |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for tag in tags:
        for t in tracks:
            rs = [r for r in rows if r["tag"] == tag and tname(r["track"]) == t and "diverged" not in r]
            if not rs: continue
            s = [r for r in rs if r["settled"]]
            fp = [r["first"] if r["first"] is not None else np.inf for r in rs]
            out.append(f"| {(label or {}).get(tag, tag)} | {t} | {len(s)}/{len(rs)} | {fmt(np.median(fp))} | {fmt(np.median([r['settled_step'] for r in s])) if s else '–'} | {fmt(np.median([r['relapses'] for r in rs]))} | {np.mean([r['frac_above_last'] for r in rs]):.2f} | {fmt(np.median([r['flips_per_1000'] for r in rs]))} | {np.mean([r['sat_frac'] for r in rs]):.2f} | {sum(r['full_dead_layers']>0 for r in rs)} | {np.mean([r['dead'][0] for r in rs]):.2f} |")
    return "\n".join(out)

if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    rows = load(spec["files"])
    f = per_track if spec.get("per_track") else table
    print(f(rows, spec["tags"], spec["tracks"], spec.get("label")))
