"""The tables of docs/results.md, "Tracks it has never seen", from a sweep's results.

Usage: ``python docs/experiments/unseen/table.py RUN_DIR [RUN_DIR ...] [BREAKDOWN ...]``, the
run directories' results taken together (e.g. a sweep and the one holding its reflex runs),
BREAKDOWN among width, contrast, texture, radius, distractor (generated tracks only).

Per candidate (rule, rate, input cap, inputs, predictor mode, shallow): settled runs; runs
whose mean |e| over the last 1,000 steps is above the reflex alone's on the same track and
seed ("harm > 1", of the runs whose reflex run is in the results); the largest harm ratio;
runs ending with a wholly saturated layer ("dead"); median steering flips per 1,000 steps.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sarlearn.stages.world.family import generate


def markdown(t: pd.DataFrame) -> str:
    t = t.reset_index()
    lines = ["| " + " | ".join(str(c) for c in t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in t.itertuples(index=False)]
    return "\n".join(lines)


#: World settings that are the learner's, not the floor's: the reflex runs once for all.
NOT_THE_FLOOR = ("p.world.predictor_mode", "p.world.inputs", "p.world.track")

_drawn: dict[str, dict] = {}


def drawn(track: str) -> dict:
    """What the generator drew for ``track`` (width, contrast, ...)."""
    if track not in _drawn:
        _drawn[track] = vars(generate(track, resolution=1.0).drawn)
    return _drawn[track]


def col_of(d: pd.DataFrame, key: str) -> pd.Series:
    """Column ``key`` of ``d``, or None everywhere if no run set it."""
    return d[key] if key in d else pd.Series([None] * len(d), index=d.index, dtype=object)


def label(d: pd.DataFrame) -> pd.Series:
    def col(key: str) -> pd.Series:
        return d[key] if key in d else pd.Series([None] * len(d), index=d.index)

    def missing(v: object) -> bool:
        return v is None or (isinstance(v, float) and np.isnan(v))

    lr = col("p.rule.lr").map(lambda v: "" if missing(v) else f" η {v:g}")
    cap = col("p.network.input_max_norm").map(
        lambda v: "" if missing(v) or v == float("inf") else f" cap {v:g}"
    )
    inputs = col("p.world.inputs").map(lambda v: "rows" if missing(v) else v)
    mode = col("p.world.predictor_mode").map(lambda v: "" if missing(v) else f" {v}")
    shallow = col("p.network.layers").map(
        lambda v: " shallow" if not missing(v) and len(v) == 1 else ""
    )
    rel = col("p.rule.relevance.normalise").map(lambda v: " normalised r" if v is True else "")
    return d.rule + lr + cap + rel + " " + inputs + mode + shallow


def summary(x: pd.DataFrame) -> pd.Series:
    return pd.Series(
        {
            "runs": len(x),
            "settled": f"{int(x.settled.sum())}/{len(x)}",
            "harm > 1": f"{int(x.harms.sum())}/{int(x.harm.notna().sum())}",
            "max harm": round(float(x.harm.max()), 2) if x.harm.notna().any() else "-",
            "dead": int(x.dead.sum()),
            "median flips": round(float(x.steering_flips_per_1000.median())),
        }
    )


def main(run_dirs: list[str], breakdowns: list[str]) -> None:
    d = pd.concat([pd.read_parquet(f"{r}/results.parquet") for r in run_dirs])
    d = d.reset_index(drop=True)
    d = d[d.status == "ok"].reset_index(drop=True)
    params = pd.json_normalize(d.params_json.map(json.loads)).add_prefix("p.")
    d = pd.concat([d, params], axis=1)
    d["cand"] = label(d)
    # a frozen untrained network with its zero output layer steers exactly 0: the reflex alone
    cfg = d.config_json.map(json.loads)
    silent = cfg.map(lambda c: c["freeze"] and c["load"] is None and c["network"]["zero_output"])
    d.loc[silent, "rule"] = "reflex"
    d["cand"] = d["cand"].where(~silent, "reflex")
    loaded = cfg.map(lambda c: c["load"] is not None and c["freeze"])
    d["cand"] = d["cand"].where(~loaded, d["cand"] + " frozen, loaded")
    # the reflex's run on the same floor: track, seed and any other world setting swept
    floor = sorted(c for c in d if c.startswith("p.world.") and c not in NOT_THE_FLOOR)
    keys = d[["track", "seed", *floor]].map(str).agg("|".join, axis=1)
    reflex = dict(zip(keys[d.rule == "reflex"], d.mean_abs_error_last_1000[d.rule == "reflex"],
                      strict=True))  # fmt: skip
    keep = d.rule != "reflex"
    d, keys = d[keep].copy(), keys[keep]
    ref = pd.Series([reflex.get(k, np.nan) for k in keys], d.index)
    e = d.mean_abs_error_last_1000
    ratio = np.where(ref > 0, e / ref.where(ref > 0, 1.0), np.where(e > 0, np.inf, 0.0))
    d["harm"] = np.where(ref.isna(), np.nan, ratio)
    d["harms"] = e > ref + 1e-12
    d["dead"] = d.dead_layers.fillna(0) > 0
    if breakdowns:
        get = lambda key: d.track.map(lambda t: drawn(t)[key])  # noqa: E731
        d["width"] = pd.cut(get("width"), [0, 3, 5, 7, 10], right=False,
                            labels=["1.5-3", "3-5", "5-7", "7-9"])  # fmt: skip
        d["contrast"] = pd.cut(get("contrast"), [0, 0.6, 1.01], right=False,
                               labels=["< 0.6", ">= 0.6"])  # fmt: skip
        d["texture"] = get("texture").map(lambda v: "plain" if v == 0 else "textured")
        d["radius"] = pd.cut(get("min_radius"), [0, 25, 1e9], right=False,
                             labels=["< 25", ">= 25"])  # fmt: skip
        d["distractor"] = d.track.map(
            lambda t: "frame" if drawn(t)["frame"] else
            "second line" if drawn(t)["second"] else "marks" if drawn(t)["marks"] else "none"
        )  # fmt: skip
    print(f"{d.track.nunique()} tracks, seeds {sorted(int(s) for s in d.seed.unique())}")
    print(markdown(d.groupby("cand").apply(summary, include_groups=False)))
    for key in breakdowns:
        cell = lambda x: f"{int(x.settled.sum())}/{len(x)} ({int(x.harms.sum())})"  # noqa: E731
        t = d.groupby(["cand", key], observed=True).apply(cell, include_groups=False)
        print(f"\nsettled (runs above the reflex's |e|) by {key}")
        print(markdown(t.unstack(key)))


if __name__ == "__main__":
    args = sys.argv[1:]
    main([a for a in args if Path(a).is_dir()], [a for a in args if not Path(a).is_dir()])
