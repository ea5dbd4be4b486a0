"""A family of generated tracks: ``random:SEED`` names, drawn from a seed, each parameter
overridable.

A generated track is a closed loop drawn with the built-in tracks' rasteriser
(:func:`~sarlearn.stages.world.raster.rasterise`) on a floor that may be textured, with optional
gaps in the line and optional distractors (dark marks, a frame along the image border, a second line
beside the loop). Every parameter is drawn from the seed by the distribution of
:data:`PARAMETERS` (docs/world.md, "Generated tracks"); any of them can be fixed in the name::

    random:17                       # everything drawn from seed 17
    random:17,width=6,frame=true    # seed 17, but a 6-unit line and a border frame

Commas separate the overrides (no ``?`` or ``&``, which a shell would interpret). An override
changes that parameter only: every other parameter is drawn from its own stream of the seed,
so ``random:17,width=6`` is seed 17's track drawn 6 units wide.

Two disjoint seed ranges are fixed: :data:`TUNING_SEEDS` to choose defaults on and
:data:`EVALUATION_SEEDS` to report on.

Each track carries a :class:`DrawnTrack` (``track.drawn``): what was actually drawn, including
the measured smallest bend radius. Whether a controller shown to be correct can follow it is
:func:`sarlearn.stages.world.feasibility.feasibility`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.errors import TrackError
from sarlearn.stages.world.curves import (
    near_far_along,
    radius_of_curvature,
    resample_closed,
    rounded_polygon,
    smooth_closed,
    star_curve,
    start_index,
)
from sarlearn.stages.world.family_parameters import (
    EVALUATION_SEEDS,
    PARAMETERS,
    PREFIX,
    SHAPES,
    TUNING_SEEDS,
    DrawnTrack,
    Parameter,
    describe_parameters,
    draw_parameters,
    half_extents,
    is_generated,
    parse_name,
    track_label,
    track_name,
)
from sarlearn.stages.world.raster import check_image_size, rasterise, slow_shading
from sarlearn.stages.world.track import Track, normalise_darkness

_SPACING = 0.5  # centreline point spacing (units)
_SMOOTH = 1.5  # Gaussian smoothing of the polygon's joints (units)
_CLEARANCE = 10.0  # parts of the loop stay width + this apart (reflex sensors 10 apart)
_MARK_CLEARANCE = 8.0  # edge of a mark to edge of the line (reflex sensors 5 off the centre)
_ATTEMPTS = 400
#: A blob whose drawn radius its arena's ellipse cannot bend to is drawn at this share of the
#: ellipse's smallest radius (b^2 / a), a little under it for the resampled curve.
_ELLIPSE_SLACK = 0.95


class GeneratedTrack(Track):
    """A :class:`Track` of the family, with what was drawn in :attr:`drawn`."""

    def __init__(self, darkness: NDArray[np.float64], drawn: DrawnTrack, centreline: NDArray):
        super().__init__(darkness, max(drawn.arena), centreline=centreline, name=drawn.name)
        self.drawn = drawn


# ---------------------------------------------------------------------- drawing the track


def generate(name: str, resolution: float = 4.0) -> GeneratedTrack:
    """The generated track ``name`` (``random:SEED[,KEY=VALUE...]``) at ``resolution`` pixels
    per unit; cached (tracks are read-only).

    Raises:
        TrackError: a malformed name, or parameters that cannot be drawn (a radius too large
            for the arena, an arena too small for the line).
    """
    seed, overrides = parse_name(name)
    canonical = track_name(seed, **overrides)
    return _generate(canonical, float(resolution))


@lru_cache(maxsize=8)  # ~20 MB each (the image and its padded copy at 4 px per unit)
def _generate(name: str, resolution: float) -> GeneratedTrack:
    seed, overrides = parse_name(name)
    p = draw_parameters(seed, overrides)
    hx, hy = half_extents(p)
    if min(hx, hy) < 2.0 * p["radius"] and min(hx, hy) < 10.0:
        raise TrackError(
            f"track {name!r}: the arena ({p['arena']:g} x {p['arena'] * p['aspect']:g}) leaves "
            f"no room for a loop inside a margin of {p['margin']:g} units"
        )
    w, h = p["arena"], p["arena"] * p["aspect"]
    check_image_size(name, w, resolution)
    try:  # "geo": the loop's own stream
        line = _loop(name, p, np.random.default_rng([seed, 0x67656F]))
    except TrackError:
        if p["shape"] != "blob" or "radius" in overrides:
            raise
        # A drawn radius that even the arena's ellipse bends tighter than (3 seeds in 1,000):
        # drawn again at the ellipse's own smallest radius, so that the seed is a track.
        p = {**p, "radius": _ELLIPSE_SLACK * min(hx, hy) ** 2 / max(hx, hy)}
        line = _loop(name, p, np.random.default_rng([seed, 0x67656F]))
    line = np.roll(line, -start_index(line, 40.0, 20.0), axis=0)
    length = float(np.linalg.norm(np.diff(line, axis=0, append=line[:1]), axis=1).sum())
    ink = np.ones(len(line))
    cuts = np.random.default_rng([seed, 0x676170])  # "gap"
    gaps = _cut_gaps(line, ink, p["gaps"], p["width"], cuts)
    strokes = rasterise(line, w, resolution, p["width"], height=h, ink=ink)
    extra = np.random.default_rng([seed, 0x6578])  # "ex": distractors
    marks = 0
    for _ in range(p["marks"]):
        mark = _mark(line, p, extra)
        if mark is not None:
            marks += 1
            strokes = np.maximum(strokes, _stroke(mark[0], w, h, resolution, mark[1]))
    if p["second"]:
        second = _second_line(line, p, extra)
        if second is not None:
            strokes = np.maximum(strokes, _stroke(second, w, h, resolution, p["width"]))
    if p["frame"]:
        i = p["frame_inset"] + 0.5 * p["width"]
        box = np.array([[i, i], [w - i, i], [w - i, h - i], [i, h - i]])
        strokes = np.maximum(strokes, rasterise(box, w, resolution, p["width"], height=h))
    img = _floor(strokes, p, (w, h), line, np.random.default_rng([seed, 0x666C]))  # "fl"
    drawn = DrawnTrack(
        name=name,
        seed=seed,
        shape=p["shape"],
        corners=p["corners"],
        width=p["width"],
        contrast=p["contrast"],
        texture=p["texture"],
        noise=p["noise"],
        gaps=gaps,
        radius=p["radius"],
        min_radius=float(np.abs(radius_of_curvature(line)).min()),
        arena=(w, h),
        margin=p["margin"],
        marks=marks,
        frame=p["frame"],
        frame_inset=p["frame_inset"],
        second=p["second"],
        second_gap=p["second_gap"],
        length=length,
        overrides=tuple(overrides),
    )
    return GeneratedTrack(img, drawn, line)


def _loop(name: str, p: dict[str, Any], rng: np.random.Generator) -> NDArray:
    """A closed counter-clockwise centreline ``(N, 2)`` inside the arena's margin, bends of
    radius >= ``p["radius"]``, parts far apart along it at least width + 10 apart."""
    w, h = p["arena"], p["arena"] * p["aspect"]
    hx, hy = half_extents(p)
    centre = np.array([0.5 * w, 0.5 * h])
    clearance = p["width"] + _CLEARANCE
    along = round(2.5 * clearance / _SPACING)
    for _ in range(_ATTEMPTS):
        if p["shape"] == "polygon":
            pts = _polygon(p, hx, hy, rng)
            if pts is None:
                continue
        else:
            pts = _blob(p, hx, hy, rng)
        line = resample_closed(pts + centre, _SPACING)
        inside = (np.abs(line - centre) <= [hx + 1e-9, hy + 1e-9]).all()
        if not inside or np.abs(radius_of_curvature(line)).min() < 0.97 * p["radius"]:
            continue
        if near_far_along(line, along, clearance).any():
            continue
        return line
    raise TrackError(
        f"track {name!r}: no {p['shape']} loop with bends of radius >= {p['radius']:g} fits an "
        f"arena of {w:g} x {h:g} with a margin of {p['margin']:g} (use a smaller radius, a "
        "larger arena or a smaller margin)"
    )


def _polygon(p: dict[str, Any], hx: float, hy: float, rng: np.random.Generator) -> NDArray | None:
    """A star-shaped polygon with rounded corners (the tightest exactly at the radius, each
    other one up to 2.5 times it as far as its sides allow), or None when the corners' arcs
    do not fit on its sides."""
    n = p["corners"]
    step = 2.0 * np.pi / n
    ang = rng.uniform(0, 2 * np.pi) + step * (np.arange(n) + rng.uniform(-0.3, 0.3, n))
    # Outer corners (p 0.65) near the box's edge, inner ones pulled in: the loop gets right
    # bends (kidneys, stars) as well as left ones.
    rho = np.where(rng.random(n) < 0.65, rng.uniform(0.75, 1.0, n), rng.uniform(0.3, 0.65, n))
    rho[rng.integers(n)] = 1.0  # the loop uses the space it is given
    c, s = np.cos(ang), np.sin(ang)
    reach = np.minimum(hx / np.maximum(np.abs(c), 1e-9), hy / np.maximum(np.abs(s), 1e-9))
    verts = (rho * reach)[:, None] * np.stack([c, s], axis=1)  # towards the box's edge
    d_out = np.roll(verts, -1, axis=0) - verts
    d_in = np.roll(d_out, 1, axis=0)
    side = np.linalg.norm(d_out, axis=1) - 2.0  # a little straight between two arcs
    cross = d_in[:, 0] * d_out[:, 1] - d_in[:, 1] * d_out[:, 0]
    turn = np.abs(np.arctan2(cross, (d_in * d_out).sum(axis=1)))
    if turn.max() > np.radians(160.0):
        return None
    half = np.tan(0.5 * turn)  # an arc of radius r at a corner takes r * half of each side
    radii = np.full(n, p["radius"])
    if np.any(radii * half + np.roll(radii * half, -1) > side):
        return None
    for i in rng.permutation(n):
        # Grow corner i as far as both its sides allow, at most to 2.5 x the radius.
        room = min(side[i] - radii[(i + 1) % n] * half[(i + 1) % n],
                   side[i - 1] - radii[i - 1] * half[i - 1])  # fmt: skip
        top = min(2.5 * p["radius"], room / max(half[i], 1e-9))
        radii[i] = rng.uniform(p["radius"], max(p["radius"], top))
    radii[rng.integers(n)] = p["radius"]
    pts = rounded_polygon(verts, radii)
    # Rounded corners bound the curvature; a light smoothing rounds the arc-straight joints.
    return smooth_closed(resample_closed(pts, _SPACING), sigma=_SMOOTH, spacing=_SPACING)


def _blob(p: dict[str, Any], hx: float, hy: float, rng: np.random.Generator) -> NDArray:
    """The built-in ``random`` track's curve, stretched to the box and pulled towards an
    ellipse until its bends are gentle enough (the ellipse itself may still be too tight)."""
    t = np.linspace(0.0, 2 * np.pi, 4096, endpoint=False)
    raw = star_curve(t, rng)
    raw = raw - raw.mean(axis=0)
    raw = raw / np.abs(raw).max(axis=0) * [hx, hy]
    ellipse = np.stack([hx * np.cos(t), hy * np.sin(t)], axis=1)
    pts = raw
    for _ in range(40):
        line = resample_closed(pts, _SPACING)
        if np.abs(radius_of_curvature(line)).min() >= p["radius"]:
            return pts
        pts = ellipse + 0.8 * (pts - ellipse)
    return ellipse


def _straight_mask(line: NDArray, length: float, reach_units: float = 15.0) -> NDArray:
    """Points whose stretch ``reach_units`` either side runs nearly straight (radius > 80)."""
    straight = np.abs(radius_of_curvature(line)) > 80.0
    reach = int(np.ceil(reach_units / length * len(line)))
    clear = np.ones(len(line), dtype=bool)
    for k in range(-reach, reach + 1):
        clear &= np.roll(straight, k)
    return clear


def _cut_gaps(line: NDArray, ink: NDArray, n: int, width: float, rng: np.random.Generator) -> int:
    """Cut ``n`` gaps into ``ink`` ``(N,)`` on near-straight stretches, as the built-in
    ``photo`` track does (in a bend the reflex would drive straight on across a gap): each
    leaves 3-6 units of bare floor between the line's round ends (``width`` + 3-6 units without
    ink). Returns how many fitted."""
    if n == 0:
        return 0
    length = len(line) * _SPACING
    u = np.linspace(0.0, 1.0, len(line), endpoint=False)
    ok = _straight_mask(line, length) & (u >= 0.1)
    cut = 0
    for _ in range(n):
        if not ok.any():
            break
        start = float(rng.choice(u[ok]))
        span = (width + rng.uniform(3.0, 6.0)) / length
        gap = (u >= start) & (u < start + span)
        ink[gap] = 0.0
        # No second gap within 30 units of this one.
        near = (u >= start - 30.0 / length) & (u < start + span + 30.0 / length)
        ok &= ~near
        cut += 1
    return cut


def _mark(
    line: NDArray, p: dict[str, Any], rng: np.random.Generator
) -> tuple[NDArray, float] | None:
    """A short dark stroke ``(polyline, width)`` beside the line: 6-20 units long, clear of
    the line by 8 units edge to edge (so the reflex sensors miss it while the robot is on the
    line, the predictors may see it), inside the arena; None if 50 tries find no room."""
    w, h = p["arena"], p["arena"] * p["aspect"]
    for _ in range(50):
        width = p["width"] * rng.uniform(0.6, 1.5)
        size = rng.uniform(6.0, 20.0)
        a = rng.uniform([2.0, 2.0], [w - 2.0, h - 2.0])
        heading = rng.uniform(0, 2 * np.pi)
        b = a + size * np.array([np.cos(heading), np.sin(heading)])
        seg = np.linspace(a, b, max(2, int(size / _SPACING)))
        if not ((seg >= 2.0).all() and (seg[:, 0] <= w - 2).all() and (seg[:, 1] <= h - 2).all()):
            continue
        need = 0.5 * (p["width"] + width) + _MARK_CLEARANCE
        if _distance(seg, line).min() >= need:
            return seg, width
    return None


def _second_line(line: NDArray, p: dict[str, Any], rng: np.random.Generator) -> NDArray | None:
    """A second line of the same width along 15-35 % of the loop, ``second_gap`` units from
    it edge to edge, on a random side; the points where the offset curve would come closer to
    the loop (inside a tight bend) are dropped, the longest run that stays is kept."""
    n = len(line)
    w, h = p["arena"], p["arena"] * p["aspect"]
    offset = p["width"] + p["second_gap"]
    tangent = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    for _ in range(20):
        start = int(rng.integers(n))
        span = int(rng.uniform(0.15, 0.35) * n)
        idx = (start + np.arange(span)) % n
        side = 1.0 if rng.random() < 0.5 else -1.0
        cand = line[idx] + side * offset * normal[idx]
        ok = (_distance(cand, line) >= offset - 0.5) & (cand[:, 0] > 1.0) & (cand[:, 1] > 1.0)
        ok &= (cand[:, 0] < w - 1.0) & (cand[:, 1] < h - 1.0)
        run = _longest_run(ok)
        if run is not None and run[1] - run[0] >= 40.0 / _SPACING:
            return cand[run[0] : run[1]]
    return None


def _longest_run(ok: NDArray) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    start = None
    for i, v in enumerate(np.append(ok, False)):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if best is None or i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def _distance(points: NDArray, line: NDArray) -> NDArray:
    """``(M,)`` distance from each of ``points`` ``(M, 2)`` to the nearest point of ``line``."""
    out = np.empty(len(points))
    for lo in range(0, len(points), 256):
        d = points[lo : lo + 256, None, :] - line[None, :, :]
        out[lo : lo + 256] = np.sqrt((d**2).sum(axis=2).min(axis=1))
    return out


def _stroke(seg: NDArray, w: float, h: float, resolution: float, width: float) -> NDArray:
    """Rasterise an open polyline (drawn there and back, as the rasteriser closes its lines)."""
    return rasterise(np.concatenate([seg, seg[::-1]]), w, resolution, width, height=h)


def _floor(
    strokes: NDArray,
    p: dict[str, Any],
    size: tuple[float, float],
    line: NDArray,
    rng: np.random.Generator,
) -> NDArray:
    """The floor under the strokes (coverage in [0, 1]), as the sensors read it.

    A clean floor (no texture, no noise) is 0 and the strokes are ``contrast`` dark. Otherwise
    the raw picture is a floor of 0.12 with slow shading (+-0.06 x texture over ~40 units),
    grain (sd ``noise``) and up to twelve soft blotches (texture x 12 of them, +0.25-0.5 x
    texture dark, radius 3-10, centred more than r + 12 units from the line), with the strokes
    fully dark on top; it then gets the floor normalisation every image file gets
    (:func:`~sarlearn.stages.world.track.normalise_darkness`), and is scaled by ``contrast``.
    """
    texture, noise, contrast = p["texture"], p["noise"], p["contrast"]
    if texture == 0 and noise == 0:
        return strokes * contrast
    width, height = size
    shading, yy, xx = slow_shading(strokes.shape, size, rng)
    floor = 0.12 + texture * 0.06 * shading
    for _ in range(round(12 * texture)):
        r = rng.uniform(3.0, 10.0)
        for _ in range(100):
            c = rng.uniform([0.0, 0.0], [width, height])
            if np.linalg.norm(line - c, axis=1).min() > r + 12.0:
                break
        else:
            continue
        strength = texture * rng.uniform(0.25, 0.5)
        floor += strength * np.exp(-((xx - c[0]) ** 2 + (yy - c[1]) ** 2) / r**2)
    raw = np.maximum(floor, strokes) + rng.normal(0.0, 1.0, floor.shape) * noise
    return normalise_darkness(np.clip(raw, 0.0, 1.0)) * contrast


__all__ = [
    "EVALUATION_SEEDS",
    "PARAMETERS",
    "PREFIX",
    "SHAPES",
    "TUNING_SEEDS",
    "DrawnTrack",
    "GeneratedTrack",
    "Parameter",
    "describe_parameters",
    "draw_parameters",
    "generate",
    "is_generated",
    "parse_name",
    "track_label",
    "track_name",
]
