"""Put: the reference loops' public state copied into the kernel's named tuples.

:func:`put` builds an :class:`EngineState` from one or more
:class:`~sarlearn.loop.ClosedLoop` objects (agents stacked in order), reading only their public
state (``state_dict()``, public arrays); :mod:`sarlearn.engine.get` writes it back.
:func:`check_supported` says which loops the kernels cover, :func:`check_compatible` which
loops can be stacked into one population.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from sarlearn.errors import ShapeError
from sarlearn.loop import ClosedLoop
from sarlearn.numerics import flush_threshold
from sarlearn.recipes import RULE_NAMES
from sarlearn.stages import codes as C

_ACT_CODES = {"logistic": C.ACT_LOGISTIC, "tanh": C.ACT_TANH, "linear": C.ACT_LINEAR}

#: Rule names the engine runs.
SUPPORTED_RULES: tuple[str, ...] = RULE_NAMES


def check_supported(loop: ClosedLoop) -> None:
    """Raise NotImplementedError (naming the reason) if the engine cannot run ``loop``."""
    from sarlearn.stages.filters.bank import DelayLineBank, ResonatorBank
    from sarlearn.stages.rules import RULES
    from sarlearn.stages.world.sim import SimWorld

    agent = loop.agent
    if not isinstance(loop, ClosedLoop) or type(loop) is not ClosedLoop:
        raise NotImplementedError("the engine mirrors sarlearn.loop.ClosedLoop only")
    if not isinstance(loop.robot, SimWorld):
        raise NotImplementedError(
            f"the engine simulates the world itself; robot {type(loop.robot).__name__} is "
            "not the simulator"
        )
    if loop.robot.realism is not None:
        raise NotImplementedError(
            "world.realism is simulated by the numpy loop only (sarlearn.stages.world.realism)"
        )
    if loop.inputs not in ("rows", "camera"):
        raise NotImplementedError(f"inputs={loop.inputs!r}: the engine covers rows and camera")
    if loop.inputs == "camera":
        from sarlearn.stages.perception.perception import CameraPredictors

        if loop.robot.camera is None:
            raise NotImplementedError("camera inputs on a SimWorld without a camera")
        if type(loop.perception) is not CameraPredictors:
            raise NotImplementedError(
                f"perception {type(loop.perception).__name__} is not compiled (the engine runs "
                "sarlearn.stages.perception.perception.CameraPredictors: segment grid, then "
                "mirror differences)"
            )
    n_rows = len(loop.robot.sensors) - 2
    expected = n_rows // 2 if loop.predictor_mode == "mirror" else n_rows
    if loop.inputs == "rows" and agent.bank is not None and agent.bank.n_predictors != expected:
        raise NotImplementedError(
            f"the agent takes {agent.bank.n_predictors} predictors but the world's rows give "
            f"{expected} (predictor_mode {loop.predictor_mode!r})"
        )
    if np.dtype(loop.robot.dtype) != np.float64:
        raise NotImplementedError("the engine needs a float64 world (SimWorld dtype)")
    if agent.network is None:
        raise NotImplementedError("the reflex-only agent has no network to accelerate")
    rule = agent.rule
    name = getattr(rule, "name", None)
    if name not in RULE_NAMES or type(rule) is not RULES.get(name):
        raise NotImplementedError(f"rule {name!r} ({type(rule).__name__}) is not compiled")
    net = agent.network
    if net.activation.name not in _ACT_CODES:
        raise NotImplementedError(f"activation {net.activation.name!r} is not compiled")
    if type(agent.bank) not in (ResonatorBank, DelayLineBank):
        raise NotImplementedError(f"filter bank {type(agent.bank).__name__} is not compiled")
    if net.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise NotImplementedError(f"dtype {net.dtype} is not compiled")
    from sarlearn.stages.rules import readout_share

    scale = getattr(rule, "output_scale", None)
    if scale is not None and list(scale) != readout_share(agent.readout):
        raise NotImplementedError("the engine's output_scale is the readout share only")


@functools.cache
def tanh_saturation(dtype: Any) -> float:
    """Smallest x > 0 at which numpy's ``tanh`` returns exactly 1 in ``dtype``.

    Found by bisection over the floating-point numbers (numpy's tanh is monotone there); the
    kernels saturate at the same point (see ``stages.network.compiled.tanh_sat``).
    """
    dt = np.dtype(dtype)
    it = np.int64 if dt == np.float64 else np.int32
    lo = int(np.array(1.0, dt).view(it))  # tanh(1) < 1
    hi = int(np.array(40.0, dt).view(it))  # tanh(40) == 1 in both precisions
    probe = np.empty(1, dtype=dt)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        probe[0] = np.array(mid, dtype=it).view(dt)
        if np.tanh(probe)[0] == 1.0:
            hi = mid
        else:
            lo = mid
    return float(np.array(hi, dtype=it).view(dt))


@dataclass
class EngineState:
    """Everything the kernel reads and writes, as named tuples (:mod:`sarlearn.stages.codes`),
    and what the Python side needs to read it back.

    The arrays are the engine's own (copies of the reference objects' state); a benchmark may
    swap a parameter tuple (``state.consts = state.consts._replace(...)``) between chunks.
    """

    world_par: C.WorldParams
    switches: C.Switches
    consts: C.Constants
    cam_par: C.CameraParams
    world: C.WorldArrays
    wstate: C.WorldState
    filt: C.FilterState
    net: C.NetState
    rule: C.RuleState
    cam: C.CameraArrays
    decay: float  #: the relevance normaliser's decay, float64
    rel_count: int  #: the relevance's step count (shared by the population)
    dtype: np.dtype[Any]  #: the agents' dtype
    t: int  #: the loops' step
    counts: list[int]  #: agents per reference loop
    n_layers: int
    n_pred: int  #: predictors per agent
    n_filters: int  #: filters per predictor
    frame_shape: tuple[int, int]  #: the camera frame's (H, W); (0, 0) for ground rows
    weights_every: int
    record_ground: bool
    rule_name: str

    @property
    def population(self) -> int:
        """Agents in all."""
        return sum(self.counts)


def rule_options(rule: Any) -> dict[str, Any]:
    """The rule's step options under the config's names (the one place the engine reads them
    from the rule object)."""
    return {
        "slope_gate": rule.slope_gate,
        "weight_bound": rule.weight_bound,
        "output_scale": rule.output_scale,
        "hidden_weight_bound": rule.hidden_weight_bound,
        "hidden_bound_scaling": rule.hidden_bound_scaling,
    }


def put(refs: list[ClosedLoop], img: Any = None) -> EngineState:
    """Copy the reference loops' public state into a new :class:`EngineState`.

    ``img`` is the padded track image of a previous put on the same track, reused (8 MB);
    None makes a writable copy of the track's own.
    """
    first = refs[0]
    robot, agent = first.robot, first.agent
    net, bank, rule = agent.network, agent.bank, agent.rule
    dt = net.dtype
    counts = [r.population for r in refs]
    P = sum(counts)
    L = net.n_layers
    # Offsets are unsigned: the kernels index with them without wrap-around checks.
    sizes = np.array([net.n_inputs, *net.layers], dtype=np.uint64)
    wsz = sizes[:-1] * sizes[1:]
    woff = np.concatenate([[0], np.cumsum(wsz)]).astype(np.uint64)
    noff = np.concatenate([[0], np.cumsum(sizes[1:])]).astype(np.uint64)
    NW, NN = int(woff[-1]), int(noff[-1])

    # -- world (shared track, per-agent pose / counters / readings)
    track = robot.track
    # The track's own padded image and clamps: one lookup rule for both loops.
    table = track.lookup_table
    if img is None:
        img = np.array(table.flat, dtype=np.float64)
    pos = np.asarray(robot.sensors.positions, dtype=np.float64)
    world = C.WorldArrays(
        img=img, sx=np.ascontiguousarray(pos[:, 0]), sy=np.ascontiguousarray(pos[:, 1])
    )
    from sarlearn.stages.world.sim import LINE_SEEN

    world_par = C.WorldParams(
        inv=float(table.inv),
        height=float(table.height),
        umax=float(table.umax),
        vmax=float(table.vmax),
        stride=int(table.stride),
        speed=float(first.speed),
        dt=float(robot.dt),
        axle=float(robot.axle),
        error_gain=float(first.error_gain),
        net_gain=float(first.net_gain),
        width=float(track.width),
        line_seen=float(LINE_SEEN),
    )
    worlds = [r.robot.state_dict() for r in refs]
    wstate = C.WorldState(
        pose=np.concatenate([w["pose"] for w in worlds]).astype(np.float64),
        lost=np.concatenate([w["lost"] for w in worlds]).astype(np.int64),
        ground=np.ascontiguousarray(
            np.concatenate([w["ground"] for w in worlds]), dtype=np.float64
        ),
    )

    # -- filter bank
    from sarlearn.stages.filters.bank import DelayLineBank

    n_pred = bank.n_predictors
    n_f = bank.n_filters
    # States flattened predictor-major, (P, n_pred * n_f): y[n] is the network input.
    # The resonators' coefficients and previous inputs are expanded to one entry per state
    # (N = n_pred * n_f), so the kernel advances all states in one contiguous loop.
    if isinstance(bank, DelayLineBank):
        fkind = C.FILTER_DELAY
        fcoef = np.zeros((4, n_pred * n_f), dtype=dt)
        fy1 = np.concatenate([r.agent.bank.state_dict()["taps"] for r in refs])
        fy2 = np.zeros((P, n_pred, n_f), dtype=dt)
        fu1 = np.zeros((P, n_pred, n_f), dtype=dt)
    else:
        fkind = C.FILTER_RESONATOR
        coef = np.stack(bank.coefficients).astype(dt)
        fcoef = np.ascontiguousarray(np.tile(coef, (1, n_pred)))
        states = [r.agent.bank.state_dict() for r in refs]
        fy1 = np.concatenate([s["y1"] for s in states])
        fy2 = np.concatenate([s["y2"] for s in states])
        u1 = np.concatenate([s["u1"] for s in states])  # (P, n_pred, 1)
        fu1 = np.broadcast_to(u1, (P, n_pred, n_f)).copy()  # writable, also for n_f = 1
    fy1, fy2, fu1 = (np.ascontiguousarray(a.reshape(P, -1), dtype=dt) for a in (fy1, fy2, fu1))
    filt = C.FilterState(coef=fcoef, y1=fy1, y2=fy2, u1=fu1, ux=np.zeros_like(fu1))

    # -- network: all layers' (n_out, n_in) matrices in one flat row per agent
    W = np.empty((P, NW), dtype=dt)
    W0 = np.empty((P, NW), dtype=dt)
    bias = np.zeros((P, NN if net.biases is not None else 1), dtype=dt)
    a0 = 0
    for ref, n in zip(refs, counts, strict=True):
        sl = slice(a0, a0 + n)
        a0 += n
        rnet = ref.agent.network
        for li in range(L):
            a, b = woff[li], woff[li + 1]
            W[sl, a:b] = rnet.weights[li].reshape(-1, b - a)
            W0[sl, a:b] = rnet.initial_weights[li].reshape(-1, b - a)
            if rnet.biases is not None:
                bias[sl, noff[li] : noff[li + 1]] = rnet.biases[li]
    pre, post, slope = (
        np.ascontiguousarray(
            np.concatenate([np.concatenate(getattr(r.agent.network, k), axis=1) for r in refs]),
            dtype=dt,
        )
        for k in ("pre", "post", "slopes")
    )
    # scratch per agent; with an input cap, its last n_inputs entries hold the capped input
    cap = net.input_max_norm
    extra = 0 if cap is None else 1 + int(sizes[1:].max()) + int(sizes[0]) - int(sizes.max())
    netstate = C.NetState(
        sizes=sizes, woff=woff, noff=noff, W=W, W0=W0, bias=bias, pre=pre, post=post,
        slope=slope, sig=np.zeros((P, NN), dtype=dt), rfw=np.zeros((P, NN), dtype=dt),
        tmp=np.zeros((P, max(int(sizes.max()), 1) + extra), dtype=dt),
        readout=np.asarray(agent.readout, dtype=dt),
        # the last weight-change sample, and whether the weights may have changed since
        wc_last=np.zeros((P, L), dtype=dt), wc_dirty=np.ones(P, dtype=np.uint8),
    )  # fmt: skip

    # -- rule
    options = rule_options(rule)
    relcfg = rule.relevance.cfg
    # lr_l = lr * scale_l is a Python float; the rule's `dw *= lr` casts it to the dtype.
    rates = [np.asarray(r.agent.rule.lr_per_layer, dtype=dt) for r in refs]
    lr = np.concatenate([np.tile(x, (r.population, 1)) for x, r in zip(rates, refs, strict=True)])
    from sarlearn.stages.rules.compiled import hidden_bound_fan_in
    from sarlearn.stages.rules.relevance import NORM_EPS

    inv_readout = 0.0
    if options["output_scale"] is not None:
        inv_readout = 1.0 / max(abs(float(c)) for c in agent.readout)
    weight_bound, hidden_weight_bound = options["weight_bound"], options["hidden_weight_bound"]
    # (step_norm is already in the per-layer rates)
    values = C.Constants(
        zero=0.0,
        one=1.0,
        half=0.5,
        lowpass=relcfg.lowpass,
        one_minus_lowpass=1.0 - relcfg.lowpass,
        gain=relcfg.gain,
        decay=relcfg.norm_decay,
        one_minus_decay=1.0 - relcfg.norm_decay,
        eps=NORM_EPS,
        net_gain=first.net_gain,
        tanh_sat=tanh_saturation(dt),
        inv_slope0=1.0 / net.activation.slope_at_zero,
        inv_readout=inv_readout,
        weight_bound=weight_bound or 0.0,
        rel_cap=relcfg.cap or 0.0,
        flush=flush_threshold(dt),
        hidden_weight_bound=hidden_weight_bound or 0.0,
        hidden_bound_fan_in=hidden_bound_fan_in(options["hidden_bound_scaling"]),
        input_max_norm=cap or 0.0,
    )
    consts = C.Constants(*(dt.type(v) for v in values))  # in the agent's dtype
    fbs = [r.agent.rule.feedback for r in refs]
    if fbs[0]:
        sizes_fb = [int(np.prod(b.shape[1:])) for b in fbs[0]]
        boff = np.concatenate([[0], np.cumsum(sizes_fb)]).astype(np.uint64)
        fb = np.concatenate(
            [np.concatenate([b.reshape(b.shape[0], -1) for b in fb], axis=1) for fb in fbs]
        ).astype(dt)
    else:
        boff = np.zeros(1, dtype=np.uint64)
        fb = np.zeros((P, 1), dtype=dt)
    rulestate = C.RuleState(
        lr=lr,
        rel_m=np.concatenate([r.agent.rule.relevance.lowpassed for r in refs]).astype(dt),
        rel_n=np.concatenate([r.agent.rule.relevance.mean_abs for r in refs]).astype(dt),
        feedback=fb,
        boff=boff,
        # rows known to lie inside the weight bound (none yet: the next check looks at all)
        inside=np.zeros((P, NN), dtype=np.uint8),
    )

    uses_rel = bool(type(rule).uses_relevance)
    switches = C.Switches(
        off_after=int(robot.cfg.off_track_after),
        n_layers=L,
        act=_ACT_CODES[net.activation.name],
        # the rule's recipe, not its name: where the sign is taken, what carries it back
        sign_at=int(rule.recipe.sign_at),
        carrier=int(rule.recipe.carrier),
        filter_kind=fkind,
        n_filters=int(n_f),
        n_pred=int(n_pred),
        has_bias=int(net.biases is not None),
        learning=int(agent.learning),
        uses_rel=int(uses_rel),
        rel_forward=int(uses_rel and relcfg.mode == "forward"),
        normalise=int(uses_rel and relcfg.normalise),
        has_rel_cap=int(uses_rel and relcfg.cap is not None),
        slope_gate=int(options["slope_gate"]),
        output_share=int(options["output_scale"] is not None),
        has_weight_bound=int(weight_bound is not None),
        has_hidden_weight_bound=int(hidden_weight_bound is not None),
        mirror_row=first.predictors_per_row if first.predictor_mode == "mirror" else 0,
        weights_every=int(first.weights_every),
        record_ground=int(first.record_ground),
        input_cap=int(cap is not None),
    )
    # the camera stage's parameters and buffers
    cam_par, cam = _camera_arrays(first, P, n_pred)
    return EngineState(
        world_par=world_par, switches=switches, consts=consts, cam_par=cam_par, world=world,
        wstate=wstate, filt=filt, net=netstate, rule=rulestate, cam=cam,
        decay=float(relcfg.norm_decay), rel_count=int(rule.relevance.count), dtype=dt,
        t=int(first.t), counts=counts, n_layers=L, n_pred=int(n_pred), n_filters=int(n_f),
        frame_shape=robot.camera.shape if first.inputs == "camera" else (0, 0),
        weights_every=int(first.weights_every), record_ground=bool(first.record_ground),
        rule_name=rule.name,
    )  # fmt: skip


def _shape_of(net: Any) -> tuple[Any, ...]:
    # What the kernels share across agents; the init only shaped the (per-agent) weights.
    return (
        net.n_inputs, tuple(net.layers), net.activation.name, net.bias, net.dtype.name,
        net.input_max_norm,
    )  # fmt: skip


def _step_options(rule: Any) -> tuple[Any, ...]:
    """The rule options a population's agents must share (one kernel constant each)."""
    return tuple(rule_options(rule).values())


