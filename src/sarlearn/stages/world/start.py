"""Automatic start pose: on the line, centred on it, heading along it.

Generated tracks know their centreline and start at its first point (or, given a random
generator, at a random point along it). For any other image the
line is found from its dark pixels: around candidate dark points the principal axes of the
nearby dark pixels (a PCA, i.e. the structure tensor of the line) give the local direction and
how line-like the neighbourhood is; the straightest stretch wins, the point is moved onto the
middle of the line, and the heading is chosen counter-clockwise around the drawing (flipped if
the line does not continue that way).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from sarlearn.errors import TrackError
from sarlearn.stages.world.track import DARK, Track

#: Radius (units) of the neighbourhood whose dark pixels define the local line.
NEIGHBOURHOOD = 8.0
#: Keep the start this far (units) from the arena border, so the sensors ahead are inside.
BORDER = 15.0

_MAX_CANDIDATES = 400
_MAX_PIXELS = 20000


def start_pose(track: Track, rng: np.random.Generator | None = None) -> NDArray[np.float64]:
    """The automatic start pose ``(3,)``: x, y, heading (radians).

    Without ``rng`` the start is deterministic; with it, a random place on the line (so that
    seeds differ even where nothing else in a run is random, e.g. a zero-initialised shallow
    network).

    Raises:
        TrackError: if the image has no line-like dark region to start on.
    """
    return start_poses(track, 1, rng)[0]


def start_poses(
    track: Track, n: int, rng: np.random.Generator | None = None
) -> NDArray[np.float64]:
    """``n`` start poses ``(n, 3)`` as :func:`start_pose` draws them one after the other; an
    image's line is analysed once for all of them."""
    if track.centreline is not None:
        return np.stack([centreline_start(track.centreline, rng) for _ in range(n)])
    return image_starts(track, n, rng=rng)


def centreline_start(
    line: NDArray[np.float64], rng: np.random.Generator | None = None
) -> NDArray[np.float64]:
    """Start on a closed centreline ``(N, 2)`` heading along it -> ``(3,)``: at its first
    point, or at a random one if ``rng`` is given."""
    i = 0 if rng is None else int(rng.integers(len(line)))
    tangent = line[(i + 1) % len(line)] - line[i - 1]
    return np.array([line[i, 0], line[i, 1], np.arctan2(tangent[1], tangent[0])])


def image_start(
    track: Track, radius: float = NEIGHBOURHOOD, rng: np.random.Generator | None = None
) -> NDArray[np.float64]:
    """Find a start pose ``(3,)`` from the dark pixels of a track image alone: the straightest
    stretch, or with ``rng`` a random one of the nearly straightest stretches."""
    return image_starts(track, 1, radius, rng)[0]


