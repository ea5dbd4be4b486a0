"""Closed curves as point arrays: rounded polygons, smoothing, even resampling, curvature."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def rounded_polygon(vertices: ArrayLike, radii: ArrayLike, step: float = 0.25) -> NDArray:
    """Closed polygon ``(k, 2)`` with each corner replaced by a tangent arc of its radius ``(k,)``.

    Returns a polyline ``(N, 2)`` (arcs sampled about ``step`` units apart; straights implicit).
    """
    v = np.asarray(vertices, dtype=np.float64)
    r = np.broadcast_to(np.asarray(radii, dtype=np.float64), (len(v),))
    out = []
    for i in range(len(v)):
        d_in = v[i] - v[i - 1]
        d_out = v[(i + 1) % len(v)] - v[i]
        d_in, d_out = d_in / np.linalg.norm(d_in), d_out / np.linalg.norm(d_out)
        turn = np.arctan2(d_in[0] * d_out[1] - d_in[1] * d_out[0], d_in @ d_out)
        tangent = r[i] * np.tan(0.5 * abs(turn))
        start = v[i] - tangent * d_in
        normal = np.array([-d_in[1], d_in[0]]) * np.sign(turn)  # towards the arc's centre
        centre = start + r[i] * normal
        a0 = np.arctan2(*(start - centre)[::-1])
        m = max(2, int(np.ceil(abs(turn) * r[i] / step)))
        ang = a0 + np.linspace(0.0, turn, m)
        out.append(centre + r[i] * np.stack([np.cos(ang), np.sin(ang)], axis=1))
    return np.concatenate(out)


def smooth_closed(points: ArrayLike, sigma: float, spacing: float) -> NDArray:
    """Gaussian smoothing along an evenly spaced closed polyline (``sigma`` in units)."""
    p = np.asarray(points, dtype=np.float64)
    half = int(np.ceil(3 * sigma / spacing))
    k = np.exp(-0.5 * (np.arange(-half, half + 1) * spacing / sigma) ** 2)
    k /= k.sum()
    wrapped = np.concatenate([p[-half:], p, p[:half]])
    return np.stack([np.convolve(wrapped[:, j], k, mode="valid") for j in range(2)], axis=1)


def resample_closed(points: ArrayLike, spacing: float) -> NDArray:
    """Resample a closed polyline ``(N, 2)`` to points evenly ``~spacing`` apart along it."""
    p = np.asarray(points, dtype=np.float64)
    seg = np.linalg.norm(np.diff(np.vstack([p, p[:1]]), axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(3, round(s[-1] / spacing))
    q = np.linspace(0.0, s[-1], n, endpoint=False)
    closed = np.vstack([p, p[:1]])
    return np.stack([np.interp(q, s, closed[:, 0]), np.interp(q, s, closed[:, 1])], axis=1)


def radius_of_curvature(points: ArrayLike) -> NDArray:
    """Radius of the circle through each point and its two neighbours: ``(N, 2) -> (N,)``.

    Positive for left (counter-clockwise) bends, negative for right bends, inf when straight.
    """
    p = np.asarray(points, dtype=np.float64)
    a, b = np.roll(p, 1, axis=0) - p, np.roll(p, -1, axis=0) - p
    c = b - a
    cross = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
    prod = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) * np.linalg.norm(c, axis=1)
    with np.errstate(divide="ignore"):
        return np.where(cross == 0, np.inf, -prod / (2.0 * cross))


def resample_closed_with(points: NDArray, spacing: float, *values: NDArray) -> tuple[NDArray, ...]:
    """:func:`resample_closed` plus per-point ``values`` ``(N,)`` interpolated along the line."""
    closed = np.vstack([points, points[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    out = resample_closed(points, spacing)
    q = np.linspace(0.0, s[-1], len(out), endpoint=False)
    return (out, *(np.interp(q, s, np.append(v, v[0])) for v in values))


def star_curve(t: NDArray, rng: np.random.Generator) -> NDArray:
    """A random star-shaped closed curve around 0 at angles ``t`` (radius about 85: the
    ``random`` track in reference-arena units, before fitting)."""
    # Star-shaped curve r(t) = R (1 + sum_k a_k cos(k t + phi_k)), k = 2..6; r > 0 keeps it simple.
    ks = np.arange(2, 7)
    amp = rng.normal(0.0, 0.25, ks.size) / ks**0.7
    phase = rng.uniform(0.0, 2 * np.pi, ks.size)
    r = 1.0 + (amp[:, None] * np.cos(ks[:, None] * t[None, :] + phase[:, None])).sum(axis=0)
    return polar(t, 85.0 * r)


def polar(t: NDArray, r: ArrayLike) -> NDArray:
    """Points at angles ``t`` and radii ``r``: ``(N,) -> (N, 2)``."""
    r = np.broadcast_to(np.asarray(r, dtype=np.float64), t.shape)
    return np.stack([r * np.cos(t), r * np.sin(t)], axis=1)


def start_index(line: NDArray, ahead: float, clearance: float) -> int:
    """Index of the point whose next ``ahead`` units bend least and pass no other part of the
    line (a crossing) closer than ``clearance``."""
    n = len(line)
    step = np.linalg.norm(line[1] - line[0])
    w = max(1, round(ahead / step))
    bend = np.abs(1.0 / radius_of_curvature(line))
    csum = np.concatenate([[0.0], np.cumsum(np.concatenate([bend, bend[:w]]))])
    ahead_bend = csum[w : w + n] - csum[:n]  # sum over points i .. i + w - 1
    near = near_far_along(line, 2 * w, clearance)
    crossing_ahead = np.zeros(n, dtype=bool)
    for k in range(w):
        crossing_ahead |= np.roll(near, -k)
    ahead_bend[crossing_ahead] = np.inf
    return int(np.argmin(ahead_bend)) if np.isfinite(ahead_bend).any() else 0


def near_far_along(line: NDArray, gap: int, clearance: float) -> NDArray:
    """For each point of the closed polyline ``line`` ``(N, 2)``: is a point more than ``gap``
    indices away from it along the line (either way round) closer than ``clearance``?

    The distances are the same numbers as ``np.linalg.norm(line[i] - line[j])`` over all
    pairs, but only pairs in the same or adjacent cells of a grid of side ``clearance`` are
    computed (a pair closer than ``clearance`` is never two cells apart), so this costs about
    N times the points per cell rather than N squared.
    """
    n = len(line)
    near = np.zeros(n, dtype=bool)
    if n == 0 or not clearance > 0:
        return near  # no distance is below 0
    cells = np.floor(line / clearance).astype(np.int64)
    cells -= cells.min(axis=0) - 1  # >= 1, so a neighbouring cell's index stays >= 0
    height = int(cells[:, 1].max()) + 2
    key = cells[:, 0] * height + cells[:, 1]  # neighbours (dx, dy): key + dx * height + dy
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    points = np.arange(n)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            want = key + dx * height + dy
            lo = np.searchsorted(sorted_key, want, side="left")
            count = np.searchsorted(sorted_key, want, side="right") - lo
            total = int(count.sum())
            if total == 0:
                continue
            i = np.repeat(points, count)
            first = np.cumsum(count) - count  # where each point's candidates start
            j = order[np.repeat(lo - first, count) + np.arange(total)]
            along = np.abs(i - j)
            far = np.minimum(along, n - along) > gap
            i, j = i[far], j[far]
            hit = np.linalg.norm(line[i] - line[j], axis=1) < clearance
            near[i[hit]] = True
    return near
