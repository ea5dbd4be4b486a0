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

**Stricter measures (settling).** ``steps_to_success`` is a first passage: a run may go back
above the threshold afterwards. The settling measures look at the whole run and its end
(every one of them is defined on the per-step flag "the moving sum of |e| is at or above the
threshold", evaluated only from ``first_start`` on, where ``steps_to_success`` may begin):

- ``settled_step``: the first step from which the moving sum stays below the threshold until
  the end of the run (None if it is above at the last step);
- ``settle_window``: the last N steps judged (default 5,000); a run shorter than
  ``first_start + N`` is judged on all its steps from ``first_start`` on (the window is
  clipped, never padded); a run of no more than ``first_start`` steps has nothing to judge;
- ``above_threshold_fraction``: the fraction of the window's steps above threshold;
- ``settled``: the window is non-empty and clean (fraction 0), i.e. ``settled_step`` is at or
  before the window's first step;
- ``relapses``: how often the moving sum went back above threshold after the first success
  (None when there was no success);
- steering smoothness over the last ``min(N, T)`` steps: ``steering_flips_per_1000`` (sign
  changes of the network's steering y per 1,000 steps; exact zeros are skipped, so passing
  through 0 counts once) and ``saturated_steering_fraction`` (steps with
  ``|y| > 0.9 * y_max``, where ``y_max = sum_k |readout_k| * max|f|`` is the largest
  steering the readout can produce: 1.5 for logistic outputs in (-0.5, 0.5) and SPEC's
  readout [1, 2], 2.25 for sar's [1.5, 3] on mirror differences; undefined, None, for a
  linear output layer);
- dead units: a unit is *saturated* at a step when its slope ``|f'(h)|`` is below
  ``SATURATION_SLOPE`` (1 %) of ``f'(0)`` (logistic: ``|h| > 6.0``; tanh: ``|h| > 3.0``);
  the loops record, per step and weight layer, the fraction of saturated units
  (``saturated`` ``(P, T, L)``). ``dead_units`` per layer is the *smallest* of these
  fractions over the last ``DEAD_SPAN`` (1,000) steps: at least that share of the layer was
  saturated at every one of those steps (an upper bound on the share of units saturated for
  every input, and exactly 1 when the whole layer was); ``dead_layers`` counts layers with
  ``dead_units == 1``, where the sign path is cut for good.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: Steps judged by ``settled`` and ``above_threshold_fraction`` unless configured.
DEFAULT_SETTLE_WINDOW = 5000
#: A unit is saturated when its slope is below this fraction of f'(0).
SATURATION_SLOPE = 0.01
#: Steps over which dead units are judged (the last ones of the run).
DEAD_SPAN = 1000
#: Steering above this fraction of its largest possible value counts as saturated.
STEERING_SATURATION = 0.9
#: Largest |f| of each bounded activation (linear has none).
OUTPUT_BOUND = {"logistic": 0.5, "tanh": 1.0}


@dataclass(frozen=True)
class SuccessCriterion:
    """The parameters of the success criterion (defaults: SPEC section 4)."""

    warmup: int = 200
    window: int = 200
    threshold: float = 0.1
    hold: int = 200
    settle_window: int = 5000

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if self.window < 1 or self.hold < 1:
            raise ValueError(f"window and hold must be >= 1, got {self.window}, {self.hold}")
        if not self.threshold > 0:
            raise ValueError(f"threshold must be > 0, got {self.threshold}")
        if self.settle_window < 1:
            raise ValueError(f"settle_window must be >= 1, got {self.settle_window}")

    @property
    def first_start(self) -> int:
        """The earliest step at which a successful stretch may begin."""
        return max(self.warmup, self.window - 1)

    @classmethod
    def from_config(cls, cfg: object) -> SuccessCriterion:
        """Take ``warmup``, ``success_window``, ``success_threshold``, ``success_hold`` and
        ``settle_window`` (None or absent: the default 5,000)."""
        settle = getattr(cfg, "settle_window", None)
        return cls(
            settle_window=DEFAULT_SETTLE_WINDOW if settle is None else int(settle),
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


# ---------------------------------------------------------------------- settling


def _rows(x: NDArray[np.float64], name: str) -> tuple[NDArray[np.float64], bool]:
    """``(T,)`` or ``(P, T)`` -> ``(P, T)`` and whether the input was one trace."""
    if x.ndim == 1:
        return x[None, :], True
    if x.ndim == 2:
        return x, False
    raise ValueError(f"{name} must be (T,) or (P, T), got shape {x.shape}")


def _out(values: list[Any], single: bool) -> Any:
    return values[0] if single else values


def above_threshold(errors: ArrayLike, criterion: SuccessCriterion | None = None) -> NDArray:
    """True where the moving sum of |e| is at or above the threshold (or NaN), from
    ``first_start`` on; False before (those steps are not judged). Time on the last axis."""
    crit = criterion or SuccessCriterion()
    e = np.asarray(errors, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        above = ~(moving_sum(np.abs(e), crit.window) < crit.threshold)
    above[..., : crit.first_start] = False
    return above


def settle_span(n_steps: int, criterion: SuccessCriterion | None = None) -> int:
    """Steps the settling window judges in a run of ``n_steps``: the last ``settle_window``,
    clipped to the steps from ``first_start`` on (0 when the run never got there)."""
    crit = criterion or SuccessCriterion()
    return max(0, min(crit.settle_window, n_steps - crit.first_start))


def settled_step(errors: ArrayLike, criterion: SuccessCriterion | None = None) -> Any:
    """The first step from which the moving sum of |e| stays below the threshold to the end.

    ``errors`` ``(T,)`` -> ``int | None``; ``(P, T)`` -> a list of them. None when the moving
    sum is above the threshold at the last step (or the run ended before ``first_start``).
    """
    crit = criterion or SuccessCriterion()
    e, single = _rows(np.asarray(errors, dtype=np.float64), "errors")
    above = above_threshold(e, crit)
    n = e.shape[1]
    out: list[int | None] = []
    for row in above:
        if n <= crit.first_start or row[-1]:
            out.append(None)
            continue
        bad = np.flatnonzero(row)
        out.append(int(bad[-1] + 1) if bad.size else crit.first_start)
    return _out(out, single)


def above_threshold_fraction(errors: ArrayLike, criterion: SuccessCriterion | None = None) -> Any:
    """Fraction of the settling window's steps (see :func:`settle_span`) above threshold.

    ``(T,)`` -> ``float | None`` (None: nothing to judge); ``(P, T)`` -> a list.
    """
    crit = criterion or SuccessCriterion()
    e, single = _rows(np.asarray(errors, dtype=np.float64), "errors")
    span = settle_span(e.shape[1], crit)
    if span == 0:
        return _out([None] * e.shape[0], single)
    above = above_threshold(e, crit)[:, -span:]
    return _out([float(v) for v in above.mean(axis=1)], single)


def settled(errors: ArrayLike, criterion: SuccessCriterion | None = None) -> Any:
    """Whether the run settled: its settling window is non-empty and never above threshold.

    ``(T,)`` -> bool; ``(P, T)`` -> a list of bools.
    """
    frac = above_threshold_fraction(errors, criterion)
    fracs = frac if isinstance(frac, list) else [frac]
    out = [f is not None and f == 0.0 for f in fracs]
    return out if isinstance(frac, list) else out[0]


def relapses(errors: ArrayLike, criterion: SuccessCriterion | None = None) -> Any:
    """How often the moving sum went back above the threshold after the first success
    (the start of the first successful stretch, :func:`steps_to_success`); None if none.

    ``(T,)`` -> ``int | None``; ``(P, T)`` -> a list.
    """
    crit = criterion or SuccessCriterion()
    e, single = _rows(np.asarray(errors, dtype=np.float64), "errors")
    above = above_threshold(e, crit)
    out: list[int | None] = []
    for row, ok in zip(above, success_mask(e, crit), strict=True):
        start = _first_run_start(ok, crit.hold)
        if start is None:
            out.append(None)
            continue
        tail = row[start:]
        out.append(int(np.count_nonzero(tail[1:] & ~tail[:-1])))
    return _out(out, single)


# ---------------------------------------------------------------------- steering


def steering_max(readout: Sequence[float], activation: str) -> float | None:
    """The largest |y| the readout can produce: ``sum_k |readout_k| * max|f|`` (None for an
    unbounded output activation, e.g. linear)."""
    bound = OUTPUT_BOUND.get(activation)
    if bound is None:
        return None
    return float(np.sum(np.abs(np.asarray(readout, dtype=np.float64)))) * bound


def steering_flips_per_1000(steering: ArrayLike, span: int | None = None) -> Any:
    """Sign changes of the steering y per 1,000 steps, over the last ``span`` steps (all by
    default). Exact zeros are skipped, so a pass through 0 counts once and y = 0 throughout
    (the reflex alone) gives 0.

    ``(T,)`` -> ``float | None`` (None for fewer than 2 steps); ``(P, T)`` -> a list.
    """
    y, single = _rows(np.asarray(steering, dtype=np.float64), "steering")
    n = y.shape[1] if span is None else min(int(span), y.shape[1])
    if n < 2:
        return _out([None] * y.shape[0], single)
    out: list[float | None] = []
    for row in np.sign(y[:, -n:]):
        s = row[row != 0]
        flips = int(np.count_nonzero(s[1:] != s[:-1]))
        out.append(1000.0 * flips / (n - 1))
    return _out(out, single)


def saturated_steering_fraction(
    steering: ArrayLike,
    y_max: float | None,
    span: int | None = None,
    level: float = STEERING_SATURATION,
) -> Any:
    """Fraction of the last ``span`` steps (all by default) with ``|y| > level * y_max``.

    ``(T,)`` -> ``float | None`` (None without a bound ``y_max`` or without steps);
    ``(P, T)`` -> a list.
    """
    y, single = _rows(np.asarray(steering, dtype=np.float64), "steering")
    n = y.shape[1] if span is None else min(int(span), y.shape[1])
    if y_max is None or n == 0:
        return _out([None] * y.shape[0], single)
    sat = np.abs(y[:, -n:]) > level * y_max
    return _out([float(v) for v in sat.mean(axis=1)], single)


# ---------------------------------------------------------------------- dead units


def layer_saturation(
    slopes: Sequence[ArrayLike], slope_at_zero: float, level: float = SATURATION_SLOPE
) -> NDArray[np.float64]:
    """Per weight layer, the fraction of units whose slope ``|f'(h)|`` is below
    ``level * slope_at_zero``: slopes ``[(P, n_l)] * L`` -> ``(P, L)``."""
    if not slopes:
        raise ValueError("layer_saturation needs at least one layer of slopes")
    cut = level * slope_at_zero
    cols = [np.mean(np.abs(np.asarray(s, dtype=np.float64)) < cut, axis=-1) for s in slopes]
    return np.stack(cols, axis=-1)


def dead_units(saturated: ArrayLike, span: int = DEAD_SPAN) -> Any:
    """Per layer, the smallest saturated fraction over the last ``span`` steps.

    ``saturated`` ``(T, L)`` -> a list of L floats (None for an empty run); ``(P, T, L)`` -> a
    list of those per agent. See the module docstring for what the number bounds.
    """
    s = np.asarray(saturated, dtype=np.float64)
    single = s.ndim == 2
    if single:
        s = s[None]
    if s.ndim != 3:
        raise ValueError(f"saturated must be (T, L) or (P, T, L), got shape {s.shape}")
    if span < 1:
        raise ValueError(f"span must be >= 1, got {span}")
    n = min(int(span), s.shape[1])
    out = [None if n == 0 else [float(v) for v in row[-n:].min(axis=0)] for row in s]
    return out[0] if single else out


def dead_layers(dead: Sequence[float] | None) -> int | None:
    """Number of layers that were wholly saturated (``dead_units == 1``)."""
    return None if dead is None else int(sum(1 for v in dead if v >= 1.0))


def summarise_settling(
    errors: ArrayLike,
    steering: ArrayLike | None = None,
    saturated: ArrayLike | None = None,
    criterion: SuccessCriterion | None = None,
    y_max: float | None = None,
) -> dict[str, Any]:
    """The stricter summary numbers of one agent (1-D traces; ``saturated`` ``(T, L)``).

    Returns ``settled_step``, ``settled``, ``settle_window`` (the steps judged, after
    clipping), ``above_threshold_fraction``, ``relapses``, ``steering_flips_per_1000``,
    ``saturated_steering_fraction`` (both over the last ``min(settle_window, T)`` steps),
    ``dead_units`` (per layer) and ``dead_layers``; see the module docstring.
    """
    crit = criterion or SuccessCriterion()
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"errors must be 1-D (T,), got shape {e.shape}")
    n = e.size
    span = min(crit.settle_window, n)
    y = np.zeros(n) if steering is None else np.asarray(steering, dtype=np.float64)
    if y.shape != e.shape:
        raise ValueError(f"steering must match errors {e.shape}, got {y.shape}")
    dead = None
    if saturated is not None and np.asarray(saturated).ndim == 2:
        sat = np.asarray(saturated)
        if sat.shape[0] != n:
            raise ValueError(f"saturated must be ({n}, L), got {sat.shape}")
        dead = dead_units(sat) if sat.shape[1] else None
    return {
        "settled_step": settled_step(e, crit),
        "settled": settled(e, crit),
        "settle_window": settle_span(n, crit),
        "above_threshold_fraction": above_threshold_fraction(e, crit),
        "relapses": relapses(e, crit),
        "steering_flips_per_1000": steering_flips_per_1000(y, span) if n else None,
        "saturated_steering_fraction": saturated_steering_fraction(y, y_max, span),
        "dead_units": dead,
        "dead_layers": dead_layers(dead),
    }


__all__ = [
    "DEAD_SPAN",
    "DEFAULT_SETTLE_WINDOW",
    "SATURATION_SLOPE",
    "STEERING_SATURATION",
    "SuccessCriterion",
    "above_threshold",
    "above_threshold_fraction",
    "dead_layers",
    "dead_units",
    "layer_saturation",
    "mean_abs",
    "moving_mean",
    "moving_sum",
    "relapses",
    "saturated_steering_fraction",
    "settle_span",
    "settled",
    "settled_step",
    "steering_flips_per_1000",
    "steering_max",
    "steps_to_success",
    "steps_to_success_all",
    "success_confirmed_at",
    "success_mask",
    "summarise_errors",
    "summarise_settling",
]
