"""Compiled (numba) kernels of the whole closed-loop step: world, sensors, filters, network,
learning rule, readout and motors, for a population of independent agents.

The maths is that of the readable numpy modules (``sarlearn.world``, ``sarlearn.filters``,
``sarlearn.network``, ``sarlearn.rules``, ``sarlearn.loop``), written out element by element in
the same order of floating-point operations wherever that order is defined by the reference
(elementwise formulas, the update ``W += (d x) * lr``, the filter recurrence, the exact-arc
kinematics, the bilinear lookup). Only the sums of the matrix products (forward pass, backward
path, forward relevance) are accumulated in a fixed sequential order where numpy's BLAS uses its
own blocking, so results agree with the reference up to summation order (about 1e-16 relative
per product). ``fastmath`` stays off: no reassociation, no fused multiply-add.

Memory layout (per agent, everything population-first):

- weights of all layers in one flat row ``W[p]``; layer ``l`` occupies
  ``woff[l] .. woff[l + 1]`` and is stored *transposed*, ``(n_in_l, n_out_l)`` row-major, so
  that the forward pass, the update and the forward relevance run over contiguous rows of
  ``n_out`` values (vectorisable without reordering any sum);
- per-neuron values (h, f(h), f'(h), teaching signals) of all layers in flat rows, layer ``l`` at
  ``noff[l] .. noff[l + 1]``;
- fixed feedback matrices (fa, dfa) in one flat row, in the reference's own layout.

Time blocking: agents are independent, so :func:`run_chunk` lets each thread advance one agent
``block`` steps at a time (``prange`` over agents). With ``block`` equal to the chunk length an
agent's weights stay in the core's cache for the whole chunk instead of streaming through
memory every step; ``block=1`` is strict lockstep.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

# -- codes shared with fast_loop.py -----------------------------------------------------------

#: Activations.
ACT_LOGISTIC, ACT_TANH, ACT_LINEAR = 0, 1, 2

#: Rules.
RULE_GDM = 0
RULE_SAR = 1
RULE_SAR_LOCAL = 2
RULE_SAR_EXACT = 3
RULE_SIGN_ONLY = 4
RULE_RELEVANCE_ONLY = 5
RULE_FA = 6
RULE_DFA = 7
RULE_SIGN_SYMMETRY = 8

#: Filter banks.
FILTER_RESONATOR, FILTER_DELAY = 0, 1

#: Per-agent status after a chunk.
STATUS_OK = 0
STATUS_OUTPUT_NONFINITE = 1  # the network's output (forward pass) became NaN/inf
STATUS_STEERING_NONFINITE = 2  # the readout became NaN/inf
STATUS_WEIGHTS_NONFINITE = 3  # a layer's weights became NaN/inf after an update

# Indices into the float64 world parameters ``wpar``.
W_INV, W_HEIGHT, W_UMAX, W_VMAX = 0, 1, 2, 3
W_SPEED, W_DT, W_AXLE, W_ERROR_GAIN, W_NET_GAIN = 4, 5, 6, 7, 8
W_WIDTH, W_LINE_SEEN = 9, 10
N_WPAR = 11

# Indices into the int64 parameters ``ipar``.
I_STRIDE, I_OFF_AFTER, I_N_LAYERS, I_ACT, I_RULE, I_FILTER = 0, 1, 2, 3, 4, 5
I_BIAS, I_LEARN, I_USES_REL, I_REL_FORWARD, I_NORMALISE, I_WEIGHTS_EVERY = 6, 7, 8, 9, 10, 11
I_RECORD_GROUND = 12
N_IPAR = 13

# Indices into the constants ``tpar``, stored in the agent's dtype: where the reference
# combines a Python float with a dtype array, numpy (NEP 50) casts the float to the dtype first.
T_ZERO, T_ONE, T_HALF = 0, 1, 2
T_LOWPASS, T_1_LOWPASS, T_GAIN, T_DECAY, T_1_DECAY, T_EPS, T_NET_GAIN = 3, 4, 5, 6, 7, 8, 9
N_TPAR = 10


@njit(cache=True, inline="always")
def _sign(x, one, zero):  # noqa: ANN001, ANN202 - numba generic
    # numpy's sign with sign(0) = 0 (NaN maps to 0 here; a NaN is caught as divergence anyway).
    if x > 0:
        return one
    if x < 0:
        return -one
    return zero


@njit(cache=True, inline="always")
def _lookup(img, stride, inv, height, umax, vmax, x, y):  # noqa: ANN001, ANN202
    """Bilinear darkness at (x, y): exactly ``Track._lookup`` (padded image, clamped)."""
    u = x * inv + 0.5
    v = (height - y) * inv + 0.5
    u = min(max(u, 0.0), umax)
    v = min(max(v, 0.0), vmax)
    j = int(u)
    i = int(v)
    fu = u - j
    fv = v - i
    k = i * stride + j
    top = img[k]
    top += (img[k + 1] - top) * fu
    k += stride
    bottom = img[k]
    bottom += (img[k + 1] - bottom) * fu
    top += (bottom - top) * fv
    return top


@njit(cache=True, inline="always")
def _sense(p, pose, ground, lost, img, sx, sy, wpar, ipar):  # noqa: ANN001, ANN202
    """Read every ground sensor at the current pose; update the lost-line counter."""
    stride = ipar[I_STRIDE]
    inv, height, umax, vmax = wpar[W_INV], wpar[W_HEIGHT], wpar[W_UMAX], wpar[W_VMAX]
    px, py, th = pose[p, 0], pose[p, 1], pose[p, 2]
    c = math.cos(th)
    s = math.sin(th)
    seen = False
    line_seen = wpar[W_LINE_SEEN]
    for k in range(sx.shape[0]):
        # GroundSensors._world_xy: x = px + c sx - s sy, y = py + s sx + c sy
        xw = px + c * sx[k] - s * sy[k]
        yw = py + s * sx[k] + c * sy[k]
        g = _lookup(img, stride, inv, height, umax, vmax, xw, yw)
        ground[p, k] = g
        if g > line_seen:
            seen = True
    if seen:
        lost[p] = 0
    else:
        lost[p] += 1


@njit(cache=True, inline="always")
def _sinc(x):  # noqa: ANN001, ANN202
    # np.sinc: y = pi * (x if x != 0 else 1e-20); sin(y) / y
    y = math.pi * (x if x != 0.0 else 1.0e-20)
    return math.sin(y) / y


@njit(cache=True, inline="always")
def _advance(p, pose, vl, vr, axle, dt):  # noqa: ANN001, ANN202
    """Exact-arc differential drive, exactly ``world.robot._advance``."""
    x, y, th = pose[p, 0], pose[p, 1], pose[p, 2]
    turn = (vr - vl) * (dt / axle)
    chord = (vr + vl) * (0.5 * dt) * _sinc(turn * (0.5 / math.pi))
    mid = th + 0.5 * turn
    pose[p, 0] = x + chord * math.cos(mid)
    pose[p, 1] = y + chord * math.sin(mid)
    # Python's float % has numpy's remainder semantics (sign of the divisor).
    pose[p, 2] = (th + turn + math.pi) % (2.0 * math.pi) - math.pi


@njit(cache=True, inline="always")
def _activate(h, act, half, one):  # noqa: ANN001, ANN202
    """(f(h), f'(h)) exactly as ``sarlearn.activations`` computes them."""
    if act == ACT_LOGISTIC:
        f = np.tanh(h * half) * half
        return f, (half - f) * (half + f)
    if act == ACT_TANH:
        f = np.tanh(h)
        return f, (one - f) * (one + f)
    return h, one


@njit(cache=True, inline="always")
def _forward_layer(p, l, W, woff, xin, xoff, nin, nout, out, ooff):  # noqa: ANN001, ANN202
    """out[ooff + i] = sum_j W_l[i, j] x[xoff + j] (sequential in j), transposed storage."""
    base = woff[l]
    for i in range(nout):
        out[p, ooff + i] = 0.0
    for j in range(nin):
        xj = xin[p, xoff + j]
        row = base + j * nout
        for i in range(nout):
            out[p, ooff + i] += W[p, row + i] * xj


@njit(cache=True)
def _agent_steps(  # noqa: PLR0912, PLR0915 - one control cycle written out on purpose
    p,
    t_first,
    t_last,
    t_global0,
    # world (shared)
    img,
    sx,
    sy,
    wpar,
    ipar,
    # world state (P, ...)
    pose,
    lost,
    ground,
    # filter bank
    fcoef,
    fy1,
    fy2,
    fu1,
    # network
    sizes,
    woff,
    noff,
    W,
    W0,
    bias,
    x0,
    hbuf,
    post,
    slope,
    sig,
    rfw,
    tmp,
    readout,
    # rule
    lr,
    tpar,
    rel_m,
    rel_n,
    rel_count0,
    decay64,
    fb,
    boff,
    # records (P, n)
    r_error,
    r_steer,
    r_left,
    r_right,
    r_x,
    r_y,
    r_head,
    r_off,
    r_sl,
    r_sr,
    r_ground,
    wc_out,
    # outputs
    info,
):  # noqa: ANN001, ANN202
    """Advance agent ``p`` over the chunk's steps ``t_first .. t_last - 1``.

    Returns a status code (``STATUS_*``); on failure ``info[p]`` holds (global step, layer).
    """
    zero, one, half = tpar[T_ZERO], tpar[T_ONE], tpar[T_HALF]
    c_low, c_1low, c_gain = tpar[T_LOWPASS], tpar[T_1_LOWPASS], tpar[T_GAIN]
    c_dec, c_1dec, c_eps, c_net = tpar[T_DECAY], tpar[T_1_DECAY], tpar[T_EPS], tpar[T_NET_GAIN]
    L = ipar[I_N_LAYERS]
    act = ipar[I_ACT]
    rule = ipar[I_RULE]
    n_pred = fy1.shape[1]
    n_f = fy1.shape[2]
    n_out = sizes[L]
    n_neurons = noff[L]
    every = ipar[I_WEIGHTS_EVERY]
    uses_rel = ipar[I_USES_REL] != 0
    rel_forward = ipar[I_REL_FORWARD] != 0
    normalise = ipar[I_NORMALISE] != 0
    has_bias = ipar[I_BIAS] != 0
    learning = ipar[I_LEARN] != 0
    record_ground = ipar[I_RECORD_GROUND] != 0
    delay = ipar[I_FILTER] == FILTER_DELAY
    gain64 = wpar[W_ERROR_GAIN]
    speed = wpar[W_SPEED]
    off_after = ipar[I_OFF_AFTER]
    width = wpar[W_WIDTH]
    height = wpar[W_HEIGHT]
    sign_out = rule == RULE_SAR or rule == RULE_SAR_EXACT or rule == RULE_SIGN_ONLY
    sign_hidden = rule == RULE_SAR or rule == RULE_SIGN_ONLY
    oo = noff[L - 1]

    for t in range(t_first, t_last):
        tg = t_global0 + t  # global step index
        # ---- sense (the reading was taken after the previous move) and record -------------
        gl = ground[p, 0]
        gr = ground[p, 1]
        e64 = gain64 * (gl - gr)
        xpos, ypos = pose[p, 0], pose[p, 1]
        r_x[p, t] = xpos
        r_y[p, t] = ypos
        r_head[p, t] = pose[p, 2]
        outside = (xpos < 0) or (xpos > width) or (ypos < 0) or (ypos > height)
        r_off[p, t] = outside or (lost[p] >= off_after)
        r_sl[p, t] = gl
        r_sr[p, t] = gr
        r_error[p, t] = e64
        if record_ground:
            for k in range(ground.shape[1]):
                r_ground[p, t, k] = ground[p, k]

        # ---- filter bank: x0 = bank.filter(predictors in the agent dtype) ------------------
        if delay:
            for k in range(n_pred):
                for f in range(n_f - 1, 0, -1):
                    fy1[p, k, f] = fy1[p, k, f - 1]
                fy1[p, k, 0] = ground[p, 2 + k]  # the store casts to the dtype
                for f in range(n_f):
                    x0[p, k * n_f + f] = fy1[p, k, f]
        else:
            for k in range(n_pred):
                u1 = fu1[p, k]
                fu1[p, k] = ground[p, 2 + k]  # u[n] in the dtype; u[n-1] kept in u1
                u = fu1[p, k]
                for f in range(n_f):
                    # tmp = c1 y1 - c2 y2 + b0 u + b1 u1  (ResonatorBank.filter, same order)
                    y = fcoef[2, f] * fy1[p, k, f]
                    y -= fcoef[3, f] * fy2[p, k, f]
                    y += fcoef[0, f] * u
                    y += fcoef[1, f] * u1
                    fy2[p, k, f] = fy1[p, k, f]
                    fy1[p, k, f] = y
                    x0[p, k * n_f + f] = y

        # ---- forward pass ---------------------------------------------------------------
        for l in range(L):
            nout = sizes[l + 1]
            o = noff[l]
            if l == 0:
                _forward_layer(p, 0, W, woff, x0, 0, sizes[0], nout, hbuf, o)
            else:
                _forward_layer(p, l, W, woff, post, noff[l - 1], sizes[l], nout, hbuf, o)
            for i in range(nout):
                h = hbuf[p, o + i]
                if has_bias:
                    h += bias[p, o + i]
                    hbuf[p, o + i] = h
                f, s = _activate(h, act, half, one)
                post[p, o + i] = f
                slope[p, o + i] = s
        for k in range(n_out):
            if not np.isfinite(post[p, oo + k]):
                info[p, 0] = tg
                info[p, 1] = L - 1
                return STATUS_OUTPUT_NONFINITE
        y_net = zero
        for k in range(n_out):
            y_net += post[p, oo + k] * readout[k]
        if not np.isfinite(y_net):
            info[p, 0] = tg
            info[p, 1] = L - 1
            return STATUS_STEERING_NONFINITE

        # ---- learning rule ----------------------------------------------------------------
        if learning:
            tmp[p, 0] = e64  # the store casts e to the dtype, as the rule does
            E = tmp[p, 0]
            absE = abs(E)
            r = one
            if uses_rel:
                m = rel_m[p] * c_low
                m += c_1low * absE
                rel_m[p] = m
                if normalise:
                    nn = rel_n[p] * c_dec
                    nn += c_1dec * absE
                    rel_n[p] = nn
                r = c_gain * m
                if normalise:
                    count = rel_count0 + (t - t_first) + 1
                    tmp[p, 0] = 1.0 - math.pow(decay64, float(count))
                    mean = rel_n[p] / tmp[p, 0]
                    r = r / max(mean, c_eps)
            # teaching signals of every layer, top-down (sig: d_l, or s_l before relevance)
            if rule == RULE_RELEVANCE_ONLY:
                gs = _sign(E, one, zero)
                for k in range(n_neurons):
                    if rel_forward:
                        sig[p, k] = gs * _sign(slope[p, k], one, zero)
                    else:
                        sig[p, k] = gs * r * slope[p, k]
            else:
                for i in range(n_out):
                    v = E * slope[p, oo + i]
                    if sign_out:
                        v = _sign(v, one, zero)
                    sig[p, oo + i] = v
                for l in range(L - 2, -1, -1):
                    o = noff[l]
                    nl = sizes[l + 1]
                    if rule == RULE_DFA:
                        # d_l = (B_l e) f'(h_l), e broadcast to every output; B_l (n_l, n_out)
                        b0 = boff[l]
                        for j in range(nl):
                            acc = zero
                            for k in range(n_out):
                                acc += fb[p, b0 + j * n_out + k] * E
                            sig[p, o + j] = acc * slope[p, o + j]
                        continue
                    # carry layer l+1's signal back through W_{l+1}^T (or its stand-in)
                    nu = sizes[l + 2]
                    ou = noff[l + 1]
                    base = woff[l + 1]
                    for j in range(nl):
                        acc = zero
                        if rule == RULE_FA:
                            row = boff[l] + j * nu  # B_{l+1}: (n_in, n_out) of layer l+1
                            for k in range(nu):
                                acc += fb[p, row + k] * sig[p, ou + k]
                        elif rule == RULE_SIGN_SYMMETRY:
                            row = base + j * nu
                            for k in range(nu):
                                acc += sig[p, ou + k] * _sign(W[p, row + k], one, zero)
                        else:
                            row = base + j * nu
                            for k in range(nu):
                                acc += sig[p, ou + k] * W[p, row + k]
                        v = acc * slope[p, o + j]
                        if sign_hidden:
                            v = _sign(v, one, zero)
                        sig[p, o + j] = v
                if rule == RULE_SAR_LOCAL:
                    for k in range(n_neurons):
                        sig[p, k] = _sign(sig[p, k], one, zero)
            # fold the relevance in
            if uses_rel:
                if rel_forward:
                    # r_1 = |r f'(h_1)|, r_l = |(W_l r_{l-1}) f'(h_l)|
                    for i in range(sizes[1]):
                        rfw[p, i] = abs(r * slope[p, i])
                    for l in range(1, L):
                        o = noff[l]
                        _forward_layer(
                            p, l, W, woff, rfw, noff[l - 1], sizes[l], sizes[l + 1], rfw, o
                        )
                        for i in range(sizes[l + 1]):
                            rfw[p, o + i] = abs(rfw[p, o + i] * slope[p, o + i])
                    for k in range(n_neurons):
                        sig[p, k] = rfw[p, k] * sig[p, k]
                elif rule != RULE_RELEVANCE_ONLY:
                    for k in range(n_neurons):
                        sig[p, k] = r * sig[p, k]
            # apply: W_l += (d_l x_{l-1}^T) * lr_l, b_l += lr_l d_l; then check finiteness
            for l in range(L):
                nout = sizes[l + 1]
                o = noff[l]
                any_nonzero = False
                for i in range(nout):
                    if sig[p, o + i] != 0:
                        any_nonzero = True
                if not any_nonzero:
                    continue  # adding exact zeros changes nothing
                lrl = lr[p, l]
                base = woff[l]
                for i in range(nout):
                    tmp[p, i] = zero
                for j in range(sizes[l]):
                    xj = x0[p, j] if l == 0 else post[p, noff[l - 1] + j]
                    row = base + j * nout
                    for i in range(nout):
                        w = W[p, row + i] + (sig[p, o + i] * xj) * lrl
                        W[p, row + i] = w
                        tmp[p, i] += w * zero  # stays 0 unless some w is NaN/inf
                bad = False
                for i in range(nout):
                    if has_bias:
                        bias[p, o + i] += lrl * sig[p, o + i]
                        tmp[p, i] += bias[p, o + i] * zero
                    if not np.isfinite(tmp[p, i]):
                        bad = True
                if bad:
                    info[p, 0] = tg
                    info[p, 1] = l
                    return STATUS_WEIGHTS_NONFINITE

        # ---- motors and world -------------------------------------------------------------
        r_steer[p, t] = y_net
        u_cmd = e64 + float(c_net * y_net)
        vl = speed - u_cmd
        vr = speed + u_cmd
        r_left[p, t] = vl
        r_right[p, t] = vr
        _advance(p, pose, vl, vr, wpar[W_AXLE], wpar[W_DT])
        _sense(p, pose, ground, lost, img, sx, sy, wpar, ipar)

        # ---- weight-change sample after every ``every``-th global step --------------------
        if (tg + 1) % every == 0:
            kk = (tg + 1) // every - t_global0 // every - 1
            for l in range(L):
                acc64 = 0.0
                for q in range(woff[l], woff[l + 1]):
                    dw = W[p, q] - W0[p, q]
                    acc64 += float(dw * dw)
                wc_out[p, kk, l] = math.sqrt(acc64)
    return STATUS_OK


@njit(cache=True, parallel=True)
def run_chunk(  # noqa: PLR0913
    n,
    block,
    t_global0,
    img,
    sx,
    sy,
    wpar,
    ipar,
    pose,
    lost,
    ground,
    fcoef,
    fy1,
    fy2,
    fu1,
    sizes,
    woff,
    noff,
    W,
    W0,
    bias,
    x0,
    hbuf,
    post,
    slope,
    sig,
    rfw,
    tmp,
    readout,
    lr,
    tpar,
    rel_m,
    rel_n,
    rel_count0,
    decay64,
    fb,
    boff,
    r_error,
    r_steer,
    r_left,
    r_right,
    r_x,
    r_y,
    r_head,
    r_off,
    r_sl,
    r_sr,
    r_ground,
    wc_out,
    status,
    info,
):  # noqa: ANN001, ANN201
    """Run ``n`` closed-loop steps for every agent; agents in parallel, ``block`` steps at a time.

    ``status[p]`` (``STATUS_*``) and ``info[p] = (global step, layer)`` report failures; a
    failed agent stops where it failed (its ``done`` step count is ``info[p, 0] - t_global0``).
    """
    P = pose.shape[0]
    for t0 in range(0, n, block):
        t1 = min(n, t0 + block)
        for p in prange(P):
            if status[p] != STATUS_OK:
                continue
            status[p] = _agent_steps(
                p, t0, t1, t_global0, img, sx, sy, wpar, ipar, pose, lost, ground,
                fcoef, fy1, fy2, fu1, sizes, woff, noff, W, W0, bias, x0, hbuf, post, slope,
                sig, rfw, tmp, readout, lr, tpar, rel_m, rel_n, rel_count0 + t0, decay64, fb,
                boff,
                r_error, r_steer, r_left, r_right, r_x, r_y, r_head, r_off, r_sl, r_sr,
                r_ground, wc_out, info,
            )  # fmt: skip
