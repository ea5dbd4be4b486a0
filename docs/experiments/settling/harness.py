"""Scratch harness: populations on the engine, strict measures from the traces.

Measures per run (computed here until metrics9's are merged):
first passage (paper), settled_step (moving sum < thr from there to the end), settled (last
5000 steps clean), frac_above_last (last 5000), relapses (upward threshold crossings after the
first success), flips per 1000 and saturated fraction of the network steering over the last
1000 steps, dead units per layer at the end (units whose f'(h)/f'(0) < 0.01 on every one of
the last `probe` steps), fully saturated layers.

A robot off the line (no sensor has seen it for ``world.off_track_after`` steps) reads e = 0,
which is not learning: a run that is off the line at its end counts as not settled, and
``off_track_end`` / ``off_track_first`` say so (as ``sarlearn follow`` and ``sweep``, which stop
such a run). Until this was added, runs on ``figure8`` that had left the line counted as
settled (docs/results.md, section 6, "Correction").
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.errors import SarlearnError
from sarlearn.metrics import SuccessCriterion, moving_sum, steps_to_success

LAST = 5000
SMOOTH = 1000
PROBE = 200


def strict(err: np.ndarray, steer: np.ndarray, cfg: RunConfig) -> dict:
    crit = SuccessCriterion(
        warmup=cfg.warmup,
        window=cfg.success_window,
        threshold=cfg.success_threshold,
        hold=cfg.success_hold,
    )
    T = err.shape[0]
    ms = moving_sum(np.abs(err), cfg.success_window)
    above = ms >= cfg.success_threshold
    above[: cfg.warmup] = True  # nothing counts before the warm-up
    first = steps_to_success(err, crit)
    idx = np.flatnonzero(above)
    settled_step = None if idx.size and idx[-1] == T - 1 else (int(idx[-1]) + 1 if idx.size else 0)
    last = min(LAST, T)
    frac_above = float(above[-last:].mean())
    relapses = 0
    if first is not None:
        a = above[first:]
        relapses = int(np.sum(a[1:] & ~a[:-1]))
    ymax = 1.5
    y = steer[-SMOOTH:]
    s = np.sign(y)
    s = s[s != 0]
    flips = float(np.sum(s[1:] != s[:-1]) * 1000.0 / max(len(y), 1))
    sat = float(np.mean(np.abs(y) > 0.9 * ymax))
    return {
        "first": first,
        "settled_step": settled_step,
        "settled": settled_step is not None and settled_step <= T - last,
        "frac_above_last": frac_above,
        "relapses": relapses,
        "flips_per_1000": flips,
        "sat_frac": sat,
        "mean_abs_e_last": float(np.abs(err[-last:]).mean()),
    }


def run_population(cfgs: list[RunConfig], steps: int, chunk: int = 5000) -> list[dict]:
    fast = FastClosedLoop.from_configs(cfgs)
    errs, steers, offs = [], [], []
    t0 = time.time()
    failed = None
    try:
        done = 0
        while done < steps:
            n = min(chunk, steps - done)
            rec = fast.run(n)
            errs.append(rec["error"])
            steers.append(rec["steering"])
            offs.append(rec["off_track"])
            done += n
    except SarlearnError as exc:  # divergence: the whole population stops
        failed = str(exc)
        part = getattr(fast, "partial", None)
        if part:
            errs.append(part["error"])
            steers.append(part["steering"])
    err = np.concatenate(errs, axis=1) if errs else np.zeros((len(cfgs), 0))
    steer = np.concatenate(steers, axis=1) if steers else np.zeros((len(cfgs), 0))
    off = np.concatenate(offs, axis=1) if offs else np.zeros((len(cfgs), 0), dtype=bool)
    dead = None
    if failed is None:
        L = fast.n_layers
        noff = fast._noff.astype(int)
        sat = np.ones((len(cfgs), int(noff[-1])), dtype=bool)
        inv0 = 4.0 if cfgs[0].network.activation == "logistic" else 1.0
        for _ in range(PROBE):
            fast.run(1)
            sat &= fast._slope * inv0 < 0.01
        dead = [[float(sat[p, noff[i] : noff[i + 1]].mean()) for i in range(L)] for p in range(len(cfgs))]
    out = []
    for p, cfg in enumerate(cfgs):
        m = strict(err[p], steer[p], cfg) if failed is None else {"diverged": failed[:200]}
        if failed is None:
            m["off_track_end"] = bool(off[p, -1]) if off.shape[1] else False
            m["off_track_first"] = int(np.argmax(off[p])) if off[p].any() else None
            if m["off_track_end"]:  # e = 0 because the line is out of sight, not learned
                m["settled"] = False
                m["settled_step"] = None
        m.update(
            seed=cfg.seed,
            lr=cfg.rule.learning_rate,
            track=cfg.world.track,
            steps=steps,
            seconds=time.time() - t0,
        )
        if dead is not None:
            m["dead"] = dead[p]
            m["full_dead_layers"] = int(sum(d == 1.0 for d in dead[p]))
        out.append(m)
    return out


def main() -> None:
    """argv: JSON {base: {...overrides}, tracks: [..or {track overrides}], seeds: n, lrs: [..],
    steps: n, tag: str, out: path}."""
    spec = json.loads(sys.argv[1])
    rows = []
    for track in spec["tracks"]:
        tov = track if isinstance(track, dict) else {"world.track": track}
        cfgs = []
        for lr in spec["lrs"]:
            for s in range(spec.get("seed0", 0), spec.get("seed0", 0) + spec["seeds"]):
                ov = {**spec["base"], **tov, "rule.lr": lr, "seed": s, "steps": spec["steps"]}
                cfgs.append(RunConfig().with_overrides(ov))
        res = run_population(cfgs, spec["steps"])
        tname = json.dumps(tov, sort_keys=True)
        for r in res:
            r["tag"] = spec["tag"]
            r["track"] = tname
            rows.append(r)
        with open(spec["out"], "a") as f:
            for r in res:
                f.write(json.dumps(r) + "\n")
        n_set = sum(bool(r.get("settled")) for r in res)
        print(spec["tag"], tname, f"settled {n_set}/{len(res)}", f"{res[0]['seconds']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