def image_starts(
    track: Track,
    n: int,
    radius: float = NEIGHBOURHOOD,
    rng: np.random.Generator | None = None,
) -> NDArray[np.float64]:
    """``n`` start poses ``(n, 3)`` as :func:`image_start` finds them (one draw each)."""
    pts, weight = _dark_points(track)
    if len(pts) == 0:
        raise TrackError(f"track {track.name}: no dark pixels to start on")
    lo = np.array([BORDER, BORDER])
    hi = np.array([track.width - BORDER, track.height - BORDER])
    usable = np.all((pts >= lo) & (pts <= hi), axis=1)
    if not usable.any():
        usable[:] = True  # a line hugging the border: better a start near it than none
    cand = pts[usable][:: max(1, usable.sum() // _MAX_CANDIDATES)]
    mean, _, _, count = _local_pca(cand, pts, weight, radius)
    # Straightness over twice the radius also sees crossings and nearby bends; a line through
    # the disc covers about 2 r x width, so far fewer dark pixels means a speck, not the line.
    _, _, straight, _ = _local_pca(cand, pts, weight, 2.0 * radius)
    score = np.where(count >= 0.25 * count.max(), straight, -np.inf)
    best = int(np.argmax(score))
    good = np.flatnonzero(score >= score[best] - 0.05)
    picks = [best if rng is None else int(rng.choice(good)) for _ in range(n)]
    return np.stack([_pose_near(track, mean[i], cand[i], pts, weight, radius) for i in picks])


def _pose_near(
    track: Track, centre: NDArray, dark_point: NDArray, pts: NDArray, weight: NDArray, radius: float
) -> NDArray[np.float64]:
    """The pose on the line through the disc around ``centre``, heading along it."""
    # Recentre on the line: the mean of a straight stretch through the disc lies on its middle.
    p = centre
    for _ in range(2):
        m, a, _, _ = _local_pca(p[None], pts, weight, radius)
        p, direction = m[0], a[0]
    if track.darkness(p) < DARK:  # e.g. two lines through the disc: stay on the dark point
        p = dark_point
    direction = _orient(track, p, direction, pts, weight)
    return np.array([p[0], p[1], np.arctan2(direction[1], direction[0])])


def _dark_points(track: Track) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """World positions ``(M, 2)`` and darkness ``(M,)`` of the line's pixels (subsampled)."""
    img = track.image
    # Work at no finer than 0.5 units per pixel: enough for a line a few units wide.
    f = max(1, int(0.5 / track.scale))
    if f > 1:
        h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
        img = img[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))
    rows, cols = np.nonzero(img >= DARK)
    step = max(1, len(rows) // _MAX_PIXELS)
    rows, cols = rows[::step], cols[::step]
    s = track.scale * f
    pts = np.stack([(cols + 0.5) * s, track.height - (rows + 0.5) * s], axis=1)
    return pts, img[rows, cols]


def _local_pca(
    centres: NDArray, pts: NDArray, weight: NDArray, radius: float
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    """Weighted PCA of the dark points within ``radius`` of each centre ``(C, 2)``.

    Returns means ``(C, 2)``, main axes ``(C, 2)``, straightness ``1 - l2/l1`` ``(C,)`` and
    total weight ``(C,)``.
    """
    parts = [
        _pca_chunk(centres[i : i + 32], pts, weight, radius) for i in range(0, len(centres), 32)
    ]
    mean, axis, straight, total = (np.concatenate(x) for x in zip(*parts, strict=True))
    return mean, axis, straight, total


def _pca_chunk(
    centres: NDArray, pts: NDArray, weight: NDArray, radius: float
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    d2 = ((centres[:, None, :] - pts[None, :, :]) ** 2).sum(axis=2)
    w = np.where(d2 <= radius * radius, weight[None, :], 0.0)
    total = w.sum(axis=1)
    n = np.maximum(total, 1e-12)
    mean = (w @ pts) / n[:, None]
    dx = pts[None, :, 0] - mean[:, 0:1]
    dy = pts[None, :, 1] - mean[:, 1:2]
    sxx, syy, sxy = ((w * dx * dx).sum(1) / n, (w * dy * dy).sum(1) / n, (w * dx * dy).sum(1) / n)
    # Eigen-decomposition of the 2x2 covariance in closed form.
    half_tr = 0.5 * (sxx + syy)
    disc = np.sqrt(np.maximum(0.25 * (sxx - syy) ** 2 + sxy**2, 0.0))
    l1, l2 = half_tr + disc, half_tr - disc
    angle = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)
    axis = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    straight = 1.0 - l2 / np.maximum(l1, 1e-12)
    return mean, axis, straight, total


def _orient(track: Track, p: NDArray, direction: NDArray, pts: NDArray, weight: NDArray) -> NDArray:
    """Pick the sign of ``direction``: counter-clockwise around the drawing, unless the line
    does not continue that way."""
    centroid = (weight @ pts) / weight.sum()
    r = p - centroid
    if r[0] * direction[1] - r[1] * direction[0] < 0:
        direction = -direction
    if _ahead(track, p, direction) < _ahead(track, p, -direction):
        direction = -direction
    return direction


def _ahead(track: Track, p: NDArray, direction: NDArray) -> float:
    """How much line lies 5-15 units ahead along ``direction`` (within +-3 units across)."""
    normal = np.array([-direction[1], direction[0]])
    s = np.linspace(5.0, 15.0, 11)
    lat = np.linspace(-3.0, 3.0, 7)
    q = p + s[:, None, None] * direction + lat[None, :, None] * normal
    return float(track.darkness(q).max(axis=1).mean())


__all__ = [
    "BORDER",
    "NEIGHBOURHOOD",
    "centreline_start",
    "image_start",
    "image_starts",
    "start_pose",
    "start_poses",
]
