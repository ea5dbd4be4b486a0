"""Drawing a centreline into a darkness image: anti-aliased lines and a photo-like floor."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import TrackError
from sarlearn.stages.world.curves import radius_of_curvature, resample_closed_with
from sarlearn.stages.world.track import normalise_darkness


def rasterise(
    line: ArrayLike,
    arena: float,
    resolution: float,
    line_width: float | ArrayLike,
    height: float | None = None,
    ink: ArrayLike | None = None,
) -> NDArray:
    """Draw a closed polyline as an anti-aliased dark line on a light floor.

    Args:
        line: ``(N, 2)`` closed polyline in units.
        arena: width of the arena (units); also its height unless ``height`` is given.
        resolution: pixels per unit.
        line_width: width of the line (units), or ``(N,)`` widths at the points of ``line``
            (interpolated along it).
        height: height of the arena (units) for a non-square arena.
        ink: ``(N,)`` darkness of the line at its points (default 1), interpolated along it.

    Returns:
        ``(m, n)`` darkness image, ``n = round(arena * resolution)``, ``m = round(height *
        n / arena)``; each pixel's darkness is the fraction of it the line covers (a one-pixel
        linear ramp at the edges) times the ink, and exactly 0 more than half a pixel away
        from the line.
    """
    n = round(arena * resolution)
    res = n / arena  # exact pixels per unit after rounding
    top = arena if height is None else float(height)
    m = n if height is None else round(top * res)
    p = np.asarray(line, dtype=np.float64)
    widths = np.broadcast_to(np.asarray(line_width, dtype=np.float64), (len(p),))
    inks = np.ones(len(p)) if ink is None else np.asarray(ink, dtype=np.float64)
    if inks.shape != (len(p),):
        raise ValueError(f"ink must be ({len(p)},) like the line, got {inks.shape}")
    # Segments at most half a pixel long, in pixel coordinates (column, row; centres at integers).
    p, widths, inks = resample_closed_with(p, 0.5 / res, widths, inks)
    px = np.stack([p[:, 0] * res - 0.5, (top - p[:, 1]) * res - 0.5], axis=1)
    a, b = px, np.roll(px, -1, axis=0)
    halves = 0.5 * widths * res
    reach = int(np.ceil(halves.max() + 1.5))
    off = np.arange(-reach, reach + 1)
    oc, orow = (g.ravel() for g in np.meshgrid(off, off))
    # Only the disk of candidates that can be dark: a pixel at offset o from a segment's
    # rounded start is at least |o| - sqrt(1/2) - (segment length) from the segment, and
    # dark only if closer than half + 0.5 (the margin covers rounding).
    seg_max = float(np.sqrt(((b - a) ** 2).sum(axis=1).max()))
    radius = halves.max() + 0.5 + np.sqrt(0.5) + seg_max + 0.01
    within = oc**2 + orow**2 < radius**2
    oc, orow = oc[within], orow[within]
    img = np.zeros(m * n)
    # Segments per batch: ~16k candidate pixels, so the temporaries stay in the CPU's cache
    # (2-3x faster than batches of 2M; the same pixels and the same maximum, any batching).
    per = max(1, 16_384 // len(oc))
    for lo in range(0, len(a), per):
        sa, sb = a[lo : lo + per], b[lo : lo + per]
        half = halves[lo : lo + per, None]
        base = np.round(sa).astype(np.intp)
        cols = base[:, :1] + oc  # (S, K) candidate pixels around each segment start
        rows = base[:, 1:] + orow
        d = sb - sa
        len2 = np.maximum((d**2).sum(axis=1, keepdims=True), 1e-12)
        rx, ry = cols - sa[:, :1], rows - sa[:, 1:]
        tt = np.clip((rx * d[:, :1] + ry * d[:, 1:]) / len2, 0.0, 1.0)
        dist = np.hypot(rx - tt * d[:, :1], ry - tt * d[:, 1:])
        dark = np.clip(half + 0.5 - dist, 0.0, 1.0) * inks[lo : lo + per, None]
        ok = (cols >= 0) & (cols < n) & (rows >= 0) & (rows < m) & (dark > 0)
        np.maximum.at(img, rows[ok] * n + cols[ok], dark[ok])
    return img.reshape(m, n)


def photo_floor(
    line: ArrayLike,
    size: tuple[float, float],
    resolution: float,
    line_width: float,
    seed: int = 0,
) -> NDArray:
    """A photo-like floor image ``(m, n)``: what a camera above a taped line on a worn floor
    gives, after the normalisation every image file gets (:meth:`Track.from_image`).

    The raw picture (darkness): a floor of 0.12 with slow shading (+-0.06 over ~40 units),
    pixel grain (sd 0.03) and a dozen soft blotches (radius r of 3-10 units, +0.25-0.5, centred
    more than r + 12 units from the line, so that they reach the reflex sensors only when the
    robot strays); the line's width varies along it between about 0.8 and 1.5 times
    ``line_width``, its ink between 0.55 and 0.95, and it has three gaps (6-9 units without ink,
    about 3-6 units of bare floor between the line's rounded ends; on near-straight stretches
    only, not in its first tenth).
    Normalising maps the floor, grain and shading to exactly 0 and leaves the blotches as
    faint patches; all of it is drawn from ``seed``.
    """
    p = np.asarray(line, dtype=np.float64)
    rng = np.random.default_rng([seed, 0x70686F746F])  # "photo"
    width, height = size
    u = np.linspace(0.0, 1.0, len(p), endpoint=False)
    widths = line_width * np.clip(1.15 + 0.35 * _periodic_noise(u, rng), 0.8, 1.5)
    ink = np.clip(0.75 + 0.2 * _periodic_noise(u, rng), 0.55, 0.95)
    length = len(p) * float(np.linalg.norm(p[1] - p[0]))
    # Gaps only where the line runs nearly straight (radius > 80 for 15 units either side):
    # in a bend the reflex alone would drive straight on across a gap and lose the line.
    straight = np.abs(radius_of_curvature(p)) > 80.0
    reach = int(np.ceil(15.0 / length * len(p)))
    clear = np.ones(len(p), dtype=bool)
    for k in range(-reach, reach + 1):
        clear &= np.roll(straight, k)
    for _ in range(3):
        start = float(rng.choice(u[clear & (u >= 0.1)]))
        gap = (u >= start) & (u < start + rng.uniform(6.0, 9.0) / length)
        ink[gap] = 0.0
    strokes = rasterise(p, width, resolution, widths, height=height, ink=ink)
    shading, yy, xx = slow_shading(strokes.shape, size, rng)
    floor = 0.12 + 0.06 * shading
    for _ in range(12):
        # Blotches stay clear of the sensors' corridor along the line: one under the reflex
        # sensors would make e != 0 on every lap, and no learner could ever settle.
        r = rng.uniform(3.0, 10.0)
        while True:
            c = rng.uniform([0.0, 0.0], [width, height])
            if np.linalg.norm(p - c, axis=1).min() > r + 12.0:
                break
        floor += rng.uniform(0.25, 0.5) * np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / r**2)
    raw = np.maximum(floor, strokes) + rng.normal(0.0, 0.03, floor.shape)
    return normalise_darkness(np.clip(raw, 0.0, 1.0))


def slow_shading(
    shape: tuple[int, int], size: tuple[float, float], rng: np.random.Generator
) -> tuple[NDArray, NDArray, NDArray]:
    """A floor's slow shading in [-1, 1] over an image ``shape`` covering ``size`` units:
    random values on a grid 40 units apart, linearly interpolated (clipped at 2 sd, halved);
    with the pixel centres' world coordinates ``yy``, ``xx`` (units, y up)."""
    m, n = shape
    width, height = size
    px = width / n  # units per pixel
    ys, xs = (np.arange(k) + 0.5 for k in (m, n))
    coarse = rng.normal(0.0, 1.0, (int(height / 40) + 2, int(width / 40) + 2))
    rows = np.array([np.interp(xs * px / 40, np.arange(coarse.shape[1]), c) for c in coarse])
    shading = np.array(
        [np.interp(ys * px / 40, np.arange(coarse.shape[0]), rows[:, j]) for j in range(n)]
    ).T
    yy, xx = np.meshgrid(height - ys * px, xs * px, indexing="ij")
    return np.clip(shading, -2, 2) / 2, yy, xx


