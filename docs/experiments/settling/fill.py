import json, re, sys, collections
import numpy as np
sys.path.insert(0, __import__("os").path.dirname(__file__))
from tables import load, table, per_track, tname, fmt

S = "runs/settling/"
SETTLE = ["curvy", "hairpin", "random", "figure8", "circle", "oval", "thick", "photo", "wide"]
LAB = {"sar_plain": "plain sar (old step)", "gate_sqrtfan_bound3": "**default**: √fan-in + gate + bound 3",
       "bound5": "bound 5", "gate_bound5": "gate + bound 5", "gate_bound2": "gate + bound 2",
       "gate_sqrtfan_bound5": "√fan-in + gate + bound 5", "gate_sqrtfan_bound5_cap10": "√fan-in + gate + bound 5 + cap 10",
       "def_no_gate": "default without gate", "def_no_bound": "default without bound",
       "def_no_norm": "default without √fan-in", "def_readout": "default + readout share",
       "def_lowpass": "default + relevance low-pass 0.9", "def_normalise": "default + normalised relevance",
       "d_gdm": "gdm", "conf_sar": "sar (default)", "conf_gdm": "gdm", "conf_rel0": "relevance-only, 0 hidden",
       "conf_rel1": "relevance-only, 1 hidden", "conf_dfa": "dfa (10 × 10)", "conf_fa": "fa (10 × 10)", "d_relonly_0h": "relevance-only, 0 hidden",
       "d_relonly_1h": "relevance-only, 1 hidden", "c_sar_new": "sar (√fan-in + gate + bound 3), η 1", "c_sar_old": "plain sar, η 0.01",
       "c_gdm": "gdm, η 0.1", "c_relonly_0h": "relevance-only, 0 hidden, η 0.1", "c_dfa": "dfa, η 0.1"}
screen = load([S + "screen3.jsonl"])
conf = load([S + "confirm.jsonl"])
cam = load([S + "camera.jsonl"])
T = {}
T["screen"] = table(screen, ["sar_plain", "bound5", "gate_bound5", "gate_bound2", "gate_sqrtfan_bound5",
                             "gate_sqrtfan_bound5_cap10", "gate_sqrtfan_bound3", "def_no_gate", "def_no_bound",
                             "def_no_norm", "def_readout", "def_lowpass", "def_normalise", "d_gdm"],
                    ["curvy", "hairpin", "random", "figure8"], LAB)
T["confirm"] = table(conf, ["conf_sar", "conf_gdm"], SETTLE, LAB)
best = [r for r in conf if not (r["tag"] == "conf_sar" and r["lr"] != 10.0) and not (r["tag"] == "conf_gdm" and r["lr"] != 0.3)]
T["confirm_tracks"] = per_track(best, ["conf_sar", "conf_gdm"], SETTLE, LAB)
# targets
sar = [r for r in conf if r["tag"] == "conf_sar" and "diverged" not in r]
gdm = [r for r in conf if r["tag"] == "conf_gdm" and "diverged" not in r]
def sub(rows, t, lr): return [r for r in rows if tname(r["track"]) == t and r["lr"] == lr]
lines = ["| target | measured | met? |", "|---|---|---|"]
cells = []; allok = True
for t in SETTLE:
    rs = sub(sar, t, 10.0); s = sum(r["settled"] for r in rs)
    ok = len(rs) > 0 and s >= 0.9 * len(rs); allok &= ok
    cells.append(f"{t} {s}/{len(rs)}")
lines.append(f"| settles in ≥ 18/20 (90 %) on every settling track, 30,000 steps | {', '.join(cells)} | {'yes' if allok else '**no**'} |")
lrs = sorted({r["lr"] for r in sar})
common = [t for t in SETTLE if all(sub(sar, t, lr) for lr in lrs)]
wcells = []; good = []
for lr in lrs:
    rs = [r for r in sar if r["lr"] == lr and tname(r["track"]) in common]
    s_ = sum(r["settled"] for r in rs); frac = s_ / max(len(rs), 1)
    wcells.append(f"η {lr:g}: {s_}/{len(rs)} ({100*frac:.0f} %)")
    if frac >= 0.9: good.append(lr)
contiguous = good == [lr for lr in lrs if good and min(good) <= lr <= max(good)]
span = (np.log10(max(good)) - np.log10(min(good))) if good and contiguous else 0
missing = [t for t in SETTLE if t not in common]
lines.append(f"| window of ≥ 90 % settled spans ≥ 2 decades of η | on the {len(common)} tracks run at every rate ({', '.join(common)}; not {', '.join(missing)}): {'; '.join(wcells)} | {'yes, on those tracks' if span >= 2 else '**no**'} ({'no rate' if not good else f'{min(good):g}–{max(good):g}'}); with `thick` no rate reaches 90 % |")
dead = [r for r in sar if r["full_dead_layers"] > 0 and tname(r["track"]) in SETTLE]
bytr = collections.Counter(tname(r["track"]) for r in dead)
lines.append(f"| no run ends with a fully saturated layer | {len(dead)} of {len([r for r in sar if tname(r['track']) in SETTLE])} runs (all η) do: {', '.join(f'{k} {v}' for k, v in bytr.items()) or 'none'} | {'yes' if not dead else '**no**'} |")
fc = []; fok = True
for t in SETTLE:
    a, b = sub(sar, t, 10.0), sub(gdm, t, 0.3)
    if not a or not b: continue
    fa, fb = np.median([r["flips_per_1000"] for r in a]), np.median([r["flips_per_1000"] for r in b])
    ok = fa <= 2 * fb; fok &= ok
    fc.append(f"{t} {fa:.0f} vs {fb:.0f}")
lines.append(f"| median steering flips ≤ 2× GDM's (per 1,000 steps, SaR vs GDM) | {', '.join(fc)} | {'yes' if fok else '**no**'} |")
sc = []; sok = True
for t in SETTLE:
    a = [r["settled_step"] for r in sub(sar, t, 10.0) if r["settled"]]
    b = [r["settled_step"] for r in sub(gdm, t, 0.3) if r["settled"]]
    if not a or not b: sc.append(f"{t} –"); continue
    ma, mb = np.median(a), np.median(b); ok = ma <= mb * 1.1; sok &= ok
    sc.append(f"{t} {ma:,.0f} vs {mb:,.0f}")
lines.append(f"| not slower to settle than GDM at their best rates (median settled step of settled runs, SaR η 10 vs GDM η 0.3) | {', '.join(sc)} | {'yes' if sok else '**no**'} |")
T["targets"] = "\n".join(lines)
T["depth_screen"] = table(screen, ["gate_sqrtfan_bound3", "d_gdm", "d_relonly_0h", "d_relonly_1h"], ["curvy", "hairpin", "random", "figure8"], LAB)
T["depth_confirm"] = table(best,
                           ["conf_sar", "conf_gdm", "conf_rel0", "conf_rel1", "conf_dfa", "conf_fa"], SETTLE, LAB)
T["tight"] = per_track(best,
                       ["conf_sar", "conf_gdm", "conf_rel0", "conf_rel1", "conf_dfa"], ["tight"], LAB)
T["camera"] = per_track(cam, ["c_sar_new", "c_sar_old", "c_gdm", "c_relonly_0h", "c_dfa"], ["camera:curvy"], LAB).replace("last 5,000", "last 3,000")
p = "docs/results.md"
s = open(p).read()
for k, v in T.items():
    s = re.sub(rf"<!-- T:{k} -->.*?<!-- /T -->", lambda m: f"<!-- T:{k} -->\n{v}\n<!-- /T -->", s, flags=re.S)
open(p, "w").write(s)
print(T["targets"])
