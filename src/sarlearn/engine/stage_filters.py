"""Compiled filter stage: one sample of an agent's filter bank.

Numpy twin: :meth:`sarlearn.filters.ResonatorBank.filter` and
:meth:`sarlearn.filters.DelayLineBank.filter` (same recurrence, same order, same flush)."""

from __future__ import annotations

import numpy as np
from numba import njit

from sarlearn.engine.codes import (
    FILTER_DELAY,
)


@njit(cache=True, inline="always")
def filter_step(p, src, row, col, switches, fcoef, fy1, fy2, fu1, fux, flush, zero):
    """Advance agent p's filter bank by one sample of the predictors src[row, col:].

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
            fy1[p, b] = src[row, col + k]  # the store casts to the dtype
        return
    for k in range(n_pred):
        fux[p, k * n_f] = src[row, col + k]  # u[n] in the dtype (the store casts)
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
