"""Compiled world stage: the exact arc of the differential drive, the reflex error and the turn
command, compiled from the reference's own formula functions.

Numpy twins: :func:`sarlearn.world.robot.arc_formula` (used by
:func:`~sarlearn.world.robot.advance`), :func:`sarlearn.motor.error_formula`,
:func:`sarlearn.motor.command_formula`."""

from __future__ import annotations

from numba import njit

from sarlearn.motor import command_formula, error_formula
from sarlearn.world.robot import arc_formula

# The formulas of the world and the motors are the reference's own functions, compiled as they
# are (one source of truth): the exact arc, the reflex error, the turn command u = e + G y.
arc = njit(cache=True, inline="always")(arc_formula)
reflex = njit(cache=True, inline="always")(error_formula)
command = njit(cache=True, inline="always")(command_formula)


@njit(cache=True, inline="always")
def advance_agent(p, pose, vl, vr, axle, dt):
    """Exact-arc differential drive of agent p (``world.robot.arc_formula``)."""
    x, y, th = arc(pose[p, 0], pose[p, 1], pose[p, 2], vl, vr, axle, dt)
    pose[p, 0] = x
    pose[p, 1] = y
    pose[p, 2] = th
