"""A family of generated tracks: ``random:SEED`` names, drawn from a seed, each parameter
overridable.

A generated track is a closed loop drawn with the built-in tracks' rasteriser
(:func:`~sarlearn.world.tracks.rasterise`) on a floor that may be textured, with optional gaps in
the line and optional distractors (dark marks, a frame along the image border, a second line
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
:func:`sarlearn.world.feasibility.feasibility`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.errors import TrackError
from sarlearn.world.track import Track
from sarlearn.world.tracks import (
    check_image_size,
    near_far_along,
    normalise_darkness,
    radius_of_curvature,
    rasterise,
    resample_closed,
    rounded_polygon,
    smooth_closed,
    star_curve,
    start_index,
)

#: Prefix of a generated track's name.
PREFIX = "random:"

#: Seeds to choose defaults and tune on (0 .. 9,999).
TUNING_SEEDS = range(0, 10_000)
#: Seeds to report on, never used for tuning (1,000,000 .. 1,009,999).
EVALUATION_SEEDS = range(1_000_000, 1_010_000)

SHAPES = ("polygon", "blob")

_SPACING = 0.5  # centreline point spacing (units)
_SMOOTH = 1.5  # Gaussian smoothing of the polygon's joints (units)
_CLEARANCE = 10.0  # parts of the loop stay width + this apart (reflex sensors 10 apart)
_MARK_CLEARANCE = 8.0  # edge of a mark to edge of the line (reflex sensors 5 off the centre)
_ATTEMPTS = 400


@dataclass(frozen=True)
class Parameter:
    """One parameter of the family: its type, the range an override may take, and how the
    generator draws it (``draw``, a one-line description used by the docs and ``tracks``)."""

    kind: type
    low: float | None
    high: float | None
    draw: str
    choices: tuple[str, ...] = ()


#: The family's parameters, in drawing order (an override replaces the drawn value).
PARAMETERS: dict[str, Parameter] = {
    "shape": Parameter(str, None, None, "polygon (p 0.7) or blob (p 0.3)", SHAPES),
    "corners": Parameter(int, 3, 12, "polygon corners: integer 4-8, uniform"),
    "width": Parameter(float, 0.5, 9.5, "line width (units): uniform 1.5-9"),
    "contrast": Parameter(
        float, 0.15, 1.0, "darkness of the line as the sensors read it: uniform 0.35-1"
    ),
    "texture": Parameter(
        float, 0.0, 1.0, "floor texture strength (shading, blotches): 0 (p 0.5), else U 0-1"
    ),
    "noise": Parameter(
        float, 0.0, 0.1, "floor grain (sd, before normalising): 0 (p 0.5), else U 0-0.05"
    ),
    "gaps": Parameter(int, 0, 8, "gaps in the line (on straight stretches): 0 (p 0.6), else 1-4"),
    "radius": Parameter(
        float, 6.0, 400.0, "smallest bend radius (units): log-uniform 16-60, capped to fit"
    ),
    "arena": Parameter(float, 80.0, 1000.0, "arena width (units): uniform 200-320"),
    "aspect": Parameter(float, 0.3, 1.0, "arena height / width: uniform 0.6-1"),
    "margin": Parameter(float, 5.0, 100.0, "loop's distance from the border: uniform 15-30"),
    "marks": Parameter(int, 0, 30, "dark marks beside the line: 0 (p 0.6), else 1-6"),
    "frame": Parameter(bool, None, None, "dark frame along the image border: p 0.15"),
    "frame_inset": Parameter(float, 0.0, 50.0, "frame's distance from the border: uniform 2-8"),
    "second": Parameter(bool, None, None, "a second line beside part of the loop: p 0.15"),
    "second_gap": Parameter(
        float, 2.0, 60.0, "second line's edge-to-edge gap to the loop: uniform 6-16"
    ),
}


@dataclass(frozen=True)
class DrawnTrack:
    """What a generated track is made of: the parameters used (drawn or overridden) and what
    came out of drawing them (the measured bend radius, the gaps and marks actually placed)."""

    name: str
    """The canonical name, ``random:SEED`` plus the overrides given."""
    seed: int
    shape: str
    corners: int
    width: float
    """Line width (units)."""
    contrast: float
    """Darkness of the line (0-1) as the sensors read it, against a floor of 0."""
    texture: float
    noise: float
    gaps: int
    """Gaps actually cut into the line."""
    radius: float
    """Requested smallest bend radius (units), after the cap that makes it fit the arena."""
    min_radius: float
    """Smallest bend radius of the drawn centreline (units), measured."""
    arena: tuple[float, float]
    """(width, height) of the arena (units)."""
    margin: float
    marks: int
    """Dark marks actually placed."""
    frame: bool
    frame_inset: float
    second: bool
    second_gap: float
    length: float
    """Length of the loop (units)."""
    overrides: tuple[str, ...]
    """Parameters fixed in the name rather than drawn."""

    @property
    def distractors(self) -> bool:
        """Whether anything dark other than the loop is drawn (marks, frame, second line)."""
        return self.marks > 0 or self.frame or self.second

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields (plus ``distractors``)."""
        out = asdict(self)
        out["arena"] = list(self.arena)
        out["overrides"] = list(self.overrides)
        out["distractors"] = self.distractors
        return out


