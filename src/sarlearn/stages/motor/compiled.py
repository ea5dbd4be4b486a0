"""Compiled motor stage: the reflex error, the turn command and the do-no-harm guard, compiled
from the reference's own formula functions.

Numpy twins: :func:`sarlearn.stages.motor.motor.error_formula`,
:func:`sarlearn.stages.motor.motor.command_formula` and
:func:`sarlearn.stages.motor.guard.guard_formula` (applied by
:meth:`sarlearn.stages.motor.guard.HarmGuard.gate`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from sarlearn.stages.motor.guard import N_STATE, guard_formula
from sarlearn.stages.motor.motor import command_formula, error_formula

# The reference's own functions, compiled as they are (one source of truth): the reflex error
# e = gain (left - right) and the turn command u = e + G y.
reflex = njit(cache=True, inline="always")(error_formula)
command = njit(cache=True, inline="always")(command_formula)
# Not cached on disk: numba keys a cache on this file alone, and the formula lives in guard.py
# (the kernels that inline these are recompiled when guard.py changes, engine.cache).
_guard = njit(inline="always")(guard_formula)


@njit(cache=True, inline="always")
def guard_on(guard, p):  # type: ignore[no-untyped-def]
    """Whether agent ``p`` has a guard (the first parameter column, after its state)."""
    return guard[p, N_STATE] != 0.0


@njit(inline="always")
def gate(guard, p, t, e64, y_net):  # type: ignore[no-untyped-def]
    """Advance agent ``p``'s guard by global step ``t`` with the reflex error ``e64``; return
    ``g * y`` in float64 (as :meth:`~sarlearn.stages.motor.guard.HarmGuard.gate`).

    ``guard[p]`` is the agent's state row (level, reference, gain, phase, probe start) then its
    parameters (on, 1 / level_steps, probe_at, probe_steps, quiet, margin, rate, follow,
    relapse)."""
    s = N_STATE
    level, ref, g, phase, since = _guard(
        abs(e64), t, guard[p, 0], guard[p, 1], guard[p, 2], guard[p, 3], guard[p, 4],
        guard[p, s + 1], guard[p, s + 2], guard[p, s + 3], guard[p, s + 4], guard[p, s + 5],
        guard[p, s + 6], guard[p, s + 7], guard[p, s + 8],
    )  # fmt: skip
    guard[p, 0] = level
    guard[p, 1] = ref
    guard[p, 2] = g
    guard[p, 3] = phase
    guard[p, 4] = since
    return g * np.float64(y_net)
