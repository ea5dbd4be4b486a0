"""Compiled (numba) kernels of the whole closed-loop step: world, sensors, filters, network,
learning rule, readout and motors, for a population of independent agents.

The maths is that of the readable numpy modules (``sarlearn.world``, ``sarlearn.filters``,
``sarlearn.network``, ``sarlearn.rules``, ``sarlearn.loop``), written out element by element in
the same order of floating-point operations wherever the reference defines that order
(elementwise formulas, the update ``W += (d x) * lr``, the filter recurrence, the exact-arc
kinematics, the bilinear lookup, the relevance filters). Three things differ in the last bits:

- the sums of the matrix products (forward pass, backward path, forward relevance): numpy
  leaves their order to BLAS, the kernels let LLVM vectorise them (``_dot`` is the only code
  compiled with a fastmath flag, ``reassoc``; everything else is strict IEEE, no FMA);
- sin, cos and tanh come from the C library, numpy uses its own SIMD versions (a few ulp); the
  one place where an ulp changes a result qualitatively, tanh reaching exactly +-1 (a saturated
  neuron's slope is then exactly 0, and its sign too), copies numpy's saturation point;
- the weight-change read-out is accumulated in float64.

Memory layout (per agent, everything population-first, one row per agent):

- weights of all layers in one flat row ``W[p]``; layer ``l`` is its ``(n_out, n_in)`` matrix,
  row-major as in the reference, at ``woff[l] .. woff[l + 1]``;
- per-neuron values (h, f(h), f'(h), teaching signals) of all layers in flat rows, layer ``l``
  at ``noff[l] .. noff[l + 1]``;
- the filter bank's outputs ``fy1`` (predictor-major, as the bank returns them) double as the
  network's input;
- fixed feedback matrices (fa, dfa) in one flat row, in the reference's own layouts.

Time blocking: agents are independent, so :func:`run_chunk` lets each thread advance one agent
``block`` steps at a time (``prange`` over agents). With ``block`` equal to the chunk length an
agent's weights stay in the core's cache for the whole chunk instead of streaming through
memory every step; ``block=1`` is strict lockstep.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from sarlearn.metrics import SATURATION_SLOPE

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
STATUS_WHEELS_NONFINITE = 4  # e + G y overflowed: the simulator refuses such wheel speeds

# Indices into the float64 world parameters ``wpar``.
W_INV, W_HEIGHT, W_UMAX, W_VMAX = 0, 1, 2, 3
W_SPEED, W_DT, W_AXLE, W_ERROR_GAIN, W_NET_GAIN = 4, 5, 6, 7, 8
W_WIDTH, W_LINE_SEEN = 9, 10
N_WPAR = 11

# Indices into the int64 parameters ``ipar``.
I_STRIDE, I_OFF_AFTER, I_N_LAYERS, I_ACT, I_RULE, I_FILTER = 0, 1, 2, 3, 4, 5
I_BIAS, I_LEARN, I_USES_REL, I_REL_FORWARD, I_NORMALISE, I_WEIGHTS_EVERY = 6, 7, 8, 9, 10, 11
I_RECORD_GROUND, I_N_FILTERS = 12, 13
N_IPAR = 14

# Indices into the constants ``tpar``, stored in the agent's dtype: where the reference
# combines a Python float with a dtype array, numpy (NEP 50) casts the float to the dtype first.
T_ZERO, T_ONE, T_HALF = 0, 1, 2
T_LOWPASS, T_1_LOWPASS, T_GAIN, T_DECAY, T_1_DECAY, T_EPS, T_NET_GAIN = 3, 4, 5, 6, 7, 8, 9
T_TANH_SAT = 10
N_TPAR = 11


@njit(cache=True, inline="always")
def _sign(x, one, zero):
    # numpy's sign with sign(0) = 0 (NaN maps to 0 here; a NaN is caught as divergence anyway).
    if x > 0:
        return one
    if x < 0:
        return -one
    return zero


@njit(cache=True, inline="always")
def _lookup(img, stride, inv, height, umax, vmax, x, y):
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
def _sense(p, pose, ground, lost, img, sx, sy, wpar, ipar):
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
def _sinc(x):
    # np.sinc: y = pi * (x if x != 0 else 1e-20); sin(y) / y
    y = math.pi * (x if x != 0.0 else 1.0e-20)
    return math.sin(y) / y


@njit(cache=True, inline="always")
def _advance(p, pose, vl, vr, axle, dt):
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
def _tanh(x, sat, one):
    """tanh(x), saturating to exactly +-1 where numpy's own tanh does (|x| >= sat).

    numpy's SIMD tanh and the C library's (which numba calls) differ by a few ulp and reach
    exactly 1.0 at slightly different x. Elsewhere an ulp does not matter, but there it decides
    whether f'(h) is exactly 0 or about 1e-16, i.e. whether a saturated neuron's sign is 0 or
    +-1 in the sign-based rules, so the saturation point is copied from numpy.
    """
    if x >= sat:
        return one
    if x <= -sat:
        return -one
    return np.tanh(x)


@njit(cache=True, inline="always")
def _activate(h, act, half, one, sat):
    """(f(h), f'(h)) exactly as ``sarlearn.activations`` computes them."""
    if act == ACT_LOGISTIC:
        f = _tanh(h * half, sat, one) * half
        return f, (half - f) * (half + f)
    if act == ACT_TANH:
        f = _tanh(h, sat, one)
        return f, (one - f) * (one + f)
    return h, one


# Hot loops index with unsigned offsets: numba then emits no negative-index wrap-around, so
# LLVM sees plain contiguous loops and vectorises them, and no array views are created (a view
# would touch the parent array's shared reference count, which both threads would fight over).
# Mixing uint64 with int64 would give float64 in numba, so every offset below is uint64.


@njit(cache=True, fastmath={"reassoc"})
def _dot(A, p, a, B, q, b, n, zero):
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
def _nonfinite(A, p, a, n, zero):
    """Whether any A[p, a + j], j < n, is NaN or inf (w * 0 is 0 for finite w, else NaN)."""
    acc = zero
    for j in range(n):
        acc += A[p, a + j] * zero
    return not np.isfinite(acc)


@njit(cache=True, fastmath={"reassoc"})
def _sqdist(A, B, p, a, n):
    """sum_j (A[p, a + j] - B[p, a + j])^2, j < n, accumulated in float64."""
    acc = 0.0
    for j in range(n):
        d = float(A[p, a + j] - B[p, a + j])
        acc += d * d
    return acc


@njit(cache=True, inline="always")
def _forward_layer(W, p, wo, X, xo, H, ho, nin, nout, zero):
    """H[p, ho + i] = sum_j W_l[i, j] X[p, xo + j]; W_l (n_out, n_in) flat at W[p, wo:]."""
    for i in range(nout):
        H[p, ho + i] = _dot(W, p, wo + i * nin, X, p, xo, nin, zero)


@njit(cache=True, inline="always")
def _filter_step(p, src, row, col, ipar, fcoef, fy1, fy2, fu1):
    """Advance agent p's filter bank by one sample of the predictors src[row, col:].

    ``fy1`` (predictor-major, like the bank's output) is then the network input x_{-1}.
    """
    U = np.uint64
    n_f = U(ipar[I_N_FILTERS])
    n_pred = U(fu1.shape[1])
    one = U(1)
    if ipar[I_FILTER] == FILTER_DELAY:
        for k in range(n_pred):
            b = k * n_f
            for f in range(n_f - one):
                q = b + n_f - one - f
                fy1[p, q] = fy1[p, q - one]
            fy1[p, b] = src[row, col + k]  # the store casts to the dtype
    else:
        for k in range(n_pred):
            uprev = fu1[p, k]
            fu1[p, k] = src[row, col + k]  # u[n] in the dtype (the store casts)
            u = fu1[p, k]
            b = k * n_f
            for f in range(n_f):
                q = b + f
                # tmp = c1 y1 - c2 y2 + b0 u + b1 u1  (ResonatorBank.filter, same order)
                y = fcoef[2, f] * fy1[p, q]
                y -= fcoef[3, f] * fy2[p, q]
                y += fcoef[0, f] * u
                y += fcoef[1, f] * uprev
                fy2[p, q] = fy1[p, q]
                fy1[p, q] = y


@njit(cache=True, inline="always")
def _forward(p, ipar, tpar, fy1, sizes, woff, noff, W, bias, hbuf, post, slope, readout):
    """Forward pass of agent p on its filter outputs; returns (status, steering y).

    The per-step helpers are inlined into the kernels (``inline="always"``): a real call
    would take and drop references to every array argument, atomic operations on reference
    counts shared by all agents, which the threads would then fight over.
    """
    zero, one, half, sat = tpar[T_ZERO], tpar[T_ONE], tpar[T_HALF], tpar[T_TANH_SAT]
    L = ipar[I_N_LAYERS]
    act = ipar[I_ACT]
    has_bias = ipar[I_BIAS] != 0
    for li in range(L):
        nout = sizes[li + 1]
        o = noff[li]
        if li == 0:
            _forward_layer(W, p, woff[0], fy1, np.uint64(0), hbuf, o, sizes[0], nout, zero)
        else:
            _forward_layer(W, p, woff[li], post, noff[li - 1], hbuf, o, sizes[li], nout, zero)
        for i in range(nout):
            h = hbuf[p, o + i]
            if has_bias:
                h += bias[p, o + i]
                hbuf[p, o + i] = h
            f, s = _activate(h, act, half, one, sat)
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


@njit(cache=True, inline="always")
def _learn(
    p,
    e64,
    count,
    decay64,
    ipar,
    tpar,
    fy1,
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
):
    """One rule step of agent p after :func:`_forward`, with the closed-loop error e64.

    ``count`` is the relevance's step count after this step (for the normalisation's bias
    correction). Returns (status, layer): the first layer that became non-finite, if any.
    """
    zero, one = tpar[T_ZERO], tpar[T_ONE]
    c_low, c_1low, c_gain = tpar[T_LOWPASS], tpar[T_1_LOWPASS], tpar[T_GAIN]
    c_dec, c_1dec, c_eps = tpar[T_DECAY], tpar[T_1_DECAY], tpar[T_EPS]
    L = ipar[I_N_LAYERS]
    rule = ipar[I_RULE]
    uses_rel = ipar[I_USES_REL] != 0
    rel_forward = ipar[I_REL_FORWARD] != 0
    normalise = ipar[I_NORMALISE] != 0
    has_bias = ipar[I_BIAS] != 0
    n_out = sizes[L]
    n_neurons = noff[L]
    oo = noff[L - 1]
    sign_out = rule in (RULE_SAR, RULE_SAR_EXACT, RULE_SIGN_ONLY)
    sign_hidden = rule in (RULE_SAR, RULE_SIGN_ONLY)

    tmp[p, 0] = e64  # the store casts e to the dtype, as the rule does
    E = tmp[p, 0]
    absE = abs(E)
    r = one
    if uses_rel:
        # Relevance.__call__: m = a m + (1 - a)|e|; n = d n + (1 - d)|e|; r = g m [/ n_hat]
        m = rel_m[p] * c_low
        m += c_1low * absE
        rel_m[p] = m
        if normalise:
            nn = rel_n[p] * c_dec
            nn += c_1dec * absE
            rel_n[p] = nn
        r = c_gain * m
        if normalise:
            tmp[p, 0] = 1.0 - math.pow(decay64, float(count))
            mean = rel_n[p] / tmp[p, 0]
            r = r / max(mean, c_eps)

    # teaching signals of every layer, top-down (sig: d_l, or s_l before the relevance)
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
        for li in range(L - 2, -1, -1):
            o = noff[li]
            nl = sizes[li + 1]
            nu = sizes[li + 2]
            ou = noff[li + 1]
            if rule == RULE_DFA:
                # d_l = (B_l e) f'(h_l), e broadcast to every output; B_l (n_l, n_out)
                bo = boff[li]
                for j in range(nl):
                    acc = zero
                    for k in range(n_out):
                        acc += fb[p, bo + j * n_out + k] * E
                    sig[p, o + j] = acc * slope[p, o + j]
                continue
            # carry layer l+1's signal back: W_{l+1}^T d_{l+1}, or its stand-in
            if rule == RULE_FA:
                bo = boff[li]  # B_{li+1}: (n_l, n_u)
                for j in range(nl):
                    tmp[p, j] = _dot(fb, p, bo + j * nu, sig, p, ou, nu, zero)
            else:
                wo = woff[li + 1]  # W_{l+1}: (n_u, n_l)
                for j in range(nl):
                    tmp[p, j] = zero
                for k in range(nu):
                    c = sig[p, ou + k]
                    row = wo + k * nl
                    if rule == RULE_SIGN_SYMMETRY:
                        for j in range(nl):
                            tmp[p, j] += c * _sign(W[p, row + j], one, zero)
                    else:
                        for j in range(nl):
                            tmp[p, j] += c * W[p, row + j]
            for j in range(nl):
                v = tmp[p, j] * slope[p, o + j]
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
            for li in range(1, L):
                o = noff[li]
                nout = sizes[li + 1]
                _forward_layer(W, p, woff[li], rfw, noff[li - 1], rfw, o, sizes[li], nout, zero)
                for i in range(nout):
                    rfw[p, o + i] = abs(rfw[p, o + i] * slope[p, o + i])
            for k in range(n_neurons):
                sig[p, k] = rfw[p, k] * sig[p, k]
        elif rule != RULE_RELEVANCE_ONLY:
            for k in range(n_neurons):
                sig[p, k] = r * sig[p, k]

    # apply: W_l += (d_l x_{l-1}^T) * lr_l, b_l += lr_l d_l; then check finiteness
    for li in range(L):
        nin = sizes[li]
        nout = sizes[li + 1]
        o = noff[li]
        lrl = lr[p, li]
        wo = woff[li]
        bad = False
        for i in range(nout):
            c = sig[p, o + i]
            if c == 0:
                continue  # adding exact zeros changes nothing
            row = wo + i * nin
            if li == 0:
                for j in range(nin):
                    W[p, row + j] = W[p, row + j] + (c * fy1[p, j]) * lrl
            else:
                xo = noff[li - 1]
                for j in range(nin):
                    W[p, row + j] = W[p, row + j] + (c * post[p, xo + j]) * lrl
            if _nonfinite(W, p, row, nin, zero):
                bad = True
            if has_bias:
                bias[p, o + i] += lrl * c
                if not np.isfinite(bias[p, o + i]):
                    bad = True
        if bad:
            return STATUS_WEIGHTS_NONFINITE, li
    return STATUS_OK, -1


@njit(cache=True)
def _agent_steps(
    p_signed,
    t_first,
    t_last,
    t_global0,
    rel_count0,
    decay64,
    ipar,
    tpar,
    img,
    sx,
    sy,
    wpar,
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
    hbuf,
    post,
    slope,
    sig,
    rfw,
    tmp,
    readout,
    lr,
    rel_m,
    rel_n,
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
    wc,
    r_sat,
    info,
    replay,
    rp_pred,
    rp_err,
):
    """Advance agent ``p`` over the chunk's steps ``t_first .. t_last - 1`` (the whole loop).

    With ``replay`` the world is left out: step t feeds the predictors ``rp_pred[t, p * n:]``
    and the error ``rp_err[t, p]`` to the agent (``ClosedLoopAgent.step``) and records only the
    steering. Returns a status code (``STATUS_*``); on failure ``info[p]`` holds (global step,
    layer).
    """
    p = np.uint64(p_signed)
    n_pred = np.uint64(fu1.shape[1])
    c_net = tpar[T_NET_GAIN]
    L = ipar[I_N_LAYERS]
    every = ipar[I_WEIGHTS_EVERY]
    learning = ipar[I_LEARN] != 0
    record_ground = ipar[I_RECORD_GROUND] != 0
    gain64 = wpar[W_ERROR_GAIN]
    speed = wpar[W_SPEED]
    off_after = ipar[I_OFF_AFTER]
    width = wpar[W_WIDTH]
    height = wpar[W_HEIGHT]
    n_ground = ground.shape[1]
    # slope below this -> saturated unit (metrics.SATURATION_SLOPE of f'(0))
    sat_cut = SATURATION_SLOPE * (0.25 if ipar[I_ACT] == ACT_LOGISTIC else 1.0)

    for t in range(t_first, t_last):
        tg = t_global0 + t  # global step index
        if replay:
            e64 = rp_err[t, p]
            src, row, col = rp_pred, np.uint64(t), p * n_pred
        else:
            # -- sense (the reading was taken after the previous move) and record
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
                for k in range(n_ground):
                    r_ground[p, t, k] = ground[p, k]
            src, row, col = ground, p, np.uint64(2)
        # -- agent: filters, forward, readout, rule
        _filter_step(p, src, row, col, ipar, fcoef, fy1, fy2, fu1)
        status, y_net = _forward(
            p, ipar, tpar, fy1, sizes, woff, noff, W, bias, hbuf, post, slope, readout
        )
        if status != STATUS_OK:
            info[p, 0] = tg
            info[p, 1] = L - 1
            return status
        for li in range(L):  # the ``saturated`` record: share of saturated units per layer
            n_sat = 0
            for i in range(sizes[li + 1]):
                if abs(slope[p, noff[li] + i]) < sat_cut:
                    n_sat += 1
            r_sat[p, t, li] = n_sat / sizes[li + 1]
        if learning:
            status, layer = _learn(
                p, e64, rel_count0 + (t - t_first) + 1, decay64, ipar, tpar, fy1, sizes, woff,
                noff, W, bias, post, slope, sig, rfw, tmp, lr, rel_m, rel_n, fb, boff,
            )  # fmt: skip
            if status != STATUS_OK:
                info[p, 0] = tg
                info[p, 1] = layer
                return status
        r_steer[p, t] = y_net
        if replay:
            continue
        # -- motors and world: u = e + G y, wheels v -+ u, exact arc, sense
        u_cmd = e64 + float(c_net * y_net)
        vl = speed - u_cmd
        vr = speed + u_cmd
        if not (np.isfinite(vl) and np.isfinite(vr)):
            info[p, 0] = tg
            info[p, 1] = L - 1
            return STATUS_WHEELS_NONFINITE
        r_left[p, t] = vl
        r_right[p, t] = vr
        _advance(p, pose, vl, vr, wpar[W_AXLE], wpar[W_DT])
        _sense(p, pose, ground, lost, img, sx, sy, wpar, ipar)
        # -- weight-change sample after every ``every``-th global step
        if (tg + 1) % every == 0:
            kk = (tg + 1) // every - t_global0 // every - 1
            for li in range(L):
                d2 = _sqdist(W, W0, p, woff[li], woff[li + 1] - woff[li])
                wc[p, kk, li] = math.sqrt(d2)
    return STATUS_OK


@njit(cache=True, parallel=True)
def run_chunk(
    n,
    block,
    t_global0,
    rel_count0,
    decay64,
    world,
    wstate,
    ipar,
    tpar,
    filt,
    net,
    rule_arrays,
    rec,
    status,
    info,
    replay,
    rp_pred,
    rp_err,
):
    """Run ``n`` closed-loop steps for every agent; agents in parallel, ``block`` steps at a time.

    ``status[p]`` (``STATUS_*``) and ``info[p] = (global step, layer)`` report failures; a
    failed agent stops where it failed. With ``replay`` the agents run without the world on
    the predictors ``rp_pred`` (n, P * n_predictors) and errors ``rp_err`` (n, P), float64
    (otherwise pass any 2-D float64 arrays; one signature serves both uses).
    """
    # Unpack the tuples once, here: unpacking takes references to the arrays, atomic operations
    # on counts shared by all agents that the threads would fight over if done per step.
    img, sx, sy, wpar = world
    pose, lost, ground = wstate
    fcoef, fy1, fy2, fu1 = filt
    sizes, woff, noff, W, W0, bias, hbuf, post, slope, sig, rfw, tmp, readout = net
    lr, rel_m, rel_n, fb, boff = rule_arrays
    r_error, r_steer, r_left, r_right, r_x, r_y, r_head, r_off, r_sl, r_sr, r_ground, wc, r_sat = (
        rec
    )
    P = pose.shape[0]
    for t0 in range(0, n, block):
        t1 = min(n, t0 + block)
        for p in prange(P):
            if status[p] != STATUS_OK:
                continue
            status[p] = _agent_steps(
                p, t0, t1, t_global0, rel_count0 + t0, decay64, ipar, tpar,
                img, sx, sy, wpar, pose, lost, ground, fcoef, fy1, fy2, fu1,
                sizes, woff, noff, W, W0, bias, hbuf, post, slope, sig, rfw, tmp, readout,
                lr, rel_m, rel_n, fb, boff,
                r_error, r_steer, r_left, r_right, r_x, r_y, r_head, r_off, r_sl, r_sr,
                r_ground, wc, r_sat, info, replay, rp_pred, rp_err,
            )  # fmt: skip
