"""Compiled robot kinematics: the exact arc of the differential drive, compiled from the
reference's own formula function.

Numpy twin: :func:`sarlearn.stages.world.robot.arc_formula` (used by
:func:`~sarlearn.stages.world.robot.advance`)."""

from __future__ import annotations

from numba import njit

from sarlearn.stages.world.robot import arc_formula

# The reference's own function, compiled as it is (one source of truth).
arc = njit(cache=True, inline="always")(arc_formula)


@njit(cache=True, inline="always")
def advance_agent(p, pose, vl, vr, axle, dt):
    """Exact-arc differential drive of agent p (``world.robot.arc_formula``)."""
    x, y, th = arc(pose[p, 0], pose[p, 1], pose[p, 2], vl, vr, axle, dt)
    pose[p, 0] = x
    pose[p, 1] = y
    pose[p, 2] = th
