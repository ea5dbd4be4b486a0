"""Built-in tracks and :func:`load_track`, the one way to get a track by name or by file.

Generated tracks are closed centrelines drawn as anti-aliased dark lines of a fixed width (in
units, independent of the arena) on a light floor. Their geometry is designed for a 250-unit
arena and scales with ``arena``. Each centreline starts at a good place to put the robot
(a gentle stretch, away from crossings) and runs counter-clockwise around the arena centre.

A track's :class:`TrackStyle` (:data:`STYLES`) may change that: its own size at the reference
arena (``wide`` is 350 x 200 when ``arena`` is 250: the arena parameter scales the geometry,
the longer side is then ``1.4 * arena``), its own line width (``thick``: 8 units whatever
``world.line_width``), a photo-like floor (``photo``), and its role: ``tight`` has bends
tighter than the network alone can turn, so it measures how learner and reflex cooperate and
is left out of the settling target (:data:`SETTLING_TRACKS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sarlearn.errors import TrackError
from sarlearn.stages.world.curves import (
    near_far_along,
    polar,
    radius_of_curvature,
    resample_closed,
    rounded_polygon,
    smooth_closed,
    star_curve,
    start_index,
)
from sarlearn.stages.world.raster import check_image_size, photo_floor, rasterise
from sarlearn.stages.world.track import Track

_REF = 250.0  # arena size the geometries below are designed for


def _circle(t: NDArray, rng: np.random.Generator) -> NDArray:
    return polar(t, 90.0)


def _oval(t: NDArray, rng: np.random.Generator) -> NDArray:
    # Ellipse 2 x 105 by 2 x 65: smallest radius of curvature 65^2 / 105 = 40 units.
    return np.stack([105.0 * np.cos(t), 65.0 * np.sin(t)], axis=1)


def _figure8(t: NDArray, rng: np.random.Generator) -> NDArray:
    # Lemniscate of Bernoulli: bends of radius >= 35 and branches crossing at right angles, so
    # a robot centred on its line meets the crossing line with both reflex sensors at once.
    d = 1.0 + np.sin(t) ** 2
    return np.stack([105.0 * np.cos(t) / d, 105.0 * np.sin(t) * np.cos(t) / d], axis=1)


# Curvy: straights joined by bends, drawn as a polygon with rounded corners (vertex, radius of
# the bend there) on the reference arena, counter-clockwise. Left bends of 90 degrees (radius
# 25-28), a 120-degree right-hand hairpin (radius 22) and a chicane on the left side (a right
# bend of 90 degrees between two half-left bends). Tight enough that the reflex needs large
# errors; wide enough (radius >= 22) that a controller which sees the bend coming can keep the
# line between the reflex sensors with the network's bounded steering.
CURVY_CORNERS: tuple[tuple[float, float, float], ...] = (
    (40.0, 35.0, 28.0),
    (215.0, 35.0, 28.0),
    (215.0, 215.0, 25.0),
    (160.0, 215.0, 25.0),
    (125.0, 150.0, 22.0),
    (90.0, 215.0, 25.0),
    (35.0, 215.0, 28.0),
    (35.0, 140.0, 25.0),
    (70.0, 110.0, 24.0),
    (40.0, 75.0, 25.0),
)


def _curvy(t: NDArray, rng: np.random.Generator) -> NDArray:
    corners = np.array(CURVY_CORNERS)
    pts = rounded_polygon(corners[:, :2] - 0.5 * _REF, corners[:, 2])
    return smooth_closed(resample_closed(pts, 0.5), sigma=3.0, spacing=0.5)


# Hairpin: a meander whose 180-degree turns are semicircles of radius 26 (two 90-degree corners
# 2 r apart), a left one at the top right, a right one at the bottom of the middle legs, and a
# left U-turn with a short straight at the top left; quarter bends of radius 28 at the bottom.
# Just above the radius of 20 the network's bounded steering can turn on its own.
HAIRPIN_CORNERS: tuple[tuple[float, float, float], ...] = (
    (35.0, 30.0, 28.0),
    (215.0, 30.0, 28.0),
    (215.0, 220.0, 26.0),
    (163.0, 220.0, 26.0),
    (163.0, 92.0, 26.0),
    (111.0, 92.0, 26.0),
    (111.0, 220.0, 26.0),
    (35.0, 220.0, 28.0),
)

# Tight: three 180-degree turns of radius 16-17 (semicircles, as in hairpin), left, right and
# left. The network alone turns no tighter than radius 20; to follow a half turn of radius r on
# a circle of radius 20 the robot must be 20 - r > 3.5 units off the line on both straights,
# which puts the line under a reflex sensor: no learner can keep e = 0 there on its own.
TIGHT_CORNERS: tuple[tuple[float, float, float], ...] = (
    (40.0, 35.0, 28.0),
    (210.0, 35.0, 28.0),
    (210.0, 215.0, 16.0),
    (178.0, 215.0, 16.0),
    (178.0, 110.0, 17.0),
    (144.0, 110.0, 17.0),
    (144.0, 215.0, 16.0),
    (112.0, 215.0, 16.0),
    (112.0, 135.0, 25.0),
    (40.0, 135.0, 25.0),
)

# Photo: a gentle irregular pentagon (bends of radius 30-35); the difficulty is the floor.
PHOTO_CORNERS: tuple[tuple[float, float, float], ...] = (
    (40.0, 45.0, 35.0),
    (205.0, 35.0, 32.0),
    (215.0, 150.0, 30.0),
    (150.0, 215.0, 35.0),
    (55.0, 190.0, 32.0),
)

# Wide (350 x 200 at the reference arena): a long loop with a notch in its top side.
WIDE_SIZE = (350.0, 200.0)
WIDE_CORNERS: tuple[tuple[float, float, float], ...] = (
    (40.0, 40.0, 30.0),
    (310.0, 40.0, 30.0),
    (310.0, 160.0, 28.0),
    (235.0, 160.0, 25.0),
    (175.0, 105.0, 25.0),
    (115.0, 160.0, 25.0),
    (40.0, 160.0, 30.0),
)


def _corners(spec: tuple[tuple[float, float, float], ...], size: tuple[float, float]) -> NDArray:
    corners = np.array(spec)
    pts = rounded_polygon(corners[:, :2] - 0.5 * np.asarray(size), corners[:, 2])
    return smooth_closed(resample_closed(pts, 0.5), sigma=3.0, spacing=0.5)


def _hairpin(t: NDArray, rng: np.random.Generator) -> NDArray:
    return _corners(HAIRPIN_CORNERS, (_REF, _REF))


def _tight(t: NDArray, rng: np.random.Generator) -> NDArray:
    return _corners(TIGHT_CORNERS, (_REF, _REF))


def _photo(t: NDArray, rng: np.random.Generator) -> NDArray:
    return _corners(PHOTO_CORNERS, (_REF, _REF))


def _wide(t: NDArray, rng: np.random.Generator) -> NDArray:
    return _corners(WIDE_CORNERS, WIDE_SIZE)


TRACKS: dict[str, tuple[Callable[[NDArray, np.random.Generator], NDArray], str]] = {
    "circle": (_circle, "circle of radius 90: one gentle left bend all the way"),
    "oval": (_oval, "ellipse 210 x 130: bends of radius 40, near-straights between"),
    "figure8": (_figure8, "figure-eight 210 x 74: bends of radius 35 both ways, crossing"),
    "curvy": (_curvy, "straights, sharp bends (radius 22-28) both ways, hairpin, chicane"),
    "random": (star_curve, "smooth random closed curve from the seed, bends of radius >= 25"),
    "hairpin": (_hairpin, "meander of 180-degree hairpins (radius 26) both ways"),
    "tight": (
        _tight,
        "three half turns of radius 16-17, tighter than the network alone turns (20): "
        "cooperation with the reflex, not in the settling target",
    ),
    "thick": (_curvy, "curvy drawn 8 units wide (reflex sensors 10 apart)"),
    "photo": (
        _photo,
        "photo-like textured floor; line of varying width and darkness, gaps, blotches (seed)",
    ),
    "wide": (_wide, "non-square 350 x 200 arena: long loop with a notch, bends radius >= 25"),
}
TRACK_NAMES: tuple[str, ...] = tuple(TRACKS)
DEFAULT_TRACK = "curvy"


@dataclass(frozen=True)
class TrackStyle:
    """How a built-in track departs from the plain square 3-unit line on a light floor."""

    size: tuple[float, float] = (250.0, 250.0)
    """(width, height) in units when ``arena`` is 250 (both scale with ``arena``)."""
    line_width: float | None = None
    """Fixed line width (units); None: the caller's ``line_width`` (``world.line_width``)."""
    floor: str = "plain"
    """``"plain"``: light floor; ``"photo"``: :func:`photo_floor` (from the track seed)."""
    role: str = "settling"
    """``"settling"``: part of the settling target; ``"cooperation"``: bends tighter than the
    network alone can turn, reported apart."""


