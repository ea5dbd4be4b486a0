"""Robot backends behind one small interface (read ground sensors, grab a frame, set wheels).

- the simulator: :class:`sarlearn.stages.world.sim.SimWorld`;
- the replay of a recorded run: :class:`sarlearn.runs.replay.ReplayRobot` (it reads a run
  folder, so it lives with the runs);
- a Raspberry Pi robot: :class:`sarlearn.robots.raspberry_pi.RaspberryPiRobot` (optional
  extras ``sarlearn[pi]``, imported only when used).
"""

from __future__ import annotations

from sarlearn.robots.interface import Robot

__all__ = ["Robot"]
