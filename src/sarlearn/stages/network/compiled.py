"""Compiled forward stage: activations, the vectorised sums and the forward pass of one agent.

Numpy twins: :mod:`sarlearn.stages.network.activations` and
:meth:`sarlearn.stages.network.network.Network.forward`."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sarlearn.stages.codes import (
    ACT_LOGISTIC,
    ACT_TANH,
    STATUS_OK,
    STATUS_OUTPUT_NONFINITE,
    STATUS_STEERING_NONFINITE,
)


@njit(cache=True, inline="always")
def sign_of(x, one, zero):
    # numpy's sign with sign(0) = 0 (NaN maps to 0 here; a NaN is caught as divergence anyway).
    if x > 0:
        return one
    if x < 0:
        return -one
    return zero


@njit(cache=True, inline="always")
def tanh_sat(x, sat, one):
    """tanh(x), saturating to exactly +-1 where numpy's own tanh does (|x| >= sat).

    Below that, tanh(|x|) = 1 - 2 / (exp(2|x|) + 1) for |x| > 0.625, and -m / (m + 2) with
    m = expm1(-2|x|) nearer 0 (accurate where the first form would cancel). That is the C
    library's own recipe less its call overhead, and twice as fast; it is within 3 ulp of
    numpy's tanh, as the C library's tanh is (tests/test_engine_activation.py). An ulp does
    not matter, except where it decides whether f'(h) is exactly 0 or about 1e-16, i.e.
    whether a saturated neuron's sign is 0 or +-1 in the sign-based rules, so the saturation
    point is copied from numpy. (In float32 both this and the C library's tanhf reach 1 a
    little before numpy's point, near |x| = 9 instead of 10.)
    """
    if x >= sat:
        return one
    if x <= -sat:
        return -one
    two = one + one
    ax = abs(x)
    if ax > 0.625:
        t = one - two / (math.exp(ax + ax) + one)
    else:
        m = math.expm1(-(ax + ax))
        t = -m / (m + two)
    return t if x >= 0 else -t


@njit(cache=True, inline="always")
def activate(h, act, half, one, sat):
    """(f(h), f'(h)) exactly as ``sarlearn.stages.network.activations`` computes them."""
    if act == ACT_LOGISTIC:
        f = tanh_sat(h * half, sat, one) * half
        return f, (half - f) * (half + f)
    if act == ACT_TANH:
        f = tanh_sat(h, sat, one)
        return f, (one - f) * (one + f)
    return h, one


# Hot loops index with unsigned offsets: numba then emits no negative-index wrap-around, so
# LLVM sees plain contiguous loops and vectorises them, and no array views are created (a view
# would touch the parent array's shared reference count, which both threads would fight over).
# Mixing uint64 with int64 would give float64 in numba, so every offset below is uint64.


@njit(cache=True, fastmath={"reassoc"})
def dot(A, p, a, B, q, b, n, zero):
    """sum_j A[p, a + j] B[q, b + j], j < n.

    The one reduction that may be reordered (fastmath "reassoc" and nothing else): it is the
    sum of a matrix product, whose order numpy leaves to BLAS as well. LLVM inlines it with its
    flags, so the sum vectorises while every other operation of the kernel stays exact.
    """
    acc = zero
    for j in range(n):
        acc += A[p, a + j] * B[q, b + j]
    return acc


@njit(cache=True, fastmath={"reassoc"})
def nonfinite(A, p, a, n, zero):
    """Whether any A[p, a + j], j < n, is NaN or inf (w * 0 is 0 for finite w, else NaN)."""
    acc = zero
    for j in range(n):
        acc += A[p, a + j] * zero
    return not np.isfinite(acc)


@njit(cache=True, fastmath={"reassoc"})
def sqdist(A, B, p, a, n):
    """sum_j (A[p, a + j] - B[p, a + j])^2, j < n, accumulated in float64."""
    acc = 0.0
    for j in range(n):
        d = float(A[p, a + j] - B[p, a + j])
        acc += d * d
    return acc


@njit(cache=True, inline="always")
def forward_layer(W, p, wo, X, xo, H, ho, nin, nout, zero):
    """H[p, ho + i] = sum_j W_l[i, j] X[p, xo + j]; W_l (n_out, n_in) flat at W[p, wo:]."""
    for i in range(nout):
        H[p, ho + i] = dot(W, p, wo + i * nin, X, p, xo, nin, zero)


@njit(cache=True, inline="always")
def cap_input(p, fy1, n, c, zero, tmp, xo):
    """:func:`sarlearn.stages.network.network.cap_input_norm` of agent p's input ``fy1[p, :n]``:
    if its squared norm exceeds c^2, write it scaled onto norm c to ``tmp[p, xo:xo + n]`` and
    return True (then the network reads its input there), else return False (it reads
    ``fy1``)."""
    n2 = dot(fy1, p, np.uint64(0), fy1, p, np.uint64(0), n, zero)
    if n2 > c * c:
        tmp[p, 0] = c / math.sqrt(n2)  # in the dtype, as numpy's factor
        f = tmp[p, 0]
        for j in range(n):
            tmp[p, xo + j] = fy1[p, j] * f
        return True
    return False


@njit(cache=True, inline="always")
def forward(p, switches, consts, fy1, x0o, sizes, woff, noff, W, bias, hbuf, post, slope, readout):
    """Forward pass of agent p on its input ``fy1[p, x0o:]`` (the filter outputs, or their
    capped copy); returns (status, steering y).

    The per-step helpers are inlined into the kernels (``inline="always"``): a real call
    would take and drop references to every array argument, atomic operations on reference
    counts shared by all agents, which the threads would then fight over.
    """
    zero, one, half, sat = consts.zero, consts.one, consts.half, consts.tanh_sat
    L = switches.n_layers
    act = switches.act
    has_bias = switches.has_bias != 0
    for li in range(L):
        nout = sizes[li + 1]
        o = noff[li]
        if li == 0:
            forward_layer(W, p, woff[0], fy1, x0o, hbuf, o, sizes[0], nout, zero)
        else:
            forward_layer(W, p, woff[li], post, noff[li - 1], hbuf, o, sizes[li], nout, zero)
        for i in range(nout):
            h = hbuf[p, o + i]
            if has_bias:
                h += bias[p, o + i]
                hbuf[p, o + i] = h
            f, s = activate(h, act, half, one, sat)
            post[p, o + i] = f
            slope[p, o + i] = s
    oo = noff[L - 1]
    n_out = sizes[L]
    for k in range(n_out):
        if not np.isfinite(post[p, oo + k]):
            return STATUS_OUTPUT_NONFINITE, zero
    y_net = zero
    for k in range(n_out):
        y_net += post[p, oo + k] * readout[k]
    if not np.isfinite(y_net):
        return STATUS_STEERING_NONFINITE, y_net
    return STATUS_OK, y_net
