"""Is a track settleable at all? Hand-made controllers on the compiled world.

    PYTHONPATH=src python docs/experiments/settling/geometry.py thick curvy

For each track, P robots start at random places on the line (seeds 0..P-1) and drive
``steps`` cycles with the reflex plus a hand-made steering y from the predictor rows:
the lateral centroid c_k of the darkness in row k (11, 12, 13 units ahead; + = line on the
left), y = clip(kp * c_mid + kd * (c_far - c_near), +-1.5) (a proportional look-ahead
controller with a heading term, no learning). Reports, over the last `last` steps: the
share of steps with e != 0, mean |e|, and how many robots are "settled" (moving sum of |e|
below 0.1 over the whole window). kp = kd = 0 is the reflex alone.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.stages.world.compiled_world import CompiledWorld
from sarlearn.metrics import moving_sum
from sarlearn.stages.world.start import start_poses

P, STEPS, LAST = 8, 12000, 5000


def run(track: str, kp: float, kd: float, ymax: float = 1.5) -> dict:
    cfg = RunConfig().with_overrides({"world.track": track}).world
    world = CompiledWorld(cfg, P)
    poses = np.concatenate(
        [start_poses(world.track, 1, np.random.default_rng(s)) for s in range(P)]
    )
    world.place(np.arange(P), poses)
    n_row, per = len(cfg.predictor_distances), cfg.predictors_per_row
    lat = (0.5 * (per - 1) - np.arange(per)) * cfg.predictor_spacing
    errs = np.empty((P, STEPS))
    ys = np.empty((P, STEPS))
    for t in range(STEPS):
        g = world.ground
        errs[:, t] = cfg.error_gain * (g[:, 0] - g[:, 1])
        rows = g[:, 2:].reshape(P, n_row, per)
        mass = rows.sum(axis=2) + 1e-9
        c = (rows * lat).sum(axis=2) / mass  # lateral centroid per row
        y = np.clip(kp * c[:, 1] + kd * (c[:, 2] - c[:, 0]), -ymax, ymax)
        ys[:, t] = y
        world.step(y)
    ms = moving_sum(np.abs(errs), 200)
    last = ms[:, -LAST:]
    s = np.sign(ys[:, -1000:])
    return {
        "track": track, "kp": kp, "kd": kd,
        "e_nonzero": float((errs[:, -LAST:] != 0).mean()),
        "mean_abs_e": float(np.abs(errs[:, -LAST:]).mean()),
        "settled": int((last < 0.1).all(axis=1).sum()),
        "frac_above": float((last >= 0.1).mean()),
        "flips": float((s[:, 1:] != s[:, :-1]).sum(axis=1).mean()),
        "off": bool(world.off_track.any()),
    }




def oracle(track: str, look: float, ref: float, kff: float = 1.0) -> dict:
    """Pure pursuit on the drawn centreline (an oracle: it knows the track's geometry).

    The reference point sits ``ref`` units ahead of the robot centre (10 = the reflex
    sensors' midpoint); the goal point is ``look`` units further along the centreline from
    the point nearest to it. The turn rate that pursues it is converted into network
    steering y (|y| <= 1.5, i.e. turn radius >= 20), with the reflex on as usual."""
    cfg = RunConfig().with_overrides({"world.track": track}).world
    world = CompiledWorld(cfg, P)
    poses = np.concatenate(
        [start_poses(world.track, 1, np.random.default_rng(s)) for s in range(P)]
    )
    world.place(np.arange(P), poses)
    cl = world.track.centreline
    seg = np.linalg.norm(np.diff(cl, axis=0, append=cl[:1]), axis=1)
    step_pts = max(1, int(round(look / np.median(seg))))
    errs = np.empty((P, STEPS))
    ys = np.empty((P, STEPS))
    offs = np.empty((P, STEPS))
    for t in range(STEPS):
        g = world.ground
        errs[:, t] = cfg.error_gain * (g[:, 0] - g[:, 1])
        pose = world.pose
        c, s = np.cos(pose[:, 2]), np.sin(pose[:, 2])
        rx, ry = pose[:, 0] + ref * c, pose[:, 1] + ref * s
        d2 = (cl[None, :, 0] - rx[:, None]) ** 2 + (cl[None, :, 1] - ry[:, None]) ** 2
        i = d2.argmin(axis=1)
        # signed lateral offset of the reference point (+ = line on the left)
        tan = cl[(i + 1) % len(cl)] - cl[i - 1]
        tx, ty = tan[:, 0], tan[:, 1]
        dx, dy = cl[i, 0] - rx, cl[i, 1] - ry
        offs[:, t] = (c * dy - s * dx)
        # keep direction of travel: goal ahead along the centreline in the robot's direction
        fwd = np.sign(tx * c + ty * s)
        j = (i + (fwd * step_pts).astype(int)) % len(cl)
        gx, gy = cl[j, 0] - rx, cl[j, 1] - ry
        lx = c * gx + s * gy
        ly = -s * gx + c * gy
        kappa = 2.0 * ly / (lx**2 + ly**2)
        omega = kff * cfg.speed * kappa
        u = omega * cfg.axle / 2.0
        y = np.clip(u / cfg.net_gain, -1.5, 1.5)
        ys[:, t] = y
        world.step(y)
    ms = moving_sum(np.abs(errs), 200)
    last = ms[:, -LAST:]
    sg = np.sign(ys[:, -1000:])
    return {
        "track": track, "look": look, "ref": ref,
        "e_nonzero": float((errs[:, -LAST:] != 0).mean()),
        "max_abs_offset_p99": float(np.percentile(np.abs(offs[:, -LAST:]), 99)),
        "max_abs_offset": float(np.abs(offs[:, -LAST:]).max()),
        "settled": int((last < 0.1).all(axis=1).sum()),
        "frac_above": float((last >= 0.1).mean()),
        "sat": float((np.abs(ys[:, -LAST:]) > 1.35).mean()),
        "flips": float((sg[:, 1:] != sg[:, :-1]).sum(axis=1).mean()),
    }


def oracle_point(track: str, k: float, d: float = 10.0, ymax: float = 1.5) -> dict:
    """Oracle that steers the reflex sensors' midpoint (``d`` ahead) onto the drawn
    centreline: with delta its signed offset and psi the heading error, the turn rate
    omega = (-k delta - v sin psi) / (d cos psi) makes d(delta)/dt = -k delta (exact
    input-output linearisation of the point ahead), clipped to the network's |y| <= ymax."""
    cfg = RunConfig().with_overrides({"world.track": track}).world
    world = CompiledWorld(cfg, P)
    poses = np.concatenate(
        [start_poses(world.track, 1, np.random.default_rng(s)) for s in range(P)]
    )
    world.place(np.arange(P), poses)
    cl = world.track.centreline
    errs = np.empty((P, STEPS))
    ys = np.empty((P, STEPS))
    offs = np.empty((P, STEPS))
    for t in range(STEPS):
        g = world.ground
        errs[:, t] = cfg.error_gain * (g[:, 0] - g[:, 1])
        pose = world.pose
        c, s = np.cos(pose[:, 2]), np.sin(pose[:, 2])
        rx, ry = pose[:, 0] + d * c, pose[:, 1] + d * s
        d2 = (cl[None, :, 0] - rx[:, None]) ** 2 + (cl[None, :, 1] - ry[:, None]) ** 2
        i = d2.argmin(axis=1)
        tan = cl[(i + 1) % len(cl)] - cl[i - 1]
        tan /= np.linalg.norm(tan, axis=1, keepdims=True)
        tan *= np.sign(tan[:, 0] * c + tan[:, 1] * s)[:, None]  # along the travel
        nx, ny = -tan[:, 1], tan[:, 0]
        delta = nx * (rx - cl[i, 0]) + ny * (ry - cl[i, 1])
        offs[:, t] = delta
        sin_psi = s * tan[:, 0] - c * tan[:, 1]
        cos_psi = c * tan[:, 0] + s * tan[:, 1]
        omega = (-k * delta - cfg.speed * sin_psi) / (d * np.maximum(cos_psi, 0.2))
        y = np.clip(omega * cfg.axle / 2.0 / cfg.net_gain, -ymax, ymax)
        ys[:, t] = y
        world.step(y)
    ms = moving_sum(np.abs(errs), 200)
    last = ms[:, -LAST:]
    sg = np.sign(ys[:, -1000:])
    return {
        "track": track, "k": k,
        "e_nonzero": float((errs[:, -LAST:] != 0).mean()),
        "mean_abs_e": float(np.abs(errs[:, -LAST:]).mean()),
        "offset_p99": float(np.percentile(np.abs(offs[:, -LAST:]), 99)),
        "offset_max": float(np.abs(offs[:, -LAST:]).max()),
        "settled": int((last < 0.1).all(axis=1).sum()),
        "frac_above": float((last >= 0.1).mean()),
        "sat": float((np.abs(ys[:, -LAST:]) > 1.35).mean()),
        "flips": float((sg[:, 1:] != sg[:, :-1]).sum(axis=1).mean()),
    }


if __name__ == "__main__":
    # python geometry.py [TRACK ...]: the gain grid of the hand-made controller (kp = kd = 0 is
    # the reflex alone), then the oracle at k = 1, 2, 5, 10 (6,000 steps, last 4,000).
    tracks = sys.argv[1:] or ["thick", "curvy"]
    grid = [(0.0, 0.0)] + [(kp, kd) for kp in (0.1, 0.2, 0.4, 0.8) for kd in (0.0, 0.5, 1.0, 2.0)]
    grid += [(kp, kd) for kp in (1.2, 1.6, 2.4, 3.2) for kd in (0.25, 0.5, 0.75)]
    grid += [(0.8, 0.25), (0.8, 0.75)]
    for tr in tracks:
        for kp, kd in grid:
            print(json.dumps(run(tr, kp, kd)), flush=True)
    STEPS, LAST = 6000, 4000
    for tr in tracks:
        for k in (1.0, 2.0, 5.0, 10.0):
            print(json.dumps(oracle_point(tr, k)), flush=True)
