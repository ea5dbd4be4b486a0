"""``FastClosedLoop``: the closed loop of :mod:`sarlearn.loop` run by compiled kernels.

It is built *from* reference objects (a :class:`~sarlearn.loop.ClosedLoop` with a
:class:`~sarlearn.stages.world.sim.SimWorld`, its agent, network, filter bank and rule), copies
their state (initial weights, filter state, relevance state, feedback matrices, start pose, sensor
readings) into flat arrays, and offers the same chunk interface: :meth:`FastClosedLoop.run` returns
the same per-step records as :meth:`ClosedLoop.run`.

State moves explicitly, in the manner of MuJoCo's MJX ``put``/``get``, and only through the
objects' public state (``state_dict()``/``load_state_dict()``, public arrays):

- :meth:`FastClosedLoop.reload` (put) copies the reference objects into the engine; it runs at
  construction and must be called again after changing them;
- :meth:`FastClosedLoop.sync` (get) writes the engine's state back into them; every chunk
  ends with it, so :attr:`agent`, :attr:`robot` and :attr:`loops` (plain properties without
  side effects) are up to date after each :meth:`run`, and checkpoints, ``network.save`` and
  weight read-outs work unchanged.

Both inputs run compiled: the ground-sensor rows and the camera (the simulator's pinhole camera
and :class:`~sarlearn.stages.perception.perception.CameraPredictors`,
:mod:`~sarlearn.stages.perception.compiled`). Anything the kernels do not cover raises
:class:`NotImplementedError` at construction (robots other than the simulator, a custom
perception function, custom rule classes, the reflex-only agent); callers fall back to the
reference loop (see :func:`make_closed_loop`).

A population of independent runs (different seeds or learning rates) can be stacked with
:meth:`FastClosedLoop.from_configs`: agent k is then bit-identical to the single run of
``cfgs[k]``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import RunConfig
from sarlearn.engine import kernels as K
from sarlearn.errors import DivergenceError, ShapeError
from sarlearn.loop import COMMAND_OVERFLOW, LAYER_RECORDS, RECORDS, ClosedLoop
from sarlearn.numerics import flush_threshold, loop_errstate
from sarlearn.recipes import RULE_NAMES

_ACT_CODES = {"logistic": K.ACT_LOGISTIC, "tanh": K.ACT_TANH, "linear": K.ACT_LINEAR}
_NO_REPLAY = np.zeros((1, 1))  # the replay inputs of run_chunk when the world runs

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


@contextlib.contextmanager
def _threads_for(population: int) -> Iterator[None]:
    """Use no more numba threads than agents.

    With one agent a second thread has nothing to do, but the OpenMP layer would keep it
    spinning (a whole core burnt, which matters when a sweep runs one process per core).
    """
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(max(1, min(before, population)))
    try:
        yield
    finally:
        numba.set_num_threads(before)


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


def _rule_uses_relevance(rule: Any) -> bool:
    return bool(type(rule).uses_relevance)


class FastClosedLoop:
    """The compiled closed loop over one or more reference loops (agents stacked in order).

    Args:
        loops: one :class:`~sarlearn.loop.ClosedLoop` (population P), or several that share
            the world, network shape, rule (name and relevance settings; lr may differ),
            filter bank and sampling settings, all at the same step ``t``. Their agents are
            stacked into one population.
        block: steps each thread advances one agent before moving to the next; None = the
            whole chunk (an agent's weights then stay in cache; best throughput). 1 = strict
            lockstep over the population (what a batched numpy loop does).

    Raises:
        NotImplementedError: a configuration the kernels do not cover (see
            :func:`check_supported`); use the reference loop instead.
    """

    def __init__(self, loops: ClosedLoop | Sequence[ClosedLoop], block: int | None = None):
        refs = [loops] if isinstance(loops, ClosedLoop) else list(loops)
        if not refs:
            raise ValueError("FastClosedLoop needs at least one reference loop")
        for ref in refs:
            check_supported(ref)
        _check_compatible(refs)
        self._refs = refs
        self.block = None if block is None else max(1, int(block))
        self.partial: dict[str, Any] | None = None
        """Records of the steps completed in a chunk that raised (divergence)."""
        self._img_of: Any = None  # the track whose padded image the engine holds
        self._stale = False  # the reference objects lag behind (after run(sync=False))
        self.reload()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls,
        cfg: RunConfig,
        population: int = 1,
        *,
        weights_every: int | None = None,
        record_ground: bool = False,
        block: int | None = None,
    ) -> FastClosedLoop:
        """Build the reference loop of ``cfg`` (same seeds, same initial state) and compile it."""
        ref = ClosedLoop.from_config(
            cfg, population=population, weights_every=weights_every, record_ground=record_ground
        )
        return cls(ref, block=block)

    @classmethod
    def from_configs(
        cls,
        cfgs: Sequence[RunConfig],
        *,
        weights_every: int | None = None,
        record_ground: bool = False,
        block: int | None = None,
    ) -> FastClosedLoop:
        """A population of independent single-agent runs, agent k = the run of ``cfgs[k]``.

        The configs may differ in seed and learning rate (anything that changes only the
        initial weights or ``rule.lr``/``layer_lr_scale``); the world, network shape, rule and
        filters must agree. The track is loaded once and shared.
        """
        if not cfgs:
            raise ValueError("from_configs needs at least one config")
        # Each run exactly as ClosedLoop.from_config builds it (seeded weights, start pose);
        # generated tracks come from load_track's cache, so the track is built once.
        refs = [
            ClosedLoop.from_config(cfg, 1, weights_every=weights_every, record_ground=record_ground)
            for cfg in cfgs
        ]
        return cls(refs, block=block)

    # ------------------------------------------------------------------ state in and out
    def reload(self) -> None:
        """Put: copy the reference objects' public state into the engine's flat arrays.

        Called at construction; call it again after changing the reference objects (weights,
        filter or relevance state, the world's state) so that the next chunk starts from
        them. The engine never reads them behind your back."""
        self._catch_up()
        refs = self._refs
        first = refs[0]
        robot, agent = first.robot, first.agent
        net, bank, rule = agent.network, agent.bank, agent.rule
        dt = net.dtype
        self.dtype = dt
        self.t = int(first.t)
        self._counts = [r.population for r in refs]
        P = sum(self._counts)
        self.population = P
        L = net.n_layers
        self.n_layers = L
        # Offsets are unsigned: the kernels index with them without wrap-around checks.
        sizes = np.array([net.n_inputs, *net.layers], dtype=np.uint64)
        self._sizes = sizes
        wsz = sizes[:-1] * sizes[1:]
        self._woff = np.concatenate([[0], np.cumsum(wsz)]).astype(np.uint64)
        self._noff = np.concatenate([[0], np.cumsum(sizes[1:])]).astype(np.uint64)
        NW, NN = int(self._woff[-1]), int(self._noff[-1])

        # -- world (shared track, per-agent pose / counters / readings)
        track = robot.track
        # The track's own padded image and clamps: one lookup rule for both loops.
        table = track.lookup_table
        if self._img_of is not track:  # a writable copy (8 MB) once per track
            self._img = np.array(table.flat, dtype=np.float64)
            self._img_of = track
        pos = np.asarray(robot.sensors.positions, dtype=np.float64)
        self._sx = np.ascontiguousarray(pos[:, 0])
        self._sy = np.ascontiguousarray(pos[:, 1])
        from sarlearn.stages.world.sim import LINE_SEEN

        self._world_par = K.WorldParams(
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
        self._pose = np.concatenate([w["pose"] for w in worlds]).astype(np.float64)
        self._lost = np.concatenate([w["lost"] for w in worlds]).astype(np.int64)
        self._ground = np.ascontiguousarray(
            np.concatenate([w["ground"] for w in worlds]), dtype=np.float64
        )

        # -- filter bank
        from sarlearn.stages.filters.bank import DelayLineBank

        n_pred = bank.n_predictors
        n_f = bank.n_filters
        # States flattened predictor-major, (P, n_pred * n_f): y[n] is the network input.
        # The resonators' coefficients and previous inputs are expanded to one entry per state
        # (N = n_pred * n_f), so the kernel advances all states in one contiguous loop.
        if isinstance(bank, DelayLineBank):
            fkind = K.FILTER_DELAY
            self._fcoef = np.zeros((4, n_pred * n_f), dtype=dt)
            self._fy1 = np.concatenate([r.agent.bank.state_dict()["taps"] for r in refs])
            self._fy2 = np.zeros((P, n_pred, n_f), dtype=dt)
            self._fu1 = np.zeros((P, n_pred, n_f), dtype=dt)
        else:
            fkind = K.FILTER_RESONATOR
            coef = np.stack(bank.coefficients).astype(dt)
            self._fcoef = np.ascontiguousarray(np.tile(coef, (1, n_pred)))
            states = [r.agent.bank.state_dict() for r in refs]
            self._fy1 = np.concatenate([s["y1"] for s in states])
            self._fy2 = np.concatenate([s["y2"] for s in states])
            u1 = np.concatenate([s["u1"] for s in states])  # (P, n_pred, 1)
            self._fu1 = np.broadcast_to(u1, (P, n_pred, n_f)).copy()  # writable, also for n_f = 1
        self._fy1 = np.ascontiguousarray(self._fy1.reshape(P, -1), dtype=dt)
        self._fy2 = np.ascontiguousarray(self._fy2.reshape(P, -1), dtype=dt)
        self._fu1 = np.ascontiguousarray(self._fu1.reshape(P, -1), dtype=dt)
        self._fux = np.zeros_like(self._fu1)
        self._n_filters = n_f
        self._n_pred = n_pred

        # -- network: all layers' (n_out, n_in) matrices in one flat row per agent
        self._W = np.empty((P, NW), dtype=dt)
        self._W0 = np.empty((P, NW), dtype=dt)
        self._bias = np.zeros((P, NN if net.biases is not None else 1), dtype=dt)
        for sl, ref in self._slices():
            rnet = ref.agent.network
            for li in range(L):
                a, b = self._woff[li], self._woff[li + 1]
                self._W[sl, a:b] = rnet.weights[li].reshape(-1, b - a)
                self._W0[sl, a:b] = rnet.initial_weights[li].reshape(-1, b - a)
                if rnet.biases is not None:
                    self._bias[sl, self._noff[li] : self._noff[li + 1]] = rnet.biases[li]
        self._h = np.concatenate([np.concatenate(r.agent.network.pre, axis=1) for r in refs])
        self._post = np.concatenate([np.concatenate(r.agent.network.post, axis=1) for r in refs])
        self._slope = np.concatenate([np.concatenate(r.agent.network.slopes, axis=1) for r in refs])
        self._h, self._post, self._slope = (
            np.ascontiguousarray(a, dtype=dt) for a in (self._h, self._post, self._slope)
        )
        self._sig = np.zeros((P, NN), dtype=dt)
        self._rfw = np.zeros((P, NN), dtype=dt)
        # scratch per agent; with an input cap, its last n_inputs entries hold the capped input
        cap = net.input_max_norm
        extra = 0 if cap is None else 1 + int(sizes[1:].max()) + int(sizes[0]) - int(sizes.max())
        self._tmp = np.zeros((P, max(int(sizes.max()), 1) + extra), dtype=dt)
        self._readout = np.asarray(agent.readout, dtype=dt)

        # -- rule
        relcfg = rule.relevance.cfg
        # lr_l = lr * scale_l is a Python float; the rule's `dw *= lr` casts it to the dtype.
        rates = [np.asarray(r.agent.rule.lr_per_layer, dtype=dt) for r in refs]
        self._lr = np.concatenate(
            [np.tile(lr, (r.population, 1)) for lr, r in zip(rates, refs, strict=True)]
        )
        from sarlearn.stages.rules.compiled import hidden_bound_fan_in
        from sarlearn.stages.rules.relevance import NORM_EPS

        inv_readout = 0.0
        if rule.output_scale is not None:
            inv_readout = 1.0 / max(abs(float(c)) for c in agent.readout)
        # (step_norm is already in the per-layer rates)
        values = K.Constants(
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
            weight_bound=rule.weight_bound or 0.0,
            rel_cap=relcfg.cap or 0.0,
            flush=flush_threshold(dt),
            hidden_bound=rule.hidden_bound or 0.0,
            hidden_bound_fan_in=hidden_bound_fan_in(rule.hidden_bound_scaling),
            input_max_norm=cap or 0.0,
        )
        self._consts = K.Constants(*(dt.type(v) for v in values))  # in the agent's dtype
        self._decay = float(relcfg.norm_decay)
        self._rel_m = np.concatenate([r.agent.rule.relevance.lowpassed for r in refs]).astype(dt)
        self._rel_n = np.concatenate([r.agent.rule.relevance.mean_abs for r in refs]).astype(dt)
        self._rel_count = int(rule.relevance.count)
        fbs = [r.agent.rule.feedback for r in refs]
        if fbs[0]:
            sizes_fb = [int(np.prod(b.shape[1:])) for b in fbs[0]]
            self._boff = np.concatenate([[0], np.cumsum(sizes_fb)]).astype(np.uint64)
            self._fb = np.concatenate(
                [np.concatenate([b.reshape(b.shape[0], -1) for b in fb], axis=1) for fb in fbs]
            ).astype(dt)
        else:
            self._boff = np.zeros(1, dtype=np.uint64)
            self._fb = np.zeros((P, 1), dtype=dt)

        uses_rel = _rule_uses_relevance(rule)
        self._switches = K.Switches(
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
            slope_gate=int(rule.slope_gate),
            output_share=int(rule.output_scale is not None),
            has_weight_bound=int(rule.weight_bound is not None),
            has_hidden_bound=int(rule.hidden_bound is not None),
            mirror_row=first.predictors_per_row if first.predictor_mode == "mirror" else 0,
            weights_every=int(first.weights_every),
            record_ground=int(first.record_ground),
            input_cap=int(cap is not None),
        )
        self.weights_every = first.weights_every
        self.record_ground = first.record_ground
        self.rule_name = rule.name
        # The kernels take their arrays grouped in tuples (see kernels.run_chunk).
        self._world = (self._img, self._sx, self._sy)
        self._wstate = (self._pose, self._lost, self._ground)
        # the camera stage's parameters and buffers (r_frame is added per chunk)
        self._cam_par, self._cam = _camera_arrays(first, P, n_pred)
        self._frame_shape = robot.camera.shape if first.inputs == "camera" else (0, 0)
        self._filt = (self._fcoef, self._fy1, self._fy2, self._fu1, self._fux)
        # the last weight-change sample, and whether the weights may have changed since
        self._wc_last = np.zeros((P, L), dtype=dt)
        self._wc_dirty = np.ones(P, dtype=np.uint8)
        self._net = (
            self._sizes, self._woff, self._noff, self._W, self._W0, self._bias, self._h,
            self._post, self._slope, self._sig, self._rfw, self._tmp, self._readout,
            self._wc_last, self._wc_dirty,
        )  # fmt: skip
        # rows known to lie inside the weight bound (none yet: the next check looks at all)
        self._inside = np.zeros((P, NN), dtype=np.uint8)
        self._rule = (self._lr, self._rel_m, self._rel_n, self._fb, self._boff, self._inside)
        self._failed = False

    def _slices(self) -> list[tuple[slice, ClosedLoop]]:
        out, a = [], 0
        for ref, n in zip(self._refs, self._counts, strict=True):
            out.append((slice(a, a + n), ref))
            a += n
        return out

    def sync(self) -> None:
        """Get: write the engine's state into the reference objects' public state.

        Every :meth:`run` (unless ``sync=False``, then :attr:`agent`, :attr:`robot` and
        :attr:`loops` catch up when read) and :meth:`step_agents` ends with it, so those are
        always up to date after a chunk."""
        self._stale = False
        L = self.n_layers
        for sl, ref in self._slices():
            agent, robot = ref.agent, ref.robot
            net = agent.network
            for li in range(L):
                a, b = self._woff[li], self._woff[li + 1]
                net.weights[li][...] = self._W[sl, a:b].reshape(net.weights[li].shape)
                n0, n1 = self._noff[li], self._noff[li + 1]
                if net.biases is not None:
                    net.biases[li][...] = self._bias[sl, n0:n1]
                net.pre[li][...] = self._h[sl, n0:n1]
                net.post[li][...] = self._post[sl, n0:n1]
                net.slopes[li][...] = self._slope[sl, n0:n1]
            net.layer_inputs[0][...] = self._fy1[sl]  # the filter output is the network input
            bank = agent.bank
            shape = (-1, bank.n_predictors, self._n_filters)
            if "taps" in bank.state_dict():
                bank.load_state_dict({"taps": self._fy1[sl].reshape(shape)})
            else:
                bank.load_state_dict(
                    {
                        "y1": self._fy1[sl].reshape(shape),
                        "y2": self._fy2[sl].reshape(shape),
                        "u1": self._fu1[sl].reshape(shape)[:, :, :1],
                    }
                )
            rel = agent.rule.relevance
            rel.lowpassed[...] = self._rel_m[sl]
            rel.mean_abs[...] = self._rel_n[sl]
            rel.count = self._rel_count
            moved = self.t - ref.t
            robot.load_state_dict(
                {
                    "pose": self._pose[sl],
                    "lost": self._lost[sl],
                    "ground": self._ground[sl],
                    "steps": robot.steps + moved,
                }
            )
            ref.t = self.t

    @property
    def loops(self) -> list[ClosedLoop]:
        """The reference loops (up to date after every chunk: a chunk run with ``sync=False``
        is synced here first).

        After changing them, call :meth:`reload` before the next chunk."""
        self._catch_up()
        return self._refs

    @property
    def agent(self) -> Any:
        """The reference :class:`~sarlearn.agent.ClosedLoopAgent` (single reference loop only)."""
        return self._single().agent

    @property
    def robot(self) -> Any:
        """The reference :class:`~sarlearn.stages.world.sim.SimWorld` (single reference loop
        only)."""
        return self._single().robot

    def _catch_up(self) -> None:
        """Sync the reference objects if a chunk ran with ``sync=False`` since the last sync."""
        if self._stale:
            self.sync()

    def _single(self) -> ClosedLoop:
        self._catch_up()
        loops = self._refs
        if len(loops) != 1:
            raise AttributeError("a stacked population has several agents/robots; use .loops")
        return loops[0]

    def __getstate__(self) -> dict[str, Any]:
        # Checkpoints pickle the reference objects only (in sync after every chunk); the
        # engine rebuilds from them.
        self._catch_up()
        return {"refs": self._refs, "block": self.block}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["refs"], block=state["block"])  # type: ignore[misc]

    # ------------------------------------------------------------------ running
    def run(self, n: int, *, sync: bool = True) -> dict[str, NDArray[Any]]:
        """Run ``n`` control cycles; records exactly as :meth:`ClosedLoop.run` returns them.

        ``sync=False`` defers the :meth:`sync` at the end of the chunk (not after a divergence)
        until the reference objects are next asked for (:attr:`loops`, :attr:`agent`,
        :attr:`robot`, :meth:`reload`, pickling): a sweep's population, which reads only the
        records and :meth:`weight_change`, then pays for it once instead of after every chunk.

        Raises:
            DivergenceError: the network's output, its weights or the steering command became
                non-finite; the records of the steps completed before it are in
                :attr:`partial`. (The compiled kernels raise no floating-point warnings; they
                check finiteness where the reference does.)
        """
        if self._failed:
            raise RuntimeError("this FastClosedLoop diverged; build a new one")
        n = int(n)
        P, dt = self.population, self.dtype
        start = self.t
        every = self.weights_every
        n_samples = (start + n) // every - start // every
        rec64 = np.empty((8, P, n))
        steer = np.empty((P, n), dtype=dt)
        off = np.empty((P, n), dtype=np.bool_)
        ng = self._ground.shape[1]
        ground = np.empty((P, n, ng) if self.record_ground else (P, 0, 0))
        wc = np.empty((P, n_samples, self.n_layers), dtype=dt)
        sat = np.empty((P, n, self.n_layers))
        status = np.zeros(P, dtype=np.int64)
        info = np.zeros((P, 2), dtype=np.int64)
        record_frame = bool(self._cam_par.record_frame)
        frame_size = self._frame_shape[0] * self._frame_shape[1]
        r_frame = np.empty((P, n, frame_size) if record_frame and n > 0 else (P, 0, 0))
        block = n if self.block is None else self.block
        # n == 0 runs no step but still calls the kernel, which compiles it (or loads it from
        # numba's cache): run(0) is the warm-up that keeps compile time out of timings.
        if n >= 0:
            rec = (
                rec64[0], steer, rec64[1], rec64[2], rec64[3], rec64[4], rec64[5], off,
                rec64[6], rec64[7], ground, wc, sat,
            )  # fmt: skip
            with _threads_for(P):
                K.run_chunk(
                    n, max(1, block), start, self._rel_count, self._decay, self._world,
                    self._world_par, self._wstate, self._switches, self._consts, self._filt,
                    self._net, self._rule, rec, status, info, False, _NO_REPLAY, _NO_REPLAY,
                    self._cam_par, (*self._cam, r_frame),
                )  # fmt: skip
        out: dict[str, NDArray[Any]] = {
            "error": rec64[0],
            "steering": steer,
            "left": rec64[1],
            "right": rec64[2],
            "x": rec64[3],
            "y": rec64[4],
            "heading": rec64[5],
            "off_track": off,
            "sensor_left": rec64[6],
            "sensor_right": rec64[7],
            "saturated": sat,
        }
        if self.record_ground:
            out["ground"] = ground
        if record_frame:  # camera frames, as ClosedLoop records them with the ground
            out["frame"] = r_frame.reshape(P, n, *self._frame_shape)
        if status.any():
            self._failed = True
            bad = np.flatnonzero(status)
            step = int(info[bad, 0].min())
            done = step - start
            first = bad[info[bad, 0] == step]
            code = int(status[first[0]])
            layer = int(info[first[0], 1])
            self.t = start + done
            self.partial = self._finish(out, start, done, wc)
            self.sync()
            if code == K.STATUS_WHEELS_NONFINITE:
                raise DivergenceError(COMMAND_OVERFLOW)
            raise DivergenceError(self._message(code, layer, first))
        if self._switches.learning and self._switches.uses_rel:
            self._rel_count += n
        self.t = start + n
        if sync:
            self.sync()
        else:
            self._stale = True
        return self._finish(out, start, n, wc)

    def _finish(
        self, out: dict[str, NDArray[Any]], start: int, done: int, wc: NDArray[Any]
    ) -> dict[str, NDArray[Any]]:
        every = self.weights_every
        first = (start // every + 1) * every - 1
        w_steps = np.arange(first, start + done, every, dtype=np.int64)
        res: dict[str, NDArray[Any]] = {"step": np.arange(start, start + done)}
        for key in (*RECORDS, *LAYER_RECORDS):
            res[key] = out[key][:, :done]
        for key in ("ground", "frame"):
            if key in out:
                res[key] = out[key][:, :done]
        res["weight_steps"] = w_steps
        res["weight_change"] = wc[:, : len(w_steps)]
        return res

    def _message(self, code: int, layer: int, agents: NDArray[Any]) -> str:
        if code == K.STATUS_OUTPUT_NONFINITE:
            return "network output became non-finite (weights blew up?)"
        if code == K.STATUS_STEERING_NONFINITE:
            return "the network's steering output became NaN or infinite"
        lr = float(self._lr[agents[0], layer])
        return (
            f"layer {layer} (0 = first hidden layer, {self.n_layers - 1} = output) became "
            f"non-finite after a {self.rule_name!r} step with lr={lr:g} for agents "
            f"{agents.tolist()}"
        )

    def step_agents(
        self, predictors: NDArray[np.floating], errors: NDArray[np.floating]
    ) -> NDArray[np.floating]:
        """Run only the agents (filters, forward, rule; no world) on given inputs.

        Equivalent to ``n`` calls of ``ClosedLoopAgent.step(errors[t], predictors[t])``: the
        agents' state (weights, filters, relevance) advances, the world does not and ``t`` is
        unchanged. Used to time the learner alone (``benchmarks/compare.py``) and to drive the
        agents from recorded or real sensor data.

        Args:
            predictors: ``(n, P, n_predictors)`` raw predictors.
            errors: ``(n, P)`` closed-loop errors.

        Returns:
            ``(P, n)`` the steering ``y`` of every step.

        Raises:
            DivergenceError: an output or the weights became non-finite.
        """
        P = self.population
        pred = np.asarray(predictors, dtype=np.float64)
        err = np.ascontiguousarray(errors, dtype=np.float64)
        n = pred.shape[0]
        n_pred = self._n_pred
        if pred.shape != (n, P, n_pred) or err.shape != (n, P):
            raise ValueError(
                f"step_agents: need predictors ({n}, {P}, {n_pred}) and errors ({n}, {P}), got "
                f"{pred.shape} and {err.shape}"
            )
        pred = np.ascontiguousarray(pred.reshape(n, P * n_pred))
        rec64 = np.empty((8, P, n))
        steer = np.zeros((P, n), dtype=self.dtype)
        rec = (
            rec64[0], steer, rec64[1], rec64[2], rec64[3], rec64[4], rec64[5],
            np.empty((P, n), dtype=np.bool_), rec64[6], rec64[7], np.empty((P, 0, 0)),
            np.empty((P, 0, self.n_layers), dtype=self.dtype), np.empty((P, n, self.n_layers)),
        )  # fmt: skip
        status = np.zeros(P, dtype=np.int64)
        info = np.zeros((P, 2), dtype=np.int64)
        if n > 0:
            with _threads_for(P):
                K.run_chunk(
                    n, n, 0, self._rel_count, self._decay, self._world, self._world_par,
                    self._wstate, self._switches, self._consts, self._filt, self._net, self._rule,
                    rec, status, info, True, pred, err, self._cam_par,
                    (*self._cam, np.empty((P, 0, 0))),
                )  # fmt: skip
        if status.any():
            self._failed = True
            self.sync()
            raise DivergenceError(
                f"the agents' network became non-finite (status {status.tolist()})"
            )
        if self._switches.learning and self._switches.uses_rel:
            self._rel_count += n
        self.sync()
        return steer

    # ------------------------------------------------------------------ read-outs
    def weight_change(self) -> NDArray[np.floating]:
        """``(P, L)`` Frobenius distance of each layer from its initial weights."""
        out = np.empty((self.population, self.n_layers), dtype=self.dtype)
        with loop_errstate():  # near-overflow weights give inf, as the reference's read-out
            for li in range(self.n_layers):
                a, b = self._woff[li], self._woff[li + 1]
                d = self._W[:, a:b] - self._W0[:, a:b]
                out[:, li] = np.sqrt(np.sum(d * d, axis=1))
        return out

    def weights(self, layer: int) -> NDArray[np.floating]:
        """Current weights of one layer, ``(P, n_out, n_in)`` (a copy)."""
        a, b = self._woff[layer], self._woff[layer + 1]
        nin, nout = self._sizes[layer], self._sizes[layer + 1]
        return self._W[:, a:b].reshape(-1, nout, nin).copy()

    @property
    def pose(self) -> NDArray[np.float64]:
        """``(P, 3)`` current poses (a copy)."""
        return self._pose.copy()


def _shape_of(net: Any) -> tuple[Any, ...]:
    # What the kernels share across agents; the init only shaped the (per-agent) weights.
    return (
        net.n_inputs, tuple(net.layers), net.activation.name, net.bias, net.dtype.name,
        net.input_max_norm,
    )  # fmt: skip


def _step_options(rule: Any) -> tuple[Any, ...]:
    """The rule options a population's agents must share (one kernel constant each)."""
    return (
        rule.slope_gate,
        rule.weight_bound,
        rule.output_scale,
        rule.hidden_bound,
        rule.hidden_bound_scaling,
    )


def _check_compatible(refs: list[ClosedLoop]) -> None:
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


def _camera_arrays(loop: ClosedLoop, population: int, n_pred: int) -> tuple[Any, tuple[Any, ...]]:
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


def make_closed_loop(
    cfg: RunConfig,
    population: int = 1,
    *,
    engine: str = "auto",
    weights_every: int | None = None,
    record_ground: bool = False,
) -> ClosedLoop | FastClosedLoop:
    """The closed loop of ``cfg``: compiled when possible, else the reference loop.

    Args:
        engine: ``"auto"`` (compiled if supported, else numpy), ``"fast"`` (compiled or
            NotImplementedError) or ``"numpy"`` (the reference loop).
    """
    if engine not in ("auto", "fast", "numpy"):
        raise ValueError(f"engine must be 'auto', 'fast' or 'numpy', got {engine!r}")
    ref = ClosedLoop.from_config(
        cfg, population=population, weights_every=weights_every, record_ground=record_ground
    )
    if engine == "numpy":
        return ref
    try:
        return FastClosedLoop(ref)
    except NotImplementedError:
        if engine == "fast":
            raise
        return ref


__all__ = ["SUPPORTED_RULES", "FastClosedLoop", "check_supported", "make_closed_loop"]