def check_compatible(refs: list[ClosedLoop]) -> None:
    """Stacked reference loops must share everything but their agents' weights and rates."""
    if len(refs) == 1:
        return
    a = refs[0]
    na, ra = a.agent.network, a.agent.rule
    for b in refs[1:]:
        nb, rb = b.agent.network, b.agent.rule
        checks = {
            "t": (a.t, b.t),
            "track image": (a.robot.track.image.shape, b.robot.track.image.shape),
            "network": (_shape_of(na), _shape_of(nb)),
            "rule": (ra.name, rb.name),
            "relevance": (ra.relevance.cfg, rb.relevance.cfg),
            "rule options": (_step_options(ra), _step_options(rb)),
            "relevance count": (ra.relevance.count, rb.relevance.count),
            "world": (a.robot.cfg, b.robot.cfg),
            "loop": (
                (a.error_gain, a.speed, a.net_gain, a.weights_every, a.record_ground),
                (b.error_gain, b.speed, b.net_gain, b.weights_every, b.record_ground),
            ),
            "predictors": (
                (a.predictor_mode, a.predictors_per_row),
                (b.predictor_mode, b.predictors_per_row),
            ),
            "filter bank": (type(a.agent.bank), type(b.agent.bank)),
            "perception": (_grid_of(a), _grid_of(b)),
            "readout": (tuple(a.agent.readout), tuple(b.agent.readout)),
            "learning": (a.agent.learning, b.agent.learning),
        }
        for what, (x, y) in checks.items():
            if x != y:
                raise ValueError(f"stacked loops differ in {what}: {x!r} vs {y!r}")
        if a.robot.track is not b.robot.track and not np.array_equal(
            a.robot.track.image, b.robot.track.image
        ):
            raise ValueError("stacked loops run on different tracks")
        fa, fb = a.agent.bank, b.agent.bank
        if hasattr(fa, "coefficients") and not all(
            np.array_equal(x, y) for x, y in zip(fa.coefficients, fb.coefficients, strict=True)
        ):
            raise ValueError("stacked loops have different filter coefficients")


