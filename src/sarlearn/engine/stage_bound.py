"""Compiled hidden-layer weight bound (``rule.hidden_weight_bound``, issue 9).

Numpy twin: the ``hidden_bound`` of :meth:`sarlearn.rules.base.LearningRule._bounded_layer`:
after the rule's step (and its own ``weight_bound``), every row of the hidden layers (all but
the output layer) whose L2 norm exceeds the bound is scaled back onto it. The kernel calls it
after :func:`sarlearn.engine.stage_learn.learn` whenever the weights may have changed (a
non-zero error, or the first step of a chunk, after which the weights may have been set
from outside); with e = 0 the rule changes nothing, so the rows are still inside."""

from __future__ import annotations

import math

from numba import njit

from sarlearn.engine.stage_forward import dot


@njit(cache=True, inline="always")
def bound_hidden(p, switches, consts, sizes, woff, W, tmp, zero):
    """Scale agent p's hidden rows with ||w|| > bound back onto the bound (in place)."""
    c_b = consts.hidden_bound
    for li in range(switches.n_layers - 1):
        nin = sizes[li]
        for i in range(sizes[li + 1]):
            row = woff[li] + i * nin
            n2 = dot(W, p, row, W, p, row, nin, zero)
            if n2 > c_b * c_b:
                tmp[p, 0] = c_b / math.sqrt(n2)  # in the weights' dtype, as numpy's factor
                f = tmp[p, 0]
                for j in range(nin):
                    W[p, row + j] = W[p, row + j] * f
