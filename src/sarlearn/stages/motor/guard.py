"""The do-no-harm guard: a gain g in [0, 1] on the network's steering, lowered when the loop
errs more than the reflex alone did (``guard.*`` options, docs/generalisation.md).

A learner in the loop must never leave the robot worse off than its reflex. The guard is a
local, slow mechanism of the motor stage, one per agent, that only watches the reflex error e
it already receives:

- a running **level** of |e| (mean over about ``level_steps`` steps);
- at step ``probe_at``, if the level is *quiet* (below ``quiet``: the learner has the line)
  g stays 1 unless the level later rises to ``relapse`` (the learner lost the line). Then, or
  at ``probe_at`` if the level is not quiet, a **probe**: for ``probe_steps`` steps g = 0,
  the wheels see the reflex alone, and the mean |e| over the last three quarters of them (the
  first quarter lets the reflex take over from wherever the network left the robot) is the
  **reference**, the reflex's own level on this track. (Before ``probe_at`` nothing is known
  about the reflex: a fresh network's first steps already steer, and a loaded one steers from
  step 0.)
- then g = 1 again and, every step, ``g += rate * ((1 - margin) * reference - level) / scale``
  (``scale = max(reference, quiet)``), clipped to [0, 1]: the gain falls while the loop errs
  more than ``1 - margin`` times the reflex's level and rises while it errs less. With
  ``follow`` > 0 the reference keeps following |e| at the rate ``follow (1 - g) / level_steps``
  (off by default: on wide tuning lines it followed the loop's own level down and silenced
  learners that helped).

The network keeps learning throughout (the guard scales what reaches the wheels, not the rule);
a frozen network (transfer) is simply silenced where it harms. With the guard the turn command
is ``u = e + G * (g * y)``, computed in float64.

:func:`guard_formula` is the whole update for one agent and one step, on plain floats; the
numpy reference (:class:`HarmGuard`) applies it agent by agent and the compiled engine compiles
the same function (:mod:`sarlearn.stages.motor.compiled`), so both execute the same operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import ShapeError

#: Phases of an agent's guard (the ``PHASE`` column of its state).
OPEN, PROBE, GUARD, EXEMPT = 0.0, 1.0, 2.0, 3.0

#: Columns of the state row: running level of |e|, reference (the reflex's level), gain g,
#: phase, and the step the last probe began.
LEVEL, REFERENCE, GAIN, PHASE, SINCE = 0, 1, 2, 3, 4
N_STATE = 5

#: Columns of the parameter row (after the state in the engine's guard array): on (1/0),
#: 1 / level_steps, probe_at, probe_steps, quiet, margin, rate, follow, relapse.
N_PARAMS = 9


def guard_formula(
    abs_e: float,
    t: int,
    level: float,
    reference: float,
    gain: float,
    phase: float,
    since: float,
    level_rate: float,
    probe_at: float,
    probe_steps: float,
    quiet: float,
    margin: float,
    rate: float,
    follow: float,
    relapse: float,
) -> tuple[float, float, float, float, float]:
    """One step of one agent's guard; returns the new ``(level, reference, gain, phase,
    since)``.

    ``abs_e`` is this step's |e| and ``t`` the global step index (from 0); the returned gain
    scales this step's steering. Plain floats in, plain floats out (compiled as it is by the
    engine): the order of every operation is the same in both executions.
    """
    # the running level: the plain mean of the steps so far until that is longer than the
    # window, then an exponential mean over about 1 / level_rate steps
    w = 1.0 / (t + 1.0)
    if w < level_rate:
        w = level_rate
    level = level + w * (abs_e - level)
    if phase == GUARD:
        reference = reference + follow * level_rate * (1.0 - gain) * (abs_e - reference)
        scale = reference if reference > quiet else quiet
        gain = gain + rate * ((1.0 - margin) * reference - level) / scale
        if gain < 0.0:
            gain = 0.0
        elif gain > 1.0:
            gain = 1.0
    if (phase == OPEN and t >= probe_at) or (phase == EXEMPT and level >= relapse):
        if level < quiet:
            phase = EXEMPT  # the learner has the line: nothing to guard against (for now)
        else:  # probe now (also when a learner that had the line loses it)
            phase = PROBE
            reference = 0.0
            since = t
    if phase == PROBE:  # the reflex alone drives; the reference is its mean |e| once it has
        n = t - since + 1.0  # taken over (after the probe's first quarter)
        m = n - math.floor(0.25 * probe_steps)
        if m > 0.0:
            reference = reference + (abs_e - reference) / m
        gain = 0.0
        if n >= probe_steps:
            phase = GUARD
            gain = 1.0  # the network drives again, and is judged against the reference
    return level, reference, gain, phase, since


@dataclass
class HarmGuard:
    """The guard of a population: parameters (see the module docstring) and per-agent state.

    ``state`` is ``(P, 5)`` float64: level, reference, gain, phase, start of the last probe
    (:data:`LEVEL` ...).
    """

    population: int
    level_steps: int = 500
    probe_at: int = 5000
    probe_steps: int = 2000
    quiet: float = 0.25
    margin: float = 0.1
    rate: float = 0.002
    follow: float = 0.0
    relapse: float = 1.0
    state: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = np.zeros((self.population, N_STATE))
            self.state[:, GAIN] = 1.0
        if self.state.shape != (self.population, N_STATE):
            raise ShapeError(
                f"HarmGuard: state must be ({self.population}, {N_STATE}), got {self.state.shape}"
            )

    @classmethod
    def from_config(cls, cfg: Any, population: int) -> HarmGuard:
        """The guard of a :class:`~sarlearn.config.GuardConfig` (``cfg.guard``)."""
        return cls(population, **cfg.model_dump(exclude={"enabled"}))

    @property
    def gain(self) -> NDArray[np.float64]:
        """``(P,)`` the gains g now."""
        assert self.state is not None
        return self.state[:, GAIN]

    def params(self) -> tuple[float, ...]:
        """The parameters in :func:`guard_formula`'s order (and the engine's parameter row,
        after its leading 1 = on)."""
        return (
            1.0 / self.level_steps,
            float(self.probe_at),
            float(self.probe_steps),
            float(self.quiet),
            float(self.margin),
            float(self.rate),
            float(self.follow),
            float(self.relapse),
        )

    def update(self, error: ArrayLike, t: int) -> NDArray[np.float64]:
        """Advance every agent's guard by step ``t`` with this step's reflex errors ``(P,)``;
        returns the gains ``(P,)`` that scale this step's steering."""
        e = np.asarray(error, dtype=np.float64)
        state = self.state
        assert state is not None
        par = self.params()
        for p in range(self.population):
            row = state[p]
            row[:] = guard_formula(
                abs(float(e[p])), int(t), float(row[0]), float(row[1]), float(row[2]),
                float(row[3]), float(row[4]), *par,
            )  # fmt: skip
        return state[:, GAIN].copy()

    def gate(self, error: ArrayLike, steering: ArrayLike, t: int) -> NDArray[np.float64]:
        """``g * y`` in float64 after advancing the guard with step ``t``'s errors."""
        g = self.update(error, t)
        return g * np.asarray(steering, dtype=np.float64)


__all__ = [
    "GAIN",
    "LEVEL",
    "N_PARAMS",
    "N_STATE",
    "PHASE",
    "REFERENCE",
    "SINCE",
    "HarmGuard",
    "guard_formula",
]
