"""``FastClosedLoop``: the closed loop of :mod:`sarlearn.loop` run by compiled kernels.

It is built *from* reference objects (a :class:`~sarlearn.loop.ClosedLoop` with a
:class:`~sarlearn.stages.world.sim.SimWorld`, its agent, network, filter bank and rule), copies
their state (initial weights, filter state, relevance state, feedback matrices, start pose, sensor
readings) into flat arrays, and offers the same chunk interface: :meth:`FastClosedLoop.run` returns
the same per-step records as :meth:`ClosedLoop.run`.

State moves explicitly, in the manner of MuJoCo's MJX ``put``/``get``, and only through the
objects' public state (``state_dict()``/``load_state_dict()``, public arrays):

- :meth:`FastClosedLoop.reload` (put, :mod:`sarlearn.engine.put`) copies the reference objects
  into the engine's named tuples (:attr:`FastClosedLoop.state`); it runs at construction and
  must be called again after changing them;
- :meth:`FastClosedLoop.sync` (get, :mod:`sarlearn.engine.get`) writes the engine's state back
  into them; every chunk
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
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import RunConfig
from sarlearn.engine.get import get, new_records, records, weight_change, weights
from sarlearn.engine.kernels import run_chunk
from sarlearn.engine.put import (
    SUPPORTED_RULES,
    EngineState,
    check_compatible,
    check_supported,
    put,
)
from sarlearn.errors import DivergenceError
from sarlearn.loop import COMMAND_OVERFLOW, ClosedLoop
from sarlearn.stages.codes import (
    STATUS_OUTPUT_NONFINITE,
    STATUS_STEERING_NONFINITE,
    STATUS_WHEELS_NONFINITE,
    Chunk,
    Records,
    Replay,
)

#: The replay inputs of run_chunk when the world runs (placeholders of the same types).
_NO_REPLAY = Replay(False, np.zeros((1, 1)), np.zeros((1, 1)))


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
        check_compatible(refs)
        self._refs = refs
        self.block = None if block is None else max(1, int(block))
        self.partial: dict[str, Any] | None = None
        """Records of the steps completed in a chunk that raised (divergence)."""
        self.state: EngineState
        """The engine's arrays and parameters, the kernel's named tuples (put by
        :meth:`reload`). A benchmark may swap a parameter tuple between chunks."""
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
        track = self._refs[0].robot.track
        # the padded track image (8 MB) is copied once per track
        img = self.state.world.img if self._img_of is track else None
        self.state = put(self._refs, img)
        self._img_of = track
        s = self.state
        self.dtype, self.t, self.population, self.n_layers = s.dtype, s.t, s.population, s.n_layers
        self.weights_every, self.record_ground, self.rule_name = (
            s.weights_every, s.record_ground, s.rule_name
        )  # fmt: skip
        self._failed = False

    def sync(self) -> None:
        """Get: write the engine's state into the reference objects' public state.

        Every :meth:`run` (unless ``sync=False``, then :attr:`agent`, :attr:`robot` and
        :attr:`loops` catch up when read) and :meth:`step_agents` ends with it, so those are
        always up to date after a chunk."""
        self._stale = False
        self.state.t = self.t
        get(self.state, self._refs)

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
    def _chunk(
        self, n: int, block: int, t0: int, rec: Records, replay: Replay
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Run the kernel over an ``n``-step chunk from global step ``t0``; returns each
        agent's status and failure info."""
        s = self.state
        P = self.population
        status = np.zeros(P, dtype=np.int64)
        info = np.zeros((P, 2), dtype=np.int64)
        chunk = Chunk(t_global0=t0, rel_count0=s.rel_count, decay=s.decay)
        with _threads_for(P):
            run_chunk(
                n, max(1, block), chunk, s.world_par, s.switches, s.consts, s.cam_par,
                s.world, s.wstate, s.filt, s.net, s.rule, s.cam, rec,
                status, info, replay,
            )  # fmt: skip
        return status, info

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
        s, start, every = self.state, self.t, self.weights_every
        rec = new_records(s, n, (start + n) // every - start // every)
        block = n if self.block is None else self.block
        # n == 0 runs no step but still calls the kernel, which compiles it (or loads it from
        # numba's cache): run(0) is the warm-up that keeps compile time out of timings.
        status, info = self._chunk(n, block, start, rec, _NO_REPLAY)
        if status.any():
            self._failed = True
            bad = np.flatnonzero(status)
            step = int(info[bad, 0].min())
            done = step - start
            first = bad[info[bad, 0] == step]
            code = int(status[first[0]])
            layer = int(info[first[0], 1])
            self.t = start + done
            self.partial = records(s, rec, start, done)
            self.sync()
            if code == STATUS_WHEELS_NONFINITE:
                raise DivergenceError(COMMAND_OVERFLOW)
            raise DivergenceError(self._message(code, layer, first))
        if s.switches.learning and s.switches.uses_rel:
            s.rel_count += n
        self.t = start + n
        if sync:
            self.sync()
        else:
            self._stale = True
        return records(s, rec, start, n)

    def _message(self, code: int, layer: int, agents: NDArray[Any]) -> str:
        if code == STATUS_OUTPUT_NONFINITE:
            return "network output became non-finite (weights blew up?)"
        if code == STATUS_STEERING_NONFINITE:
            return "the network's steering output became NaN or infinite"
        lr = float(self.state.rule.lr[agents[0], layer])
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
        s, P = self.state, self.population
        pred = np.asarray(predictors, dtype=np.float64)
        err = np.ascontiguousarray(errors, dtype=np.float64)
        n = pred.shape[0]
        n_pred = s.n_pred
        if pred.shape != (n, P, n_pred) or err.shape != (n, P):
            raise ValueError(
                f"step_agents: need predictors ({n}, {P}, {n_pred}) and errors ({n}, {P}), got "
                f"{pred.shape} and {err.shape}"
            )
        pred = np.ascontiguousarray(pred.reshape(n, P * n_pred))
        rec = new_records(s, n, 0, world=False)
        rec.steering[...] = 0
        if n > 0:
            # the replayed steps are numbered from 0 (they take no weight-change samples)
            replay = Replay(True, pred, err)
            status, _ = self._chunk(n, n, 0, rec, replay)
            if status.any():
                self._failed = True
                self.sync()
                raise DivergenceError(
                    f"the agents' network became non-finite (status {status.tolist()})"
                )
        if s.switches.learning and s.switches.uses_rel:
            s.rel_count += n
        self.sync()
        return rec.steering

    # ------------------------------------------------------------------ read-outs
    def weight_change(self) -> NDArray[np.floating]:
        """``(P, L)`` Frobenius distance of each layer from its initial weights."""
        return weight_change(self.state)

    def weights(self, layer: int) -> NDArray[np.floating]:
        """Current weights of one layer, ``(P, n_out, n_in)`` (a copy)."""
        return weights(self.state, layer)

    @property
    def pose(self) -> NDArray[np.float64]:
        """``(P, 3)`` current poses (a copy)."""
        return self.state.wstate.pose.copy()


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
