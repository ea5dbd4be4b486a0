"""Settling, the strict success measure, for online learners and for frozen RL policies.

The definition: a trace's ``settled_step`` is the first step from which
the moving sum of |e| (SPEC's success window, 200 steps) stays below the threshold (0.1) until
the end of the run, counted only after the warm-up; a run *settles* when its last ``tail``
(5,000) steps are clean, i.e. ``settled_step <= T - tail``. It is built on
:func:`sarlearn.metrics.success_mask`, so warm-up, window and "strictly below" are the paper's
criterion exactly. (A helper branch adds the same ``settled_step`` to :mod:`sarlearn.metrics`;
once merged, these functions can call it.)

A frozen policy (PPO, SAC) does not learn while it drives, so its test is one evaluation
rollout of ``warmup + tail`` steps: it is *clean* when the robot stays on the track and the
moving sum is below the threshold at every step from the end of the warm-up on.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from sarlearn.metrics import SuccessCriterion, success_mask

#: Clean steps at the end of a run that make it "settled".
SETTLE_TAIL = 5000


def settled_step(errors: ArrayLike, criterion: SuccessCriterion | None = None) -> int | None:
    """The first step from which the success mask stays True to the end of the 1-D trace
    ``(T,)`` (None if the last step is not clean)."""
    crit = criterion or SuccessCriterion()
    ok = success_mask(np.asarray(errors, dtype=np.float64), crit)
    if ok.ndim != 1:
        raise ValueError(f"errors must be 1-D (T,), got shape {ok.shape}")
    if ok.size == 0 or not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)
    return int(bad[-1] + 1) if bad.size else 0


def settles(
    errors: ArrayLike, criterion: SuccessCriterion | None = None, tail: int = SETTLE_TAIL
) -> bool:
    """Whether the last ``tail`` steps of the trace ``(T,)`` are clean."""
    s = settled_step(errors, criterion)
    return s is not None and s <= np.asarray(errors).shape[-1] - tail


def rollout_clean(errors: ArrayLike, criterion: SuccessCriterion | None = None) -> bool:
    """Whether an evaluation rollout ``(T,)`` is clean from the end of the warm-up on."""
    crit = criterion or SuccessCriterion()
    e = np.asarray(errors, dtype=np.float64)
    if e.size <= crit.first_start:
        return False
    return bool(success_mask(e, crit)[crit.first_start :].all())


__all__ = ["SETTLE_TAIL", "rollout_clean", "settled_step", "settles"]
