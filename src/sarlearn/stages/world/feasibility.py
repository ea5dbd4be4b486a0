"""Can a track be followed at all? A centreline oracle decides.

A learner's failure on a track says nothing about the learner if no controller could do
better. The oracle here is a controller shown to be correct: it knows the drawn centreline
and steers the reflex sensors' midpoint onto it by exact input-output linearisation of that
point (with ``delta`` its signed offset from the centreline and ``psi`` the heading error, the
turn rate ``omega = (-k delta - v sin psi) / (d cos psi)`` gives ``d delta / dt = -k delta``),
clipped to the network's steering range (``|y| <= 1.5``, SPEC's readout [1, 2] of outputs in
(-0.5, 0.5); sar's readout [1.5, 3] on mirror differences steers at most about 1.52 in
practice), with the reflex on as in every run. It sees neither the floor nor the
distractors, so gaps, texture, marks, a frame or a second line matter only where they reach the
reflex sensors while the robot is on its line.

Verdicts (:class:`Feasibility`), over one full lap after a lead-in of 400 steps (the oracle
converges onto the line within a few dozen steps):

- ``followed``: the robot never goes off track, and the line stays under or between the reflex
  sensors (midpoint offset below 5 units plus half the line's width);
- ``feasible``: the success criterion holds at every step of the lap (moving sum of |e| over
  200 steps below 0.1), so a learner with the same steering range *can* settle there.

This is the centreline controller with which docs/results.md showed that ``thick`` and
``figure8`` cannot be settled (gain k = 5/s), run on the numpy world with the default robot,
speed and sensors; about 0.2 s per track on a free core, cached.
"""

from __future__ import annotations

import weakref
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import WorldConfig
from sarlearn.metrics import moving_sum
from sarlearn.stages.world.sim import SimWorld
from sarlearn.stages.world.track import Track

#: The oracle's gain (1/s): the sensors' midpoint offset decays as exp(-k t).
GAIN = 5.0
#: Largest network steering |y| of SPEC's readout [1, 2] (1 x 0.5 + 2 x 0.5).
STEERING_LIMIT = 1.5
#: Steps before the lap is judged (converging onto the line, filling the 200-step window).
LEAD_IN = 400


