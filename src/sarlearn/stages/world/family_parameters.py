"""The generated tracks' parameter space: names (``random:SEED[,KEY=VALUE...]``), the seed
ranges, each parameter's range and distribution, and :class:`DrawnTrack`, the record of what
was drawn. :mod:`sarlearn.stages.world.family` draws the tracks from these."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sarlearn.errors import TrackError

#: Prefix of a generated track's name.
PREFIX = "random:"


#: Seeds to choose defaults and tune on (0 .. 9,999).
TUNING_SEEDS = range(0, 10_000)


#: Seeds to report on, never used for tuning (1,000,000 .. 1,009,999).
EVALUATION_SEEDS = range(1_000_000, 1_010_000)


SHAPES = ("polygon", "blob")


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


def half_extents(p: dict[str, Any]) -> tuple[float, float]:
    """Half-width and half-height (units) of the box the centreline must stay in."""
    w, h = p["arena"], p["arena"] * p["aspect"]
    inset = p["margin"] + 0.5 * p["width"]
    return 0.5 * w - inset, 0.5 * h - inset


def _radius_cap(p: dict[str, Any]) -> float:
    """Largest drawn radius that leaves a polygon of the loop's size room for straights."""
    return 0.6 * min(half_extents(p))


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
