"""Robot backends behind one small interface (read ground sensors, grab a frame, set wheels).

- the simulator: :class:`sarlearn.world.sim.SimWorld`;
- the replay of a recorded run: :class:`sarlearn.robots.replay.ReplayRobot`;
- a Raspberry Pi robot: :class:`sarlearn.robots.raspberry_pi.RaspberryPiRobot` (optional
  extras ``sarlearn[pi]``, imported only when used).
"""

from __future__ import annotations

from sarlearn.robots.interface import Robot
from sarlearn.robots.replay import ReplayRobot

__all__ = ["ReplayRobot", "Robot"]
