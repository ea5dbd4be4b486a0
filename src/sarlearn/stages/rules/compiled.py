"""Compiled learning stage: the relevance filters, the teaching signals of the rule's recipe
(where the sign is taken, what carries the signal back) and the update of one agent.

Numpy twins: :class:`sarlearn.stages.rules.relevance.Relevance`, the rule classes of
:mod:`sarlearn.stages.rules` (their recipes in :mod:`sarlearn.recipes`) and
:meth:`sarlearn.stages.rules.base.LearningRule.step`."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from sarlearn.stages.codes import (
    CARRY_DIRECT,
    CARRY_FEEDBACK,
    CARRY_NONE,
    CARRY_WEIGHT_SIGNS,
    SIGN_LOCAL,
    SIGN_OUTPUT,
    SIGN_PATH,
    STATUS_OK,
    STATUS_WEIGHTS_NONFINITE,
)
from sarlearn.stages.network.compiled import dot, forward_layer, nonfinite, sign_of


@njit(cache=True, fastmath={"reassoc"})
def add_scaled_norm(W, p, row, X, xo, n, a, zero):
    """W[p, row + j] += a * X[p, xo + j], j < n (one row of the rule's (lr d) x^T, added);
    returns the new row's squared norm, found in the same pass.

    Each weight is rounded as numpy rounds it; only the sum of squares may be reordered (as in
    :func:`~sarlearn.stages.network.compiled.dot`). The bound then needs no second pass over the
    row to find its norm, and the finiteness check none either."""
    acc = zero
    for j in range(n):
        v = W[p, row + j] + a * X[p, xo + j]
        W[p, row + j] = v
        acc += v * v
    return acc


def hidden_bound_fan_in(scaling: str) -> float:
    """The engine's ``hidden_bound_fan_in`` constant for a ``hidden_bound_scaling``: 0 for
    'none', the calibration fan-in for 'fan-in' (layers fed by hidden units), minus it for
    'fan-in-all' (the first hidden layer too; :func:`layer_bound`)."""
    from sarlearn.stages.rules.base import HIDDEN_BOUND_FAN_IN

    sign = {"none": 0.0, "fan-in": 1.0, "fan-in-all": -1.0}[scaling]
    return sign * float(HIDDEN_BOUND_FAN_IN)


@njit(cache=True, inline="always")
def layer_bound(li, L, nin, use_b, c_b, use_h, c_h, fan_in0, tmp, p):
    """(bounded, c): whether layer li (fan-in ``nin``) has bounded rows, and onto which norm.

    The hidden bound of a hidden layer is ``c_h``, or with fan-in scaling (``fan_in0`` > 0) on
    a layer fed by hidden units ``c_h * sqrt(fan_in0 / nin)``, computed in float64 and stored
    in the weights' dtype (``LearningRule.hidden_bound_of``); a negative ``fan_in0`` (scaling
    'fan-in-all') scales the first hidden layer too, from ``-fan_in0``. With both bounds,
    scaling onto ``weight_bound`` and then onto the hidden bound is scaling onto the smaller of
    the two (``LearningRule._bounded_layer``)."""
    if not (use_h and li < L - 1):
        return use_b, c_b
    c_hl = c_h
    if fan_in0 != 0 and (li != 0 or fan_in0 < 0):
        tmp[p, 0] = float(c_h) * math.sqrt(abs(float(fan_in0)) / nin)
        c_hl = tmp[p, 0]
    if use_b:
        return True, min(c_b, c_hl)
    return True, c_hl


@njit(cache=True, inline="always")
def scale_row(W, p, row, nin, n2, c, tmp, inside, k):
    """Scale the row of squared norm n2 onto ||w|| = c if it lies outside (``_bounded``).

    ``inside[p, k]`` records whether it was found inside (then it is unchanged, and checking
    it again before it next changes would change nothing)."""
    if n2 > c * c:
        tmp[p, 0] = c / math.sqrt(n2)  # in the weights' dtype, as numpy's factor
        f = tmp[p, 0]
        for j in range(nin):
            W[p, row + j] = W[p, row + j] * f
        inside[p, k] = 0
    else:
        inside[p, k] = 1


@njit(cache=True, inline="always")
def learn(
    p,
    e64,
    count,
    decay64,
    switches,
    consts,
    fy1,
    x0o,
    sizes,
    woff,
    noff,
    W,
    bias,
    post,
    slope,
    sig,
    rfw,
    tmp,
    lr,
    rel_m,
    rel_n,
    fb,
    boff,
    readout,
    inside,
):
    """One rule step of agent p after :func:`forward`, with the closed-loop error e64; the
    first layer's input is ``fy1[p, x0o:]`` (as in :func:`forward`).

    With a bound, ``inside[p, k]`` is 1 while neuron k's incoming weights are unchanged
    since a check found them within the bound: checking them again would change nothing, so
    such rows are skipped (bit-identical), which keeps a step with ``e = 0`` cheap.

    ``count`` is the relevance's step count after this step (for the normalisation's bias
    correction). Returns (status, layer): the first layer that became non-finite, if any.
    """
    zero, one = consts.zero, consts.one
    c_low, c_1low, c_gain = consts.lowpass, consts.one_minus_lowpass, consts.gain
    c_dec, c_1dec, c_eps = consts.decay, consts.one_minus_decay, consts.eps
    L = switches.n_layers
    sign_at = switches.sign_at
    carrier = switches.carrier
    uses_rel = switches.uses_rel != 0
    rel_forward = switches.rel_forward != 0
    normalise = switches.normalise != 0
    has_bias = switches.has_bias != 0
    n_out = sizes[L]
    n_neurons = noff[L]
    oo = noff[L - 1]
    sign_out = sign_at in (SIGN_OUTPUT, SIGN_PATH)
    sign_hidden = sign_at == SIGN_PATH

    tmp[p, 0] = e64  # the store casts e to the dtype, as the rule does
    E = tmp[p, 0]
    absE = abs(E)
    r = one
    if uses_rel:
        # Relevance.__call__: m = a m + (1 - a)|e|; n = d n + (1 - d)|e|; r = g m [/ n_hat]
        flush = consts.flush
        m = rel_m[p] * c_low
        m += c_1low * absE
        if abs(m) < flush:
            m = zero  # decayed to (almost) nothing: exactly 0 (sarlearn.numerics)
        rel_m[p] = m
        if normalise:
            nn = rel_n[p] * c_dec
            nn += c_1dec * absE
            if abs(nn) < flush:
                nn = zero
            rel_n[p] = nn
        r = c_gain * m
        if normalise:
            tmp[p, 0] = 1.0 - math.pow(decay64, float(count))
            mean = rel_n[p] / tmp[p, 0]
            r = r / max(mean, c_eps)
        if switches.has_rel_cap != 0:
            r = min(r, consts.rel_cap)  # a bounded step

    use_b = switches.has_weight_bound != 0
    use_h = switches.has_hidden_weight_bound != 0
    c_b, c_h = consts.weight_bound, consts.hidden_weight_bound
    fan_in0 = consts.hidden_bound_fan_in
    bounded = use_b or use_h
    if E == 0:
        # Every rule's teaching signals are then exactly 0 (E or sign(E) is a factor of each),
        # so the update would add exact zeros: skip it (bit-identical). The bounds still
        # rescale the rows not known to be inside them.
        if bounded:
            for li in range(L):
                nin = sizes[li]
                bl, c_l = layer_bound(li, L, nin, use_b, c_b, use_h, c_h, fan_in0, tmp, p)
                if not bl:
                    continue
                for i in range(sizes[li + 1]):
                    k = noff[li] + i
                    if inside[p, k] == 0:
                        row = woff[li] + i * nin
                        n2 = dot(W, p, row, W, p, row, nin, zero)
                        scale_row(W, p, row, nin, n2, c_l, tmp, inside, k)
        return STATUS_OK, -1

    # teaching signals of every layer, top-down (sig: d_l, or s_l before the relevance)
    if carrier == CARRY_NONE:  # the global error broadcast to every neuron
        gs = sign_of(E, one, zero)
        for k in range(n_neurons):
            if rel_forward:
                sig[p, k] = gs * sign_of(slope[p, k], one, zero)
            else:
                sig[p, k] = gs * r * slope[p, k]
    else:
        for i in range(n_out):
            v = E * slope[p, oo + i]
            if sign_out:
                v = sign_of(v, one, zero)
            sig[p, oo + i] = v
        for li in range(L - 2, -1, -1):
            o = noff[li]
            nl = sizes[li + 1]
            nu = sizes[li + 2]
            ou = noff[li + 1]
            if carrier == CARRY_DIRECT:
                # d_l = (B_l e) f'(h_l), e broadcast to every output; B_l (n_l, n_out)
                bo = boff[li]
                for j in range(nl):
                    acc = zero
                    for k in range(n_out):
                        acc += fb[p, bo + j * n_out + k] * E
                    sig[p, o + j] = acc * slope[p, o + j]
                continue
            # carry layer l+1's signal back: W_{l+1}^T d_{l+1}, or its stand-in
            if carrier == CARRY_FEEDBACK:
                bo = boff[li]  # B_{li+1}: (n_l, n_u)
                for j in range(nl):
                    tmp[p, j] = dot(fb, p, bo + j * nu, sig, p, ou, nu, zero)
            else:
                wo = woff[li + 1]  # W_{l+1}: (n_u, n_l)
                for j in range(nl):
                    tmp[p, j] = zero
                for k in range(nu):
                    c = sig[p, ou + k]
                    row = wo + k * nl
                    if carrier == CARRY_WEIGHT_SIGNS:
                        for j in range(nl):
                            tmp[p, j] += c * sign_of(W[p, row + j], one, zero)
                    else:
                        for j in range(nl):
                            tmp[p, j] += c * W[p, row + j]
            for j in range(nl):
                v = tmp[p, j] * slope[p, o + j]
                if sign_hidden:
                    v = sign_of(v, one, zero)
                sig[p, o + j] = v
        if sign_at == SIGN_LOCAL:
            for k in range(n_neurons):
                sig[p, k] = sign_of(sig[p, k], one, zero)

    # fold the relevance in
    if uses_rel:
        if rel_forward:
            # r_1 = |r f'(h_1)|, r_l = |(W_l r_{l-1}) f'(h_l)|
            for i in range(sizes[1]):
                rfw[p, i] = abs(r * slope[p, i])
            for li in range(1, L):
                o = noff[li]
                nout = sizes[li + 1]
                forward_layer(W, p, woff[li], rfw, noff[li - 1], rfw, o, sizes[li], nout, zero)
                for i in range(nout):
                    rfw[p, o + i] = abs(rfw[p, o + i] * slope[p, o + i])
            for k in range(n_neurons):
                sig[p, k] = rfw[p, k] * sig[p, k]
        elif carrier != CARRY_NONE:
            for k in range(n_neurons):
                sig[p, k] = r * sig[p, k]
    if switches.slope_gate != 0:
        # d_l * (f'(h_l) / f'(0)): a local size; the signs above travelled back alone
        c_inv0 = consts.inv_slope0
        for k in range(n_neurons):
            sig[p, k] = sig[p, k] * (slope[p, k] * c_inv0)
    if switches.output_share != 0:
        # output k's step times |readout_k| / max|readout|, after the backward path
        c_oinv = consts.inv_readout
        for k in range(n_out):
            sig[p, oo + k] = sig[p, oo + k] * (abs(readout[k]) * c_oinv)

    # apply: W_l += (d_l x_{l-1}^T) * lr_l, b_l += lr_l d_l; then bound and check finiteness
    for li in range(L):
        nin = sizes[li]
        bl, c_l = layer_bound(li, L, nin, use_b, c_b, use_h, c_h, fan_in0, tmp, p)
        nout = sizes[li + 1]
        o = noff[li]
        lrl = lr[p, li]
        wo = woff[li]
        xo = x0o if li == 0 else noff[li - 1]
        bad = False
        for i in range(nout):
            c = sig[p, o + i]
            if c == 0 and (not bl or inside[p, o + i] != 0):
                continue  # adding exact zeros (to a row inside the bound) changes nothing
            row = wo + i * nin
            a = lrl * c  # the rule's (lr d) x^T, same order
            # one pass: the update and the new row's squared norm, which is finite exactly
            # when every weight is, unless the squares overflow (then look at the weights)
            if c == 0:
                n2 = dot(W, p, row, W, p, row, nin, zero)  # unchanged, not known inside
            elif li == 0:
                n2 = add_scaled_norm(W, p, row, fy1, xo, nin, a, zero)
            else:
                n2 = add_scaled_norm(W, p, row, post, xo, nin, a, zero)
            if not np.isfinite(n2) and nonfinite(W, p, row, nin, zero):
                bad = True
            elif bl:
                scale_row(W, p, row, nin, n2, c_l, tmp, inside, o + i)
            if has_bias:
                bias[p, o + i] += a
                if not np.isfinite(bias[p, o + i]):
                    bad = True
        if bad:
            return STATUS_WEIGHTS_NONFINITE, li
    return STATUS_OK, -1
