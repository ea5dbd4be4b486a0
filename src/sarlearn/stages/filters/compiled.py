"""Compiled filter stage: one sample of an agent's filter bank.

Numpy twin: :meth:`sarlearn.stages.filters.bank.ResonatorBank.filter` and
:meth:`sarlearn.stages.filters.bank.DelayLineBank.filter` (same recurrence, same order, same
flush)."""

from __future__ import annotations

import numpy as np
from numba import njit

from sarlearn.stages.codes import (
    FILTER_DELAY,
)


@njit(cache=True, inline="always")
def predictor(src, row, col, k, mirror_row):
    """Predictor k from the sensor readings src[row, col:]: the reading itself
    (``mirror_row == 0``), or, for rows of ``mirror_row`` sensors, the k-th left/right mirror
    difference (``perception.row_predictors``: row k // half, pair k % half,
    outermost first)."""
    if mirror_row == 0:
        return src[row, col + k]
    half = mirror_row // 2
    base = col + (k // half) * mirror_row
    j = k % half
    return src[row, base + j] - src[row, base + mirror_row - 1 - j]


@njit(cache=True, inline="always")
def filter_step(p, src, row, col, switches, fcoef, fy1, fy2, fu1, fux, flush, zero, mirror_row):
    """Advance agent p's filter bank by one sample of the predictors src[row, col:] (or of
    their mirror differences over rows of ``mirror_row`` sensors, see :func:`predictor`).

    ``fy1`` (predictor-major, like the bank's output) is then the network input x_{-1}. The
    resonators run as one contiguous loop over all ``n_pred * n_filters`` states (it
    vectorises): their coefficients ``fcoef`` (4, N) and the previous input ``fu1`` (P, N) are
    stored expanded to one entry per state, and ``fux`` (P, N) holds this step's input, so
    expanded. States below ``flush`` in magnitude become exactly 0 (``sarlearn.numerics``).
    """
    U = np.uint64
    n_f = U(switches.n_filters)
    n_pred = U(switches.n_pred)
    one = U(1)
    if switches.filter_kind == FILTER_DELAY:
        for k in range(n_pred):
            b = k * n_f
            for f in range(n_f - one):
                q = b + n_f - one - f
                fy1[p, q] = fy1[p, q - one]
            fy1[p, b] = predictor(src, row, col, k, mirror_row)  # the store casts
        return
    for k in range(n_pred):
        fux[p, k * n_f] = predictor(src, row, col, k, mirror_row)  # u[n], cast to dtype
        u = fux[p, k * n_f]
        for f in range(one, n_f):
            fux[p, k * n_f + f] = u
    for q in range(n_pred * n_f):
        # tmp = c1 y1 - c2 y2 + b0 u + b1 u1  (ResonatorBank.filter, same order)
        y = fcoef[2, q] * fy1[p, q]
        y -= fcoef[3, q] * fy2[p, q]
        y += fcoef[0, q] * fux[p, q]
        y += fcoef[1, q] * fu1[p, q]
        if abs(y) < flush:
            y = zero
        fy2[p, q] = fy1[p, q]
        fy1[p, q] = y
        fu1[p, q] = fux[p, q]