#: Per-track styles (tracks not listed use the default :class:`TrackStyle`).
STYLES: dict[str, TrackStyle] = {
    "tight": TrackStyle(role="cooperation"),
    "thick": TrackStyle(line_width=8.0),
    "photo": TrackStyle(floor="photo"),
    "wide": TrackStyle(size=WIDE_SIZE),
}

#: Built-in tracks a learner must settle on (all but the cooperation tracks).
SETTLING_TRACKS: tuple[str, ...] = tuple(
    n for n in TRACK_NAMES if STYLES.get(n, TrackStyle()).role == "settling"
)
#: Tracks with bends tighter than the network alone can take (reported apart).
COOPERATION_TRACKS: tuple[str, ...] = tuple(n for n in TRACK_NAMES if n not in SETTLING_TRACKS)


def style_of(name: str) -> TrackStyle:
    """The :class:`TrackStyle` of a built-in track."""
    if name not in TRACKS:
        raise TrackError(f"unknown track {name!r}; built-in tracks: {', '.join(TRACK_NAMES)}")
    return STYLES.get(name, TrackStyle())


_RANDOM_MIN_RADIUS = 25.0  # at the reference arena size
_MARGIN = 20.0  # smallest distance from the line to the arena border, reference arena


def centreline(name: str, arena: float = _REF, seed: int = 0, spacing: float = 0.5) -> NDArray:
    """Closed centreline ``(N, 2)`` of a built-in track, points ``spacing`` units apart.

    Runs counter-clockwise (figure8: first lobe counter-clockwise), starting at a good start
    point. The first point is not repeated at the end.
    """
    if name not in TRACKS:
        raise TrackError(f"unknown track {name!r}; built-in tracks: {', '.join(TRACK_NAMES)}")
    t = np.linspace(0.0, 2 * np.pi, 4096, endpoint=False)
    rng = np.random.default_rng(seed)
    pts = _random_fitted(t, rng) if name == "random" else TRACKS[name][0](t, rng)
    scale = arena / _REF
    size = np.asarray(style_of(name).size) * scale
    pts = resample_closed(pts * scale + 0.5 * size, spacing)
    return np.roll(pts, -start_index(pts, 40.0 * scale, 20.0 * scale), axis=0)


