"""Compiled motor stage: the reflex error and the turn command, compiled from the reference's
own formula functions.

Numpy twins: :func:`sarlearn.stages.motor.motor.error_formula` and
:func:`sarlearn.stages.motor.motor.command_formula`."""

from __future__ import annotations

from numba import njit

from sarlearn.stages.motor.motor import command_formula, error_formula

# The reference's own functions, compiled as they are (one source of truth): the reflex error
# e = gain (left - right) and the turn command u = e + G y.
reflex = njit(cache=True, inline="always")(error_formula)
command = njit(cache=True, inline="always")(command_formula)