def _grid_of(loop: ClosedLoop) -> tuple[int, int] | None:
    p = loop.perception
    return None if loop.inputs != "camera" or p is None else (p.rows, p.cols)


def _camera_arrays(
    loop: ClosedLoop, population: int, n_pred: int
) -> tuple[C.CameraParams, C.CameraArrays]:
    """The camera stage's inputs for ``loop`` (placeholders, the stage off, for rows)."""
    from sarlearn.stages.perception.compiled import camera_arrays, camera_off
    from sarlearn.stages.perception.perception import darkness_predictors

    if loop.inputs != "camera":
        return camera_off(population)
    camera, rows, cols = loop.robot.camera, loop.perception.rows, loop.perception.cols
    darkness_predictors(np.zeros((1, *camera.shape)), rows, cols)  # a grid that does not fit
    if rows * (cols // 2) != n_pred:
        raise ShapeError(
            f"camera inputs: a {rows} x {cols} grid gives {rows * (cols // 2)} predictors but "
            f"the agent's filter bank takes {n_pred}"
        )
    return camera_arrays(camera, rows, cols, population, record_frame=loop.record_ground)


__all__ = [
    "SUPPORTED_RULES",
    "EngineState",
    "check_compatible",
    "check_supported",
    "put",
    "rule_options",
    "tanh_saturation",
]
