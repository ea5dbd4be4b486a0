"""Tables of experiment 3c (depth with the strict measures, full rate range): prints markdown.

    python docs/experiments/e3c_tables.py runs/e3c

For each rule, initialisation and depth: settled runs / runs at every rate (pooled over the
three tracks), the best rate (most settled, then the smaller median settled step), and the
median settled step of the settled runs at that rate; then, per rule and initialisation, the
slow-down from 1 to 11 hidden layers at each depth's best rate.
"""

from __future__ import annotations

import json
import sys

import pandas as pd

from sarlearn.store.store import MergedStore


def load(dirs: list[str]) -> pd.DataFrame:
    df = MergedStore(dirs).load()
    df = df[df["status"] == "ok"].copy()
    df["init"] = [json.loads(p)["network.init"] for p in df["params_json"]]
    return df


def main() -> None:
    df = load(sys.argv[1:] or ["runs/e3c"])
    print(f"{len(df)} runs\n")
    for rule in ("sar", "gdm"):
        sub = df[df["rule"] == rule]
        rates = sorted(sub["lr"].unique())
        head = "| init | hidden layers | " + " | ".join(f"η {r:g}" for r in rates)
        print(head + " | best η | settled step, median (best η) |")
        print("|" + "---|" * (len(rates) + 4))
        slow: dict[str, dict[int, float]] = {}
        for init in ("scaled", "symmetric"):
            for depth in sorted(sub["n_hidden"].unique()):
                cell = sub[(sub["init"] == init) & (sub["n_hidden"] == depth)]
                counts, best = [], None
                for r in rates:
                    c = cell[cell["lr"] == r]
                    n_set = int(c["settled"].sum())
                    med = c.loc[c["settled"], "settled_step"].median()
                    counts.append(f"{n_set}/{len(c)}")
                    key = (n_set, -(med if n_set else 1e9))
                    if best is None or key > best[0]:
                        best = (key, r, med, n_set)
                assert best is not None
                _, r, med, n_set = best
                slow.setdefault(init, {})[int(depth)] = med if n_set else float("nan")
                med_s = f"{med:,.0f}" if n_set else "–"
                print(f"| {init} | {depth} | " + " | ".join(counts) + f" | {r:g} | {med_s} |")
        print()
        for init, by_depth in slow.items():
            d = sorted(by_depth)
            print(
                f"{rule}, {init}: median settled step at each depth's best η, "
                + ", ".join(f"{k} layers {by_depth[k]:,.0f}" for k in d)
                + f"; {d[-1]} vs {d[0]} layers: {by_depth[d[-1]] / by_depth[d[0]]:.1f}x"
            )
        print()


if __name__ == "__main__":
    main()
