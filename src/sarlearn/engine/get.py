"""Get: the engine's state written back into the reference loops, and its records read out.

:func:`get` writes an :class:`~sarlearn.engine.put.EngineState` into the reference objects'
public state (``load_state_dict()``, public arrays), the inverse of
:func:`~sarlearn.engine.put.put`. :func:`new_records` allocates a chunk's
:class:`~sarlearn.stages.codes.Records` and :func:`records` turns them into the dictionary
:meth:`ClosedLoop.run <sarlearn.loop.ClosedLoop.run>` returns.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.engine.put import EngineState
from sarlearn.loop import LAYER_RECORDS, RECORDS, ClosedLoop
from sarlearn.numerics import loop_errstate
from sarlearn.stages.codes import Records


def agent_slices(state: EngineState, refs: list[ClosedLoop]) -> list[tuple[slice, ClosedLoop]]:
    """Each reference loop with the rows of its agents in the engine's population."""
    out, a = [], 0
    for ref, n in zip(refs, state.counts, strict=True):
        out.append((slice(a, a + n), ref))
        a += n
    return out


def get(state: EngineState, refs: list[ClosedLoop]) -> None:
    """Write the engine's state (at step ``state.t``) into the reference loops."""
    net_s, filt, rule, ws = state.net, state.filt, state.rule, state.wstate
    woff, noff = net_s.woff, net_s.noff
    for sl, ref in agent_slices(state, refs):
        agent, robot = ref.agent, ref.robot
        net = agent.network
        for li in range(state.n_layers):
            a, b = woff[li], woff[li + 1]
            net.weights[li][...] = net_s.W[sl, a:b].reshape(net.weights[li].shape)
            n0, n1 = noff[li], noff[li + 1]
            if net.biases is not None:
                net.biases[li][...] = net_s.bias[sl, n0:n1]
            net.pre[li][...] = net_s.pre[sl, n0:n1]
            net.post[li][...] = net_s.post[sl, n0:n1]
            net.slopes[li][...] = net_s.slope[sl, n0:n1]
        net.layer_inputs[0][...] = filt.y1[sl]  # the filter output is the network input
        bank = agent.bank
        shape = (-1, bank.n_predictors, state.n_filters)
        if "taps" in bank.state_dict():
            bank.load_state_dict({"taps": filt.y1[sl].reshape(shape)})
        else:
            bank.load_state_dict(
                {
                    "y1": filt.y1[sl].reshape(shape),
                    "y2": filt.y2[sl].reshape(shape),
                    "u1": filt.u1[sl].reshape(shape)[:, :, :1],
                }
            )
        rel = agent.rule.relevance
        rel.lowpassed[...] = rule.rel_m[sl]
        rel.mean_abs[...] = rule.rel_n[sl]
        rel.count = state.rel_count
        moved = state.t - ref.t
        robot.load_state_dict(
            {
                "pose": ws.pose[sl],
                "lost": ws.lost[sl],
                "ground": ws.ground[sl],
                "steps": robot.steps + moved,
            }
        )
        ref.t = state.t


def new_records(state: EngineState, n: int, n_samples: int, world: bool = True) -> Records:
    """Empty records of an ``n``-step chunk with ``n_samples`` weight-change samples; without
    the ``world`` (agents alone) only the steering is kept, the rest are scratch."""
    P, dt, L = state.population, state.dtype, state.n_layers
    rec64 = np.empty((8, P, n))
    ng = state.wstate.ground.shape[1]
    ground = (P, n, ng) if world and state.record_ground else (P, 0, 0)
    frame_size = state.frame_shape[0] * state.frame_shape[1]
    record_frame = world and state.cam_par.record_frame and n > 0
    frame = (P, n, frame_size) if record_frame else (P, 0, 0)
    return Records(
        error=rec64[0], steering=np.empty((P, n), dtype=dt), left=rec64[1], right=rec64[2],
        x=rec64[3], y=rec64[4], heading=rec64[5], off_track=np.empty((P, n), dtype=np.bool_),
        sensor_left=rec64[6], sensor_right=rec64[7], ground=np.empty(ground),
        weight_change=np.empty((P, n_samples, L), dtype=dt), saturated=np.empty((P, n, L)),
        frame=np.empty(frame),
    )  # fmt: skip


def records(state: EngineState, rec: Records, start: int, done: int) -> dict[str, NDArray[Any]]:
    """The records of the chunk's first ``done`` steps (from step ``start``), as
    :meth:`ClosedLoop.run <sarlearn.loop.ClosedLoop.run>` returns them."""
    every = state.weights_every
    first = (start // every + 1) * every - 1
    w_steps = np.arange(first, start + done, every, dtype=np.int64)
    res: dict[str, NDArray[Any]] = {"step": np.arange(start, start + done)}
    for key in (*RECORDS, *LAYER_RECORDS):
        res[key] = getattr(rec, key)[:, :done]
    if state.record_ground:
        res["ground"] = rec.ground[:, :done]
    if state.cam_par.record_frame:  # camera frames, as ClosedLoop records them with the ground
        P, n = rec.steering.shape
        res["frame"] = rec.frame.reshape(P, n, *state.frame_shape)[:, :done]
    res["weight_steps"] = w_steps
    res["weight_change"] = rec.weight_change[:, : len(w_steps)]
    return res


def weight_change(state: EngineState) -> NDArray[np.floating]:
    """``(P, L)`` Frobenius distance of each layer from its initial weights."""
    net = state.net
    out = np.empty((state.population, state.n_layers), dtype=state.dtype)
    with loop_errstate():  # near-overflow weights give inf, as the reference's read-out
        for li in range(state.n_layers):
            a, b = net.woff[li], net.woff[li + 1]
            d = net.W[:, a:b] - net.W0[:, a:b]
            out[:, li] = np.sqrt(np.sum(d * d, axis=1))
    return out


def weights(state: EngineState, layer: int) -> NDArray[np.floating]:
    """Current weights of one layer, ``(P, n_out, n_in)`` (a copy)."""
    net = state.net
    a, b = net.woff[layer], net.woff[layer + 1]
    nin, nout = net.sizes[layer], net.sizes[layer + 1]
    return net.W[:, a:b].reshape(-1, nout, nin).copy()


__all__ = ["agent_slices", "get", "new_records", "records", "weight_change", "weights"]
