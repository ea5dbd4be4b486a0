"""Tables of experiment 2c (every rule over the full rate range, strict measures): markdown.

    python docs/experiments/e2c_tables.py runs/e2c runs/e2c-more runs/e2c-sar-aligned [--without figure8]

Runs whose ``network.init_align`` in force is > 0 (e2c_sar_aligned.toml: sar's default since
the aligned start) get their own row, "sar, aligned start"; the sar rows of
e2c_rates_settling.toml and e2c_more_tracks.toml ran with the rows unturned (the default
before it, now pinned in those files).

1. Per rule: settled runs / runs at every rate (pooled over the tracks), the rates with
   >= 90 % settled (the window, in decades), the best rate (most settled, then the smaller
   median settled step) and, there, the median settled step (settled runs) and the median
   steering flips per 1,000 steps.
2. Per rule and track at the rule's best rate: settled runs and median settled step.
"""

from __future__ import annotations

import json
import math
import sys

import pandas as pd

from sarlearn.config import parse_config
from sarlearn.store.store import MergedStore

RULES = ["sar, aligned start", "sar", "sar-local", "sar-exact", "sign-only", "relevance-only", "gdm", "fa", "dfa",
         "sign-symmetry"]  # fmt: skip


def init_align(config_json: str) -> float:
    """The run's ``network.init_align`` in force (0 for runs from before the option)."""
    cfg = json.loads(config_json)
    if "init_align" not in cfg["network"]:
        return 0.0
    return parse_config(cfg).init_align


def best_rate(sub: pd.DataFrame) -> tuple[float, int, float]:
    """(rate, settled, median settled step): most settled, then the earliest median."""
    best = None
    for r, c in sub.groupby("lr"):
        n = int(c["settled"].sum())
        med = float(c.loc[c["settled"], "settled_step"].median()) if n else math.inf
        key = (n, -med)
        if best is None or key > best[0]:
            best = (key, float(r), n, med)
    assert best is not None
    return best[1], best[2], best[3]


def main() -> None:
    args = sys.argv[1:]
    without = []  # --without TRACK (repeatable): leave a track out, e.g. figure8
    while "--without" in args:
        i = args.index("--without")
        without.append(args[i + 1])
        del args[i : i + 2]
    df = MergedStore(args or ["runs/e2c"]).load()
    df = df[~df["track"].isin(without)].copy()
    n_all = len(df)
    df["settled"] = df["settled"].fillna(False).astype(bool) & (df["status"] == "ok")
    aligned = [init_align(c) > 0 for c in df["config_json"]]
    df.loc[aligned, "rule"] = df.loc[aligned, "rule"] + ", aligned start"
    rates = sorted(df["lr"].unique())
    tracks = sorted(df["track"].unique())
    print(f"{n_all} runs; tracks {', '.join(tracks)}\n")
    print("| rule | " + " | ".join(f"{r:.2g}" for r in rates) + " | ≥ 90 % settled | best η | "
          "settled step, median | flips /1000, median |")  # fmt: skip
    print("|" + "---|" * (len(rates) + 5))
    bests = {}
    for rule in [r for r in RULES if r in set(df["rule"])]:
        sub = df[df["rule"] == rule]
        cells, window = [], []
        for r in rates:
            c = sub[sub["lr"] == r]
            n = int(c["settled"].sum())
            cells.append(f"{n}/{len(c)}" if len(c) else "")
            if len(c) and n >= 0.9 * len(c):
                window.append(r)
        r, n, med = best_rate(sub)
        bests[rule] = r
        at = sub[sub["lr"] == r]
        flips = at.loc[at["status"] == "ok", "steering_flips_per_1000"].median()
        if window:
            dec = math.log10(window[-1] / window[0])
            win = f"{window[0]:.2g}–{window[-1]:.2g} ({dec:.1f} dec.)"
            if len(window) != round(dec * 2) + 1:
                win += ", with gaps"
        else:
            win = "none"
        med_s = f"{med:,.0f}" if n else "–"
        print(f"| `{rule}` | " + " | ".join(cells) + f" | {win} | {r:.2g} | {med_s} | "
              f"{flips:.0f} |")  # fmt: skip
    print()
    print("| rule | best η | " + " | ".join(tracks) + " |")
    print("|" + "---|" * (len(tracks) + 2))
    for rule, r in bests.items():
        row = []
        for t in tracks:
            c = df[(df["rule"] == rule) & (df["lr"] == r) & (df["track"] == t)]
            n = int(c["settled"].sum())
            med = c.loc[c["settled"], "settled_step"].median()
            row.append(f"{n}/{len(c)} · {med:,.0f}" if n else f"0/{len(c)}")
        print(f"| `{rule}` | {r:.2g} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