class GeneratedTrack(Track):
    """A :class:`Track` of the family, with what was drawn in :attr:`drawn`."""

    def __init__(self, darkness: NDArray[np.float64], drawn: DrawnTrack, centreline: NDArray):
        super().__init__(darkness, max(drawn.arena), centreline=centreline, name=drawn.name)
        self.drawn = drawn


def is_generated(name: object) -> bool:
    """Whether ``name`` names a generated track (``random:...``)."""
    return isinstance(name, str) and name.startswith(PREFIX)


def parse_name(name: str) -> tuple[int, dict[str, Any]]:
    """``"random:17,width=6,frame=true"`` -> ``(17, {"width": 6.0, "frame": True})``.

    Raises:
        TrackError: naming the bad part (no seed, a negative seed, an unknown key, a value of
            the wrong type or out of its range).
    """
    if not is_generated(name):
        raise TrackError(f"track {name!r}: a generated track's name starts with {PREFIX!r}")
    body = name[len(PREFIX) :].strip()
    parts = [p.strip() for p in body.split(",")]
    seed_text = parts[0]
    try:
        seed = int(seed_text)
    except ValueError:
        raise TrackError(
            f"track {name!r}: the seed must be an integer, e.g. 'random:17' or "
            f"'random:17,width=6' (got {seed_text!r})"
        ) from None
    if seed < 0:
        raise TrackError(f"track {name!r}: the seed must be >= 0, got {seed}")
    overrides: dict[str, Any] = {}
    for part in parts[1:]:
        key, eq, text = (s.strip() for s in part.partition("="))
        if not eq or not key or not text:
            raise TrackError(f"track {name!r}: {part!r} is not KEY=VALUE")
        if key not in PARAMETERS:
            raise TrackError(
                f"track {name!r}: unknown parameter {key!r}; generated tracks take "
                f"{', '.join(PARAMETERS)}"
            )
        if key in overrides:
            raise TrackError(f"track {name!r}: {key!r} is given twice")
        overrides[key] = _value(name, key, text)
    return seed, overrides


def _value(name: str, key: str, text: str) -> Any:
    p = PARAMETERS[key]
    if p.kind is bool:
        low = text.lower()
        if low in ("true", "yes", "on", "1"):
            return True
        if low in ("false", "no", "off", "0"):
            return False
        raise TrackError(f"track {name!r}: {key} must be true or false, got {text!r}")
    if p.kind is str:
        if text not in p.choices:
            raise TrackError(f"track {name!r}: {key} must be one of {', '.join(p.choices)}")
        return text
    try:
        value = p.kind(text)
    except ValueError:
        kind = "an integer" if p.kind is int else "a number"
        raise TrackError(f"track {name!r}: {key} must be {kind}, got {text!r}") from None
    if not math.isfinite(value) or not (p.low <= value <= p.high):  # type: ignore[operator]
        raise TrackError(f"track {name!r}: {key} = {text} is out of range [{p.low:g}, {p.high:g}]")
    return value


def track_name(seed: int, **overrides: Any) -> str:
    """The name of seed ``seed``'s track with ``overrides``: ``track_name(17, width=6)`` ->
    ``"random:17,width=6"`` (checked)."""
    parts = [f"{PREFIX}{int(seed)}"]
    for key, value in overrides.items():
        text = (
            str(value).lower()
            if isinstance(value, bool)
            else f"{value:g}"
            if isinstance(value, float)
            else str(value)
        )
        parts.append(f"{key}={text}")
    name = ",".join(parts)
    parse_name(name)
    return name


def track_label(name: str) -> str:
    """A file-name-safe label: ``"random:17,width=6"`` -> ``"random17-width6"``."""
    seed, overrides = parse_name(name)
    bits = [f"random{seed}"] + [f"{k}{_short(v)}" for k, v in overrides.items()]
    return "-".join(bits)


