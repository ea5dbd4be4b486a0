"""Compiled sensors stage: the bilinear lookup and the ground sensors of one agent.

Numpy twin: :meth:`sarlearn.stages.world.track.Track.lookup` (the same padded table,
:attr:`~sarlearn.stages.world.track.Track.lookup_table`) and
:meth:`sarlearn.stages.world.sensors.GroundSensors.read`."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sarlearn.stages.world.sensors import off_track_formula, sensor_xy_formula

sensor_xy = njit(cache=True, inline="always")(sensor_xy_formula)
off_track = njit(cache=True, inline="always")(off_track_formula)


@njit(cache=True, inline="always")
def lookup(img, stride, inv, height, umax, vmax, x, y):
    """Bilinear darkness at (x, y): exactly ``Track.lookup`` (padded image, clamped)."""
    u = x * inv + 0.5
    v = (height - y) * inv + 0.5
    u = min(max(u, 0.0), umax)
    v = min(max(v, 0.0), vmax)
    # Unsigned indices (u, v >= 0 here): numba then adds no negative-index wrap-around to
    # the four reads. Every offset is uint64: mixed with int64 numba would compute in float64.
    one = np.uint64(1)
    j = np.uint64(u)
    i = np.uint64(v)
    fu = u - j
    fv = v - i
    row = np.uint64(stride)
    k = i * row + j
    top = img[k]
    top += (img[k + one] - top) * fu
    k += row
    bottom = img[k]
    bottom += (img[k + one] - bottom) * fu
    top += (bottom - top) * fv
    return top


@njit(cache=True, inline="always")
def sense(p, pose, ground, lost, img, sx, sy, world_par):
    """Read every ground sensor at the current pose; update the lost-line counter."""
    stride = world_par.stride
    inv, height, umax, vmax = world_par.inv, world_par.height, world_par.umax, world_par.vmax
    px, py, th = pose[p, 0], pose[p, 1], pose[p, 2]
    c = math.cos(th)
    s = math.sin(th)
    seen = False
    line_seen = world_par.line_seen
    for k in range(sx.shape[0]):
        xw, yw = sensor_xy(px, py, c, s, sx[k], sy[k])
        g = lookup(img, stride, inv, height, umax, vmax, xw, yw)
        ground[p, k] = g
        if g > line_seen:
            seen = True
    if seen:
        lost[p] = 0
    else:
        lost[p] += 1
