"""Compiled (numba) kernels of the whole closed-loop step: world, sensors, filters, network,
learning rule, readout and motors, for a population of independent agents.

The step is split by stage, each module next to (and naming) its numpy twin:
:mod:`~sarlearn.stages.world.compiled_sensors`, :mod:`~sarlearn.stages.perception.compiled` (camera
inputs), :mod:`~sarlearn.stages.world.compiled_robot`, :mod:`~sarlearn.stages.filters.compiled`,
:mod:`~sarlearn.stages.network.compiled`, :mod:`~sarlearn.stages.rules.compiled`; this module
strings them together into the whole step (:func:`_agent_steps`) and the chunk over the population
(:func:`run_chunk`). Codes and typed parameters (named tuples) are in :mod:`sarlearn.stages.codes`.

The maths is that of the readable numpy modules (``sarlearn.stages.world``,
``sarlearn.stages.filters.bank``, ``sarlearn.stages.network.network``, ``sarlearn.stages.rules``,
``sarlearn.loop``), written out element by element in the same order of floating-point operations
wherever the reference defines that order (elementwise formulas, the update ``W += (d x) * lr``, the
filter recurrence, the exact-arc kinematics, the bilinear lookup, the relevance filters). Three
things differ in the last bits:

- the sums of the matrix products (forward pass, backward path, forward relevance): numpy
  leaves their order to BLAS, the kernels let LLVM vectorise them (``dot`` is the only code
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
from sarlearn.stages.codes import (
    ACT_LOGISTIC,
    STATUS_OK,
    STATUS_WHEELS_NONFINITE,
)
from sarlearn.stages.filters.compiled import filter_step
from sarlearn.stages.motor.compiled import command, reflex
from sarlearn.stages.network.compiled import cap_input, forward, sqdist
from sarlearn.stages.perception.compiled import camera_step
from sarlearn.stages.rules.compiled import learn
from sarlearn.stages.world.compiled_robot import advance_agent
from sarlearn.stages.world.compiled_sensors import (  # noqa: F401  (lookup: tests)
    lookup,
    off_track,
    sense,
)


@njit(cache=True)
def _agent_steps(
    p_signed, t_first, t_last, chunk, world_par, switches, consts, cam_par,
    world, wstate, filt, net, rule, cam, rec, info, replay,
):  # fmt: skip
    """Advance agent ``p`` over the chunk's steps ``t_first .. t_last - 1`` (the whole loop).

    The arguments are the named tuples of :mod:`sarlearn.stages.codes`: parameters
    (``chunk``: :class:`Chunk`, ``world_par``, ``switches``, ``consts``, ``cam_par``), state
    (``world``, ``wstate``, ``filt``, ``net``, ``rule``, ``cam``), outputs (``rec``:
    :class:`Records`; ``info``) and ``replay`` (:class:`Replay`). With ``replay.on`` the world
    is left out: step t feeds the predictors ``replay.predictors[t, p * n:]`` and the error
    ``replay.errors[t, p]`` to the agent (``ClosedLoopAgent.step``) and records only the
    steering. Returns a status code (``STATUS_*``); on failure ``info[p]`` holds (global step,
    layer). The weight-change samples are recomputed only if the weights may have changed
    since the last one (``wc_dirty[p]``); otherwise the last sample ``wc_last[p]`` is repeated.
    With camera inputs (``cam_par.on``) the predictors are the camera stage's
    (:mod:`~sarlearn.stages.perception.compiled`), rendered at the pose the ground was read at.
    """
    # The fields, read once per call: the stage functions take arrays, and a field read inside
    # the step loop would cost a reference count per step.
    t_global0 = chunk.t_global0
    rel_count0 = chunk.rel_count0
    decay64 = chunk.decay
    img, sx, sy = world.img, world.sx, world.sy
    pose, lost, ground = wstate.pose, wstate.lost, wstate.ground
    fcoef, fy1, fy2, fu1, fux = filt.coef, filt.y1, filt.y2, filt.u1, filt.ux
    sizes, woff, noff, W, W0 = net.sizes, net.woff, net.noff, net.W, net.W0
    bias, hbuf, post, slope, sig, rfw = net.bias, net.pre, net.post, net.slope, net.sig, net.rfw
    tmp, readout, wc_last, wc_dirty = net.tmp, net.readout, net.wc_last, net.wc_dirty
    lr, rel_m, rel_n, fb, boff, inside = (
        rule.lr, rule.rel_m, rule.rel_n, rule.feedback, rule.boff, rule.inside
    )  # fmt: skip
    r_error, r_steer, r_left, r_right = rec.error, rec.steering, rec.left, rec.right
    r_x, r_y, r_head, r_off = rec.x, rec.y, rec.heading, rec.off_track
    r_sl, r_sr, r_ground, wc, r_sat = (
        rec.sensor_left, rec.sensor_right, rec.ground, rec.weight_change, rec.saturated
    )  # fmt: skip
    r_frame = rec.frame
    rp_pred, rp_err, replaying = replay.predictors, replay.errors, replay.on
    p = np.uint64(p_signed)
    n_pred = np.uint64(switches.n_pred)
    flush = consts.flush
    zero = consts.zero
    c_net = consts.net_gain
    L = switches.n_layers
    every = switches.weights_every
    learning = switches.learning != 0
    record_ground = switches.record_ground != 0
    gain64 = world_par.error_gain
    speed = world_par.speed
    off_after = switches.off_after
    width = world_par.width
    height = world_par.height
    n_ground = ground.shape[1]
    # slope below this -> saturated unit (metrics.SATURATION_SLOPE of f'(0))
    sat_cut = SATURATION_SLOPE * (0.25 if switches.act == ACT_LOGISTIC else 1.0)
    camera = cam_par.on != 0
    bounded = switches.has_weight_bound != 0 or switches.has_hidden_weight_bound != 0
    cam_pred = cam.pred
    input_cap = switches.input_cap != 0
    n_in = sizes[0]
    cap_off = np.uint64(tmp.shape[1]) - n_in  # the capped input's place in tmp (if capped)

    for t in range(t_first, t_last):
        tg = t_global0 + t  # global step index
        if replaying:  # replayed predictors are already the agent's (mirrored if so)
            e64 = rp_err[t, p]
            src, row, col = rp_pred, np.uint64(t), p * n_pred
            mirror_row = 0
        else:
            mirror_row = switches.mirror_row
            # -- sense (the reading was taken after the previous move) and record
            gl = ground[p, 0]
            gr = ground[p, 1]
            e64 = reflex(gl, gr, gain64)
            xpos, ypos = pose[p, 0], pose[p, 1]
            r_x[p, t] = xpos
            r_y[p, t] = ypos
            r_head[p, t] = pose[p, 2]
            r_off[p, t] = off_track(xpos, ypos, width, height, lost[p], off_after)
            r_sl[p, t] = gl
            r_sr[p, t] = gr
            r_error[p, t] = e64
            if record_ground:
                for k in range(n_ground):
                    r_ground[p, t, k] = ground[p, k]
            if camera:  # the frame at this pose -> segment grid -> mirror differences
                camera_step(p, t, pose, img, world_par, cam_par, cam, r_frame)
                src, row, col = cam_pred, p, np.uint64(0)
                mirror_row = 0  # the camera's predictors are already its mirror differences
            else:
                src, row, col = ground, p, np.uint64(2)
        # -- agent: filters, forward, readout, rule
        filter_step(p, src, row, col, switches, fcoef, fy1, fy2, fu1, fux, flush, zero, mirror_row)
        xin, x0o = fy1, np.uint64(0)  # the network's input: the filter outputs ...
        if input_cap and cap_input(p, fy1, n_in, consts.input_max_norm, zero, tmp, cap_off):
            xin, x0o = tmp, cap_off  # ... or their copy scaled onto the norm cap
        status, y_net = forward(
            p, switches, consts, xin, x0o, sizes, woff, noff, W, bias, hbuf, post, slope, readout
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
            if e64 != 0.0 or bounded:
                wc_dirty[p] = 1  # the weights may change (e = 0 is a no-op unless bounded)
            status, layer = learn(
                p, e64, rel_count0 + t + 1, decay64, switches, consts, xin, x0o, sizes,
                woff, noff, W, bias, post, slope, sig, rfw, tmp, lr, rel_m, rel_n, fb, boff,
                readout, inside,
            )  # fmt: skip
            if status != STATUS_OK:
                info[p, 0] = tg
                info[p, 1] = layer
                return status
        r_steer[p, t] = y_net
        if replaying:
            continue
        # -- motors and world: u = e + G y, wheels v -+ u, exact arc, sense
        u_cmd = command(e64, y_net, c_net)  # G y in the network's dtype, as numpy does
        vl = speed - u_cmd
        vr = speed + u_cmd
        if not (np.isfinite(vl) and np.isfinite(vr)):
            info[p, 0] = tg
            info[p, 1] = L - 1
            return STATUS_WHEELS_NONFINITE
        r_left[p, t] = vl
        r_right[p, t] = vr
        advance_agent(p, pose, vl, vr, world_par.axle, world_par.dt)
        sense(p, pose, ground, lost, img, sx, sy, world_par)
        # -- weight-change sample after every ``every``-th global step
        if (tg + 1) % every == 0:
            kk = (tg + 1) // every - t_global0 // every - 1
            if wc_dirty[p] != 0:
                for li in range(L):
                    d2 = sqdist(W, W0, p, woff[li], woff[li + 1] - woff[li])
                    wc_last[p, li] = math.sqrt(d2)
                wc_dirty[p] = 0
            for li in range(L):
                wc[p, kk, li] = wc_last[p, li]
    return STATUS_OK


@njit(cache=True, parallel=True)
def run_chunk(
    n, block, chunk, world_par, switches, consts, cam_par,
    world, wstate, filt, net, rule, cam, rec, status, info, replay,
):  # fmt: skip
    """Run ``n`` closed-loop steps for every agent; agents in parallel, ``block`` steps at a time.

    The arguments after ``block`` are the named tuples of :mod:`sarlearn.stages.codes` (see
    :func:`_agent_steps`). ``status[p]`` (``STATUS_*``) and ``info[p] = (global step, layer)``
    report failures; a failed agent stops where it failed. ``cam_par.on = 0`` (ground-sensor
    inputs) runs with placeholder camera arrays, ``replay.on = False`` with placeholder replay
    inputs: one compiled signature serves all uses.
    """
    P = wstate.pose.shape[0]
    for t0 in range(0, n, block):
        t1 = min(n, t0 + block)
        for p in prange(P):
            if status[p] != STATUS_OK:
                continue
            status[p] = _agent_steps(
                p, t0, t1, chunk, world_par, switches, consts, cam_par,
                world, wstate, filt, net, rule, cam, rec, info, replay,
            )  # fmt: skip
