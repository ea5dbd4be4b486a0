"""The success criterion and the summary numbers of a closed-loop run (pure functions).

SPEC section 4: after a warm-up, the moving sum of |e| over the last ``window`` steps must stay
below ``threshold`` for ``hold`` consecutive steps; the run "learned at step N" where N is the
first step of that stretch.

Conventions used here (the SPEC leaves them implicit):

- steps are counted from 0; the moving sum at step t covers steps ``t - window + 1 .. t``;
- a step may start the stretch only once the warm-up is over (``t >= warmup``) *and* the window
  is full (``t >= window - 1``), so a short trace cannot look good just because it is short;
- "below" is strict (``< threshold``); NaN never counts as below.

Every function takes time along the last axis, so ``(T,)`` and population traces ``(P, T)``
both work where noted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class SuccessCriterion:
    """The parameters of the success criterion (defaults: SPEC section 4)."""

    warmup: int = 200
    window: int = 200
    threshold: float = 0.1
    hold: int = 200

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.window < 1 or self.hold < 1:
            raise ValueError(f"window and hold must be >= 1, got {self.window}, {self.hold}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")

    @property
    def first_start(self) -> int:
        """The earliest step at which a successful stretch may begin."""
        return max(self.warmup, self.window - 1)

    @classmethod
    def from_config(cls, cfg: object) -> SuccessCriterion:
        """Take ``warmup``, ``success_window``, ``success_threshold``, ``success_hold``."""
        return cls(
            warmup=int(cfg.warmup),  # type: ignore[attr-defined]
            window=int(cfg.success_window),  # type: ignore[attr-defined]
            threshold=float(cfg.success_threshold),  # type: ignore[attr-defined]
            hold=int(cfg.success_hold),  # type: ignore[attr-defined]
        )


def moving_sum(values: ArrayLike, window: int) -> NDArray[np.float64]:
    """Sum over the last ``window`` entries along the last axis (partial sums at the start).

    ``out[..., t] = values[..., max(0, t - window + 1) : t + 1].sum()``. Uses a cumulative sum,
    so it is O(T) whatever the window; the rounding error is ~1e-16 of the running total,
    far below any threshold we compare with.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    x = np.asarray(values, dtype=np.float64)
    c = np.cumsum(x, axis=-1)
    out = c.copy()
    if x.shape[-1] > window:
        out[..., window:] = c[..., window:] - c[..., :-window]
    return out


def moving_mean(values: ArrayLike, window: int) -> NDArray[np.float64]:
    """Mean over the last ``window`` entries along the last axis (partial at the start)."""
    x = np.asarray(values, dtype=np.float64)
    n = np.minimum(np.arange(1, x.shape[-1] + 1), window)
    return moving_sum(x, window) / n


def success_mask(errors: ArrayLike, criterion: SuccessCriterion | None = None) -> NDArray[np.bool_]:
    """True at the steps where the moving sum of |e| is below the threshold (and may count)."""
    crit = criterion or SuccessCriterion()
    e = np.asarray(errors, dtype=np.float64)
    # A NaN or inf poisons the cumulative sum from there on, so no success can follow it.
    with np.errstate(invalid="ignore"):
        ok = moving_sum(np.abs(e), crit.window) < crit.threshold
    ok[..., : crit.first_start] = False
    return ok


def _first_run_start(ok: NDArray[np.bool_], length: int) -> int | None:
    """Start index of the first run of at least ``length`` consecutive True values in 1-D ok."""
    if ok.size < length:
        return None
    padded = np.concatenate(([False], ok, [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    long = np.flatnonzero(ends - starts >= length)
    return int(starts[long[0]]) if long.size else None


def steps_to_success(errors: ArrayLike, criterion: SuccessCriterion | None = None) -> int | None:
    """The step N where the first successful stretch began, or None if it never happened.

    ``errors`` is a 1-D trace of the closed-loop error e (signed; |e| is taken here).
    """
    crit = criterion or SuccessCriterion()
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"errors must be 1-D (T,), got shape {e.shape}; use steps_to_success_all")
    return _first_run_start(success_mask(e, crit), crit.hold)


def steps_to_success_all(
    errors: ArrayLike, criterion: SuccessCriterion | None = None
) -> list[int | None]:
    """steps_to_success for each row of a population trace ``(P, T)``."""
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"errors must be (P, T), got shape {e.shape}")
    crit = criterion or SuccessCriterion()
    mask = success_mask(e, crit)
    return [_first_run_start(row, crit.hold) for row in mask]


def success_confirmed_at(
    start: int | None, criterion: SuccessCriterion | None = None
) -> int | None:
    """The step at which a stretch beginning at ``start`` is complete (a run may stop there)."""
    crit = criterion or SuccessCriterion()
    return None if start is None else start + crit.hold - 1


def mean_abs(values: ArrayLike) -> float | None:
    """Mean of |values| (1-D), or None for an empty trace (JSON-friendly)."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return None
    return float(np.mean(np.abs(x)))


def summarise_errors(
    errors: ArrayLike,
    off_track: ArrayLike | None = None,
    criterion: SuccessCriterion | None = None,
    span: int = 1000,
) -> dict[str, int | float | None]:
    """The summary numbers of one agent's error trace (1-D).

    Returns ``steps``, ``steps_to_success``, ``mean_abs_error`` (whole run),
    ``mean_abs_error_first_<span>``, ``mean_abs_error_last_<span>`` (over the first/last
    ``min(span, T)`` steps), ``final_moving_sum`` (of |e| over the success window) and
    ``off_track_steps``.
    """
    crit = criterion or SuccessCriterion()
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"errors must be 1-D (T,), got shape {e.shape}")
    n = e.size
    off = 0 if off_track is None else int(np.count_nonzero(np.asarray(off_track, dtype=bool)))
    ms = moving_sum(np.abs(e), crit.window) if n else np.zeros(0)
    return {
        "steps": n,
        "steps_to_success": steps_to_success(e, crit),
        "mean_abs_error": mean_abs(e),
        f"mean_abs_error_first_{span}": mean_abs(e[:span]),
        f"mean_abs_error_last_{span}": mean_abs(e[max(0, n - span) :]),
        "final_moving_sum": float(ms[-1]) if n else None,
        "off_track_steps": off,
    }


__all__ = [
    "SuccessCriterion",
    "mean_abs",
    "moving_mean",
    "moving_sum",
    "steps_to_success",
    "steps_to_success_all",
    "success_confirmed_at",
    "success_mask",
    "summarise_errors",
]
