"""Floating-point policy shared by the numpy reference and the compiled engine.

**Flushing decaying states.** A state that decays geometrically once its input stops (a filter
bank's resonators when a predictor leaves the line, the relevance low-pass and running mean of
|e| when the error is 0) reaches the subnormal range after a few hundred steps. On Intel cores
every multiply that touches a subnormal number takes a slow microcode path (the layer-0 dot
products become ~20x slower), on AMD cores hardly at all. Instead of relying on the CPU's
flush-to-zero flags (not portable, not reachable from numpy, and they would change every
operation), both loops set such states to exactly 0 once ``|y| < sqrt(tiny)`` of their dtype
(1.5e-154 in float64, 1.1e-19 in float32), right after each update:

- the threshold lies far below anything the loop can resolve (the states feed weighted sums
  whose other terms are O(1e-3) or larger), so flushing changes results only where a value
  would anyway have been lost below the last bit, and the two loops flush identically;
- the product of two values that survive the flush is at least ``tiny``, so no product of
  states, weights and inputs of normal size can become subnormal either.

**One error-state policy at each loop boundary.** Inside a loop (:meth:`ClosedLoop.run` and
``step``, :meth:`FastClosedLoop.run` and ``step_agents``, a rule's step, the forward pass, the
weight-change read-out) overflow and invalid operations are not warnings: a diverging network
produces inf/NaN, which the loop detects itself and reports as
:class:`~sarlearn.errors.DivergenceError` naming the stage (forward pass, a layer's update, the
steering command). :func:`loop_errstate` is that policy, used at every such boundary.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


def flush_threshold(dtype: Any) -> float:
    """``sqrt(tiny)`` of ``dtype``: states with a smaller magnitude are set to exactly 0."""
    return float(np.sqrt(np.finfo(np.dtype(dtype)).tiny))


def flush_small(a: NDArray[np.floating]) -> None:
    """Set the entries of ``a`` with ``|a| < flush_threshold(a.dtype)`` to exactly +0, in place."""
    a[np.abs(a) < flush_threshold(a.dtype)] = 0.0


#: numpy's error state inside a loop: non-finite values are detected and raised explicitly.
LOOP_ERRSTATE: dict[str, str] = {"over": "ignore", "invalid": "ignore", "divide": "ignore"}


def loop_errstate() -> np.errstate:
    """``np.errstate`` of :data:`LOOP_ERRSTATE` (a context manager)."""
    return np.errstate(**LOOP_ERRSTATE)  # type: ignore[arg-type]


__all__ = ["LOOP_ERRSTATE", "flush_small", "flush_threshold", "loop_errstate"]
