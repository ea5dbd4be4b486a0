"""The reflex alone, and a hand-written anticipating controller, on every built-in track.

Measures what docs/world.md reports: per track, 5 laps of the reflex alone (y = 0) from 8
random starts on the line (seed 0): mean |e|, the share of steps with e != 0, the farthest
distance from the centreline, the smallest 200-step moving sum of |e| and whether any robot
went off track; then 3 laps of the anticipating controller ``y = clip(k offset, -1.5, 1.5)``
on the predictor rows (the line's offset; the reach of SPEC's readout [1, 2]), k = 0.5, 0.8,
1.5, 3 or 6, from the automatic start: the smallest share of steps with e != 0 in its last 2
laps, and its k.

    PYTHONPATH=src python benchmarks/tracks_reflex.py [TRACK ...]
"""

from __future__ import annotations

import sys

import numpy as np

from sarlearn.config import WorldConfig
from sarlearn.metrics import moving_sum
from sarlearn.stages.world import SimWorld
from sarlearn.stages.world.tracks import TRACK_NAMES, style_of


def laps(world: SimWorld, n: float) -> int:
    length = len(world.track.centreline) * 0.5  # centreline points are 0.5 units apart
    return int(n * length / (world.cfg.speed * world.cfg.dt))


def distance_to_line(world: SimWorld) -> np.ndarray:
    line = world.track.centreline
    return np.linalg.norm(line[None, :, :] - world.pose[:, None, :2], axis=2).min(axis=1)


def reflex_alone(name: str, population: int = 8) -> dict[str, float]:
    world = SimWorld(WorldConfig(track=name), population, rng=np.random.default_rng(0))
    n = laps(world, 5)
    err, far, off = np.empty((population, n)), 0.0, False
    for t in range(n):
        err[:, t] = world.step()
        if t % 5 == 0:
            far = max(far, float(distance_to_line(world).max()))
        off |= bool(world.off_track.any())
    ms = moving_sum(np.abs(err), 200)[:, 200:]
    return {
        "steps": n,
        "mean_abs_e": float(np.abs(err).mean()),
        "e_nonzero": float((err != 0).mean()),
        "farthest": far,
        "min_sum": float(ms.min()),
        "off_track": off,
    }


def anticipating(
    name: str, gains: tuple[float, ...] = (0.5, 0.8, 1.5, 3.0, 6.0)
) -> dict[str, float]:
    best = {"ctrl_e_nonzero": 2.0, "gain": 0.0}
    for gain in gains:
        world = SimWorld(WorldConfig(track=name))
        lateral = world.sensors.positions[2:, 1]
        n = laps(world, 3)
        err = np.empty(n)
        for t in range(n):
            rows = world.predictors()
            offset = (rows * lateral).sum(axis=1) / np.maximum(rows.sum(axis=1), 1e-9)
            err[t] = world.step(np.clip(gain * offset, -1.5, 1.5))[0]
        share = float((err[laps(world, 1) :] != 0).mean())
        if share < best["ctrl_e_nonzero"]:
            best = {"ctrl_e_nonzero": share, "gain": gain}
    return best


def main(names: list[str]) -> None:
    print(
        "| track | role | steps | mean abs e | e != 0 | farthest | min 200-step sum | off track "
        "| controller: e != 0 (last 2 laps), k |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        r, c = reflex_alone(name), anticipating(name)
        print(
            f"| {name} | {style_of(name).role} | {r['steps']} | {r['mean_abs_e']:.2f} | "
            f"{r['e_nonzero']:.0%} | {r['farthest']:.1f} | {r['min_sum']:.0f} | "
            f"{'yes' if r['off_track'] else 'no'} | {c['ctrl_e_nonzero']:.1%}, {c['gain']:g} |",
            flush=True,
        )


if __name__ == "__main__":
    main(sys.argv[1:] or list(TRACK_NAMES))