def _short(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return f"{value:g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------- drawing the parameters


def draw_parameters(seed: int, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The parameters of seed ``seed``'s track: each drawn from its own stream of the seed (so
    an override changes nothing else), then ``overrides`` applied, then, with a frame, the
    margin raised to keep the loop 3 units clear of it, then the bend radius capped so that
    the loop fits its arena."""
    overrides = overrides or {}

    def rng(i: int) -> np.random.Generator:
        return np.random.default_rng([seed, 0x7472, i])  # "tr"

    def maybe(i: int, p: float) -> bool:
        return bool(rng(i).random() < p)

    drawn: dict[str, Any] = {
        "shape": "polygon" if rng(0).random() < 0.7 else "blob",
        "corners": int(rng(1).integers(4, 9)),
        "width": float(rng(2).uniform(1.5, 9.0)),
        "contrast": float(rng(3).uniform(0.35, 1.0)),
        "texture": 0.0 if maybe(4, 0.5) else float(rng(40).uniform(0.0, 1.0)),
        "noise": 0.0 if maybe(5, 0.5) else float(rng(50).uniform(0.0, 0.05)),
        "gaps": 0 if maybe(6, 0.6) else int(rng(60).integers(1, 5)),
        "radius": float(math.exp(rng(7).uniform(math.log(16.0), math.log(60.0)))),
        "arena": float(rng(8).uniform(200.0, 320.0)),
        "aspect": float(rng(9).uniform(0.6, 1.0)),
        "margin": float(rng(10).uniform(15.0, 30.0)),
        "marks": 0 if maybe(11, 0.6) else int(rng(110).integers(1, 7)),
        "frame": maybe(12, 0.15),
        "frame_inset": float(rng(13).uniform(2.0, 8.0)),
        "second": maybe(14, 0.15),
        "second_gap": float(rng(15).uniform(6.0, 16.0)),
    }
    drawn.update(overrides)
    if drawn["frame"]:
        # The loop's ink stays at least 3 units clear of the frame's (a distractor beside the
        # loop, not a part of it).
        drawn["margin"] = max(drawn["margin"], drawn["frame_inset"] + drawn["width"] + 3.0)
    if "radius" not in overrides:
        drawn["radius"] = min(drawn["radius"], _radius_cap(drawn))
    return drawn


def _half_extents(p: dict[str, Any]) -> tuple[float, float]:
    """Half-width and half-height (units) of the box the centreline must stay in."""
    w, h = p["arena"], p["arena"] * p["aspect"]
    inset = p["margin"] + 0.5 * p["width"]
    return 0.5 * w - inset, 0.5 * h - inset


def _radius_cap(p: dict[str, Any]) -> float:
    """Largest drawn radius that leaves a polygon of the loop's size room for straights."""
    return 0.6 * min(_half_extents(p))


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
    hx, hy = _half_extents(p)
    if min(hx, hy) < 2.0 * p["radius"] and min(hx, hy) < 10.0:
        raise TrackError(
            f"track {name!r}: the arena ({p['arena']:g} x {p['arena'] * p['aspect']:g}) leaves "
            f"no room for a loop inside a margin of {p['margin']:g} units"
        )
    w, h = p["arena"], p["arena"] * p["aspect"]
    check_image_size(name, w, resolution)
    geo = np.random.default_rng([seed, 0x67656F])  # "geo": the loop's own stream
    line = _loop(name, p, geo)
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
    hx, hy = _half_extents(p)
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
    (:func:`~sarlearn.world.track.normalise_darkness`), and is scaled by ``contrast``.
    """
    texture, noise, contrast = p["texture"], p["noise"], p["contrast"]
    if texture == 0 and noise == 0:
        return strokes * contrast
    m, n = strokes.shape
    width, height = size
    px = width / n
    ys, xs = (np.arange(k) + 0.5 for k in (m, n))
    coarse = rng.normal(0.0, 1.0, (int(height / 40) + 2, int(width / 40) + 2))
    rows = np.array([np.interp(xs * px / 40, np.arange(coarse.shape[1]), c) for c in coarse])
    shading = np.array(
        [np.interp(ys * px / 40, np.arange(coarse.shape[0]), rows[:, j]) for j in range(n)]
    ).T
    floor = 0.12 + texture * 0.06 * np.clip(shading, -2, 2) / 2
    yy, xx = np.meshgrid(height - ys * px, xs * px, indexing="ij")
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


def describe_parameters() -> list[tuple[str, str, str]]:
    """``(key, override range, how it is drawn)`` for each parameter (docs, ``tracks``)."""
    out = []
    for key, p in PARAMETERS.items():
        if p.kind is bool:
            allowed = "true / false"
        elif p.kind is str:
            allowed = " / ".join(p.choices)
        else:
            allowed = f"{p.low:g} - {p.high:g}"
        out.append((key, allowed, p.draw))
    return out


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