@dataclass(frozen=True)
class Feasibility:
    """The centreline oracle's lap on a track (see the module docstring)."""

    feasible: bool
    """The success criterion held at every step of a full lap."""
    followed: bool
    """The robot stayed on the line for a full lap."""
    mean_abs_error: float
    """Mean |e| over the lap (and the 199 steps before it that its first sum includes)."""
    error_steps: float
    """Share of those steps with e != 0."""
    max_offset: float
    """Largest distance of the sensors' midpoint from the centreline over the lap (units)."""
    steps: int
    """Steps of the lap."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        return asdict(self)


def feasibility(track: Track, cfg: WorldConfig | None = None) -> Feasibility:
    """Run the centreline oracle for a lead-in and one lap on ``track`` (which must have a
    centreline: built-in and generated tracks do, image files do not).

    ``cfg`` gives the robot, speed and sensors (default: :class:`WorldConfig`'s defaults; its
    track is ignored). Cached per track object and configuration.

    Raises:
        ValueError: the track has no centreline.
    """
    if track.centreline is None:
        raise ValueError(f"feasibility: track {track.name!r} has no centreline (an image file)")
    cfg = cfg or WorldConfig()
    key = cfg.model_dump_json()
    verdicts = _VERDICTS.setdefault(track, {})
    if key not in verdicts:
        verdicts[key] = _feasibility(track, cfg)
    return verdicts[key]


#: Verdicts per track object (weakly held: a track's verdicts go when the track does).
_VERDICTS: weakref.WeakKeyDictionary[Track, dict[str, Feasibility]] = weakref.WeakKeyDictionary()


def judge_generated(name: str, resolution: float = 4.0) -> dict[str, Any]:
    """What the generated track ``name`` drew (:meth:`DrawnTrack.as_dict`) and the oracle's
    ``feasible`` and ``followed``, as one JSON-ready dict (for tables of many tracks; a
    top-level function, so that worker processes can run it)."""
    from sarlearn.stages.world.family import generate

    track = generate(name, resolution)
    check = feasibility(track)
    return {**track.drawn.as_dict(), "feasible": check.feasible, "followed": check.followed}


def _feasibility(track: Track, cfg: WorldConfig) -> Feasibility:
    line = track.centreline
    assert line is not None
    # Only the reflex pair matters to the oracle: one predictor keeps the world cheap.
    cheap = cfg.model_copy(
        update={"predictor_distances": [cfg.predictor_distances[0]], "predictors_per_row": 1,
                "inputs": "rows", "predictor_mode": "raw", "start": None}
    )  # fmt: skip
    world = SimWorld(cheap, 1, track=track, camera=False)
    length = float(np.linalg.norm(np.diff(line, axis=0, append=line[:1]), axis=1).sum())
    lap = int(np.ceil(length / max(cfg.speed * cfg.dt, 1e-9)))
    total = LEAD_IN + lap
    d = float(np.mean([s[0] for s in cfg.reflex_sensors]))
    width = getattr(getattr(track, "drawn", None), "width", None)
    errors = np.empty(total)
    offsets = np.empty(total)
    off = False
    index = 0
    for t in range(total):
        pose = world.pose[0]
        y, delta, index = _steer(pose, line, index, d, cfg)
        offsets[t] = abs(delta)
        errors[t] = float(world.step(np.array([y]))[0])
        off |= bool(world.off_track[0])
    window = 200
    ms = moving_sum(np.abs(errors), window)[LEAD_IN:]
    judged = np.abs(errors[LEAD_IN - window + 1 :])  # every error the judged sums include
    half_gap = 0.5 * abs(cfg.reflex_sensors[0][1] - cfg.reflex_sensors[1][1])
    reach = half_gap + 0.5 * (width if width is not None else 3.0)
    max_offset = float(offsets[LEAD_IN:].max())
    return Feasibility(
        feasible=bool((ms < 0.1).all()) and not off,
        followed=not off and max_offset < reach,
        mean_abs_error=float(judged.mean()),
        error_steps=float((judged != 0).mean()),
        max_offset=max_offset,
        steps=lap,
    )


def _steer(
    pose: NDArray[np.float64], line: NDArray[np.float64], index: int, d: float, cfg: WorldConfig
) -> tuple[float, float, int]:
    """The oracle's steering ``y``, the midpoint's signed offset and its nearest centreline
    index (searched near the previous one, then everywhere if that is far)."""
    c, s = np.cos(pose[2]), np.sin(pose[2])
    point = pose[:2] + d * np.array([c, s])
    n = len(line)
    near = (index + np.arange(-40, 200)) % n
    i = int(near[np.argmin(((line[near] - point) ** 2).sum(axis=1))])
    if np.linalg.norm(line[i] - point) > 5.0:
        i = int(np.argmin(((line - point) ** 2).sum(axis=1)))
    tangent = line[(i + 1) % n] - line[i - 1]
    tangent /= np.linalg.norm(tangent)
    if tangent[0] * c + tangent[1] * s < 0:
        tangent = -tangent  # along the travel
    normal = np.array([-tangent[1], tangent[0]])
    delta = float(normal @ (point - line[i]))
    sin_psi = s * tangent[0] - c * tangent[1]
    cos_psi = c * tangent[0] + s * tangent[1]
    omega = (-GAIN * delta - cfg.speed * sin_psi) / (d * max(cos_psi, 0.2))
    y = float(np.clip(omega * cfg.axle / 2.0 / cfg.net_gain, -STEERING_LIMIT, STEERING_LIMIT))
    return y, delta, i


__all__ = ["GAIN", "LEAD_IN", "STEERING_LIMIT", "Feasibility", "feasibility", "judge_generated"]
