"""The robot interface: the only way the closed loop talks to a world.

The simulator (:class:`sarlearn.stages.world.sim.SimWorld`), a recorded run
(:class:`sarlearn.runs.replay.ReplayRobot`) and real hardware
(:class:`sarlearn.robots.raspberry_pi.RaspberryPiRobot`) all implement it, so the same
:class:`sarlearn.loop.ClosedLoop` and agent drive each of them.

Arrays are population-first: a simulator may run ``P`` robots in lockstep, hardware has P = 1.
Darkness is in [0, 1] (1 = the dark line).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray


@runtime_checkable
class Robot(Protocol):
    """What the closed loop needs from a robot (simulated, replayed or real)."""

    def read_ground(self) -> NDArray[np.floating]:
        """Ground sensor darkness ``(P, n)``: the reflex pair (left, right) first, then any
        predictor sensors (rows of sensors ahead of the robot)."""
        ...

    def grab_frame(self) -> NDArray[np.floating] | None:
        """A greyscale camera frame ``(P, H, W)`` in [0, 1] (1 = dark), or None without camera."""
        ...

    def set_wheel_speeds(self, left: NDArray[np.floating], right: NDArray[np.floating]) -> None:
        """Command the wheel speeds ``(P,)``, ``(P,)`` for one control cycle."""
        ...


def population_of(robot: object, default: int = 1) -> int:
    """Number of robots behind ``robot`` (its ``population`` attribute, else ``default``)."""
    return int(getattr(robot, "population", default))


def pose_of(robot: object) -> NDArray[np.floating] | None:
    """The robot's pose ``(P, 3)`` (x, y, heading) when it knows it (simulator, replay)."""
    pose = getattr(robot, "pose", None)
    return None if pose is None else np.asarray(pose)


def off_track_of(robot: object) -> NDArray[np.bool_] | None:
    """Which robots have lost the line ``(P,)``, when the robot can tell."""
    off = getattr(robot, "off_track", None)
    return None if off is None else np.asarray(off, dtype=bool)


__all__ = ["Robot", "off_track_of", "population_of", "pose_of"]