def _random_fitted(t: NDArray, rng: np.random.Generator) -> NDArray:
    """Random curve shrunk towards a circle until it fits and its bends are gentle enough."""
    pts = star_curve(t, rng)
    circle = polar(t, 85.0)
    for _ in range(60):
        c = pts - pts.mean(axis=0)
        half = np.abs(c).max()
        c = c * min(1.0, (0.5 * _REF - _MARGIN) / half)
        if np.abs(radius_of_curvature(resample_closed(c, 0.5))).min() >= _RANDOM_MIN_RADIUS:
            return c
        pts = circle + 0.8 * (pts - circle)  # a circle of radius 85 always qualifies
    return circle


@lru_cache(maxsize=16)
def _generated(name: str, arena: float, seed: int, resolution: float, line_width: float) -> Track:
    style = style_of(name)
    line = centreline(name, arena, seed)
    width, height = (v * arena / _REF for v in style.size)
    drawn = style.line_width if style.line_width is not None else line_width
    if style.floor == "photo":
        img = photo_floor(line, (width, height), resolution, drawn, seed)
    else:
        img = rasterise(line, width, resolution, drawn, height=height)
    return Track(img, max(width, height), centreline=line, name=name)


def load_track(
    name_or_path: str | Path = DEFAULT_TRACK,
    arena: float = 250.0,
    seed: int = 0,
    resolution: float = 4.0,
    line_width: float = 3.0,
    normalise: bool = True,
) -> Track:
    """A built-in track by name, a generated one, or any image file as the floor.

    Args:
        name_or_path: one of :data:`TRACK_NAMES`, a generated track ``random:SEED`` with
            optional overrides (``random:17,width=6,frame=true``;
            :mod:`sarlearn.stages.world.family`,
            which draws its own arena and line width, so ``arena``, ``seed`` and ``line_width``
            are ignored), or the path of a PNG/JPEG image (dark line on a light floor; the
            image spans the arena).
        arena: arena side in units (for images: the image's longer side); generated tracks
            scale with it (``wide``: 1.4 x arena by 0.8 x arena).
        seed: seed of the ``random`` track's curve and of the ``photo`` floor (ignored by the
            others).
        resolution: pixels per unit of generated tracks.
        line_width: line width of generated tracks (units) that have none of their own
            (``thick`` is 8 units wide).
        normalise: for images, stretch floor -> 0 and darkest -> 1 (see :meth:`Track.from_image`).

    Raises:
        TrackError: unknown name / missing, unreadable, empty or wrong-format image.
    """
    key = str(name_or_path)
    if key.startswith("random:"):
        from sarlearn.stages.world.family import generate  # the family draws with this module

        if not (math.isfinite(resolution) and resolution > 0):
            raise TrackError(f"track {key!r}: resolution must be finite and > 0, got {resolution}")
        return generate(key, resolution)
    if not all(math.isfinite(v) and v > 0 for v in (arena, resolution, arena * resolution)):
        raise TrackError(
            f"track {key!r}: arena and resolution must be finite and > 0, got {arena}, {resolution}"
        )
    if key in TRACKS:
        if not (resolution > 0 and line_width > 0 and arena > 0):
            raise TrackError(
                f"track {key!r}: arena, resolution and line_width must be > 0, got "
                f"{arena}, {resolution}, {line_width}"
            )
        check_image_size(key, arena, resolution)
        if line_width > arena / 8:
            raise TrackError(
                f"track {key!r}: line_width {line_width:g} is too wide for an arena of "
                f"{arena:g} units (at most arena / 8 = {arena / 8:g}; the reflex sensors are "
                "10 units apart)"
            )
        # Generated tracks are read-only, so one cached copy serves every caller.
        return _generated(key, float(arena), int(seed), float(resolution), float(line_width))
    path = Path(name_or_path)
    if not path.exists() and not path.suffix and len(path.parts) == 1:
        raise TrackError(
            f"unknown track {key!r}: not a built-in track ({', '.join(TRACK_NAMES)}), "
            f"not a generated one ('random:SEED') and no such image file"
        )
    return Track.from_image(path, arena, normalise=normalise, resolution=resolution)


def describe(name: str) -> str:
    """One-line description of a built-in track."""
    return TRACKS[name][1]


__all__ = [
    "COOPERATION_TRACKS",
    "DEFAULT_TRACK",
    "SETTLING_TRACKS",
    "STYLES",
    "TRACKS",
    "TRACK_NAMES",
    "TrackStyle",
    "centreline",
    "describe",
    "load_track",
    "near_far_along",
    "star_curve",
    "start_index",
    "style_of",
]
