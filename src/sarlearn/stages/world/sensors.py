"""Point ground sensors fixed in the robot frame (x forward, y to the left).

Each sensor reads the floor's darkness at one point (bilinear, see :class:`Track`). The
simulator uses one :class:`GroundSensors` holding the reflex pair followed by the predictor
rows, so a whole reading is a single vectorised lookup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import ShapeError

if TYPE_CHECKING:
    from sarlearn.config import WorldConfig
    from sarlearn.stages.world.track import Track


class GroundSensors:
    """A set of point sensors at fixed positions in the robot frame.

    Args:
        positions: ``(n, 2)`` sensor positions (x forward, y left) in units.
    """

    def __init__(self, positions: ArrayLike) -> None:
        pos = np.array(positions, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] < 1:
            raise ShapeError(f"GroundSensors: positions must be (n >= 1, 2), got {pos.shape}")
        pos.setflags(write=False)
        self.positions: NDArray[np.float64] = pos
        """``(n, 2)`` positions in the robot frame."""
        self._px = pos[:, 0].copy()
        self._py = pos[:, 1].copy()

    def __len__(self) -> int:
        return self.positions.shape[0]

    def __add__(self, other: GroundSensors) -> GroundSensors:
        """Concatenate two sensor sets (readings keep the order: self first)."""
        return GroundSensors(np.concatenate([self.positions, other.positions]))

    def world_points(self, pose: ArrayLike) -> NDArray[np.float64]:
        """Sensor positions in world coordinates: pose ``(P, 3)`` -> ``(P, n, 2)``."""
        x, y = self._world_xy(as_poses(pose))
        return np.stack([x, y], axis=-1)

    def read(self, track: Track, pose: ArrayLike) -> NDArray[np.float64]:
        """Darkness under each sensor: pose ``(P, 3)`` -> ``(P, n)`` in [0, 1]."""
        x, y = self._world_xy(as_poses(pose))
        return track.lookup(x, y)

    def _world_xy(self, p: NDArray[np.float64]) -> tuple[NDArray, NDArray]:
        """``(P, 3)`` poses -> x, y ``(P, n)`` of every sensor (hot path)."""
        c = np.cos(p[:, 2:3])
        s = np.sin(p[:, 2:3])
        return sensor_xy_formula(p[:, 0:1], p[:, 1:2], c, s, self._px, self._py)

    def __repr__(self) -> str:
        return f"GroundSensors(n={len(self)})"


def sensor_xy_formula(px: Any, py: Any, c: Any, s: Any, sx: Any, sy: Any) -> tuple[Any, Any]:
    """A sensor at ``(sx, sy)`` in the robot's frame, in world coordinates, for a robot at
    ``(px, py)`` heading ``th`` with ``c = cos th``, ``s = sin th``: numbers or arrays (the engine
    compiles it as it is)."""
    return px + c * sx - s * sy, py + s * sx + c * sy


def off_track_formula(x: Any, y: Any, width: Any, height: Any, lost: Any, after: Any) -> Any:
    """Off the track: outside the arena ``[0, width] x [0, height]``, or no ground sensor has
    seen the line for ``after`` steps (``lost >= after``); numbers or arrays (compiled as it is)."""
    outside = (x < 0) | (x > width) | (y < 0) | (y > height)
    return outside | (lost >= after)


def as_poses(pose: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(pose, dtype=np.float64)
    if p.ndim == 1 and p.shape[0] == 3:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != 3:
        raise ShapeError(f"pose must be (P, 3) or (3,), got {p.shape}")
    return p


def reflex_pair(cfg: WorldConfig) -> GroundSensors:
    """The two reflex sensors, left first (default (10, +5) and (10, -5))."""
    return GroundSensors(cfg.reflex_sensors)


def row_positions(distances: ArrayLike, per_row: int, spacing: float) -> NDArray[np.float64]:
    """Positions ``(len(distances) * per_row, 2)`` of rows of sensors centred on the robot axis.

    Rows come in the order of ``distances``; within a row the sensors run from left (+y) to
    right (-y), like the columns of a camera image, ``spacing`` apart.
    """
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    lateral = (0.5 * (per_row - 1) - np.arange(per_row)) * spacing
    xs = np.repeat(d, per_row)
    ys = np.tile(lateral, d.shape[0])
    return np.stack([xs, ys], axis=1)


def predictor_rows(cfg: WorldConfig) -> GroundSensors:
    """The predictor rows (SPEC: 3 rows of 48 sensors at 11, 12, 13 ahead, 0.25 apart)."""
    return GroundSensors(
        row_positions(cfg.predictor_distances, cfg.predictors_per_row, cfg.predictor_spacing)
    )


def ground_sensors(cfg: WorldConfig) -> GroundSensors:
    """Reflex pair followed by the predictor rows: ``2 + n_rows * per_row`` sensors."""
    return reflex_pair(cfg) + predictor_rows(cfg)


__all__ = [
    "GroundSensors",
    "as_poses",
    "ground_sensors",
    "predictor_rows",
    "reflex_pair",
    "row_positions",
]