def _periodic_noise(u: NDArray, rng: np.random.Generator, modes: int = 6) -> NDArray:
    """Smooth periodic noise in about [-1, 1] along ``u`` in [0, 1)."""
    k = np.arange(1, modes + 1)
    amp = rng.normal(0.0, 1.0, modes) / k
    phase = rng.uniform(0.0, 2 * np.pi, modes)
    wave = (amp[:, None] * np.cos(2 * np.pi * k[:, None] * u[None, :] + phase[:, None])).sum(0)
    return wave / max(1e-12, float(np.abs(wave).max()))


#: Largest generated track image, in pixels (8000 x 8000; 512 MB as float64): the image is
#: rasterised and kept in memory as float64, with a padded copy for the engines.
MAX_TRACK_PIXELS = 64_000_000


def check_image_size(name: str, arena: float, resolution: float) -> None:
    """Refuse a generated track image too small to hold a line or too large for memory."""
    from sarlearn.stages.world.track import MIN_PIXELS

    side = arena * resolution
    if side < MIN_PIXELS:
        raise TrackError(
            f"track {name!r}: arena {arena:g} units at {resolution:g} pixels per unit is "
            f"{side:.3g} pixels wide, below the minimum of {MIN_PIXELS} (raise world.arena or "
            "world.resolution)"
        )
    if side * side > MAX_TRACK_PIXELS:
        gib = side * side * 8 * 2 / 2**30  # the image and its padded copy
        raise TrackError(
            f"track {name!r}: arena {arena:g} units at {resolution:g} pixels per unit would be "
            f"a {side:,.0f} x {side:,.0f} pixel image needing about {gib:,.0f} GiB of memory; "
            f"the limit is {MAX_TRACK_PIXELS:,} pixels (resolution <= "
            f"{(MAX_TRACK_PIXELS**0.5) / arena:.3g} for this arena)"
        )
