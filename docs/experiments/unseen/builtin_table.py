"""The built-in tracks' tables of docs/results.md from the sweeps of ``builtin_seven.toml`` and
``builtin_apart.toml``.

Usage: ``python docs/experiments/unseen/builtin_table.py RUN_DIR``. One row per (rule, rate):
settled / runs and the median settled step per track, the runs settled in all, on how many
tracks the median settled step is later than GDM's at 0.3, the median steering flips per
1,000 steps, the runs steering bang-bang (saturated on >= 10 % of the last steps) and the
runs ending with a wholly saturated layer.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

#: The built-in tracks in the order of the tables (the seven settling ones, then those apart).
ORDER = ["curvy", "hairpin", "random", "circle", "oval", "photo", "wide", "figure8", "thick", "tight"]


def main(run_dir: str) -> None:
    df = pd.read_parquet(f"{run_dir}/results.parquet")
    df = df[df["status"] == "ok"]
    tracks = [t for t in ORDER if t in set(df["track"])]
    gdm = df[(df["rule"] == "gdm") & np.isclose(df["lr"], 0.3)]
    gdm_step = gdm[gdm["settled"]].groupby("track")["settled_step"].median()
    head = ["rule", "η", *tracks, "settled", "later than gdm 0.3 on", "flips /1000", "bang-bang",
            "dead layer"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for (rule, lr), g in df.groupby(["rule", "lr"], sort=False):
        cells, later = [], 0
        for t in tracks:
            r = g[g["track"] == t]
            ok = r[r["settled"]]
            med = ok["settled_step"].median()
            cells.append(f"{len(ok)}/{len(r)} · {med:,.0f}" if len(ok) else f"0/{len(r)}")
            if rule != "gdm" and len(ok) and med > gdm_step.get(t, np.inf):
                later += 1
        row = [
            rule, f"{lr:g}", *cells, f"{int(g['settled'].sum())}/{len(g)}",
            "–" if rule == "gdm" else f"{later}/{len(tracks)}",
            f"{g['steering_flips_per_1000'].median():.0f}",
            str(int((g["saturated_steering_fraction"] >= 0.1).sum())),
            str(int((g["dead_layers"] >= 1).sum())),
        ]  # fmt: skip
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
