"""Is a run's steering a weave? Amplitude of its flips, and its network's static curve.

Usage: ``python docs/experiments/unseen/weave.py RUN_DIR WIDTH [RUN_DIR WIDTH ...]``, each
RUN_DIR written by ``sarlearn follow ... --trace-every 1`` with rows input (raw or mirror).

For the last 5,000 steps of the trace: steering flips per 1,000 steps, median |y|, the median
|y(t) - y(t-1)| at a flip, how often the heading's rate changes sign and its median size per
step (a flip of a negligible output would leave the heading smooth). Then the trained network's
steering against the lateral offset of a straight line WIDTH units wide, seen square on, with
every filter at its DC value (the resonators have unit DC gain): a step function of the offset
means bang-bang steering.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from sarlearn.config import parse_config
from sarlearn.metrics import steering_flips_per_1000
from sarlearn.stages.perception.perception import row_predictors

OFFSETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0)


def flips_amplitude(run: Path) -> str:
    t = pd.read_parquet(run / "trace.parquet").iloc[-5000:]
    y = t.steering.to_numpy()
    s = np.sign(y)
    i = np.flatnonzero(s != 0)
    at = i[1:][s[i[1:]] != s[i[:-1]]]
    dy = float(np.median(np.abs(y[at] - y[at - 1]))) if len(at) else 0.0
    dh = np.diff(np.unwrap(t.heading.to_numpy()))
    heading_flips = 1000 * float(np.mean(np.sign(dh[1:]) != np.sign(dh[:-1])))
    return (
        f"flips {steering_flips_per_1000(y):.0f}, median |y| {np.median(np.abs(y)):.2f}, "
        f"median |dy| at a flip {dy:.2f}, heading-rate sign changes {heading_flips:.0f}, "
        f"median |d heading| {np.median(np.abs(dh)):.4f} rad/step"
    )


def static_curve(run: Path, width: float) -> str:
    z = np.load(run / "network.npz")
    cfg = json.loads((run / "config.json").read_text())
    world = cfg["world"]
    mode = world.get("predictor_mode") or ("mirror" if cfg["rule"]["name"] == "sar" else "raw")
    per_row, spacing = world["predictors_per_row"], world["predictor_spacing"]
    n_rows, n_f = len(world["predictor_distances"]), cfg["filters"]["n_filters"]
    n_layers = sum(1 for k in z.files if k.startswith("weights/"))
    weights = [z[f"weights/{i}"][0] for i in range(n_layers)]
    readout = np.asarray(parse_config(cfg).readout)  # None in the file: the one in force
    pos = (np.arange(per_row) - (per_row - 1) / 2) * spacing
    out = []
    for off in OFFSETS:
        lo, hi = off - width / 2, off + width / 2  # sensor coverage, one sensor's width of edge
        g = np.clip((pos - lo) / spacing + 0.5, 0, 1) * np.clip((hi - pos) / spacing + 0.5, 0, 1)
        x = np.repeat(row_predictors(np.tile(g, n_rows)[None], per_row, mode)[0], n_f)
        for w in weights:
            x = 0.5 * np.tanh(0.5 * (w @ x))  # the centred logistic
        out.append(f"{off:g}: {float(readout @ x):+.2f}")
    return "steering at offset " + ", ".join(out)


if __name__ == "__main__":
    args = sys.argv[1:]
    for run, width in zip(args[::2], args[1::2], strict=True):
        print(f"{run}\n  {flips_amplitude(Path(run))}\n  {static_curve(Path(run), float(width))}")
