"""The closed loop: a robot (simulated, replayed or real) and an agent, stepped in chunks.

:meth:`ClosedLoop.step` is the one place where a control cycle is defined::

    ground   = robot.read_ground()                      # (P, 2 + n_rows)
    e        = error_gain * (ground[:, 0] - ground[:, 1])  # reflex error
    x        = ground[:, 2:]  or  perception(robot.grab_frame())   # raw predictors
               (rows: or their left/right mirror differences, predictor_mode='mirror')
    y        = agent.step(e, x)                          # filters, forward, learn, readout
    u        = e + net_gain * y
    robot.set_wheel_speeds(speed - u, speed + u)

:meth:`ClosedLoop.run` repeats it ``n`` times and returns the per-step records as arrays
shaped ``(P, n)``; a compiled engine offers the same chunk interface. Pose and off-track
flags are recorded as sensed, i.e. *before* the wheels move in that step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.agent import ClosedLoopAgent
from sarlearn.config import RunConfig, WorldConfig
from sarlearn.errors import DivergenceError, ShapeError
from sarlearn.metrics import layer_saturation
from sarlearn.numerics import loop_errstate
from sarlearn.robots.interface import Robot, off_track_of, population_of, pose_of
from sarlearn.stages.motor.motor import reflex_error, wheel_speeds
from sarlearn.stages.perception.perception import make_perception, row_predictors

#: The error of a steering command that overflowed (a diverging network), in both loops.
COMMAND_OVERFLOW = (
    "the steering command u = e + G y overflowed (the network's output is near the float "
    "range: weights blew up?)"
)

#: Per-step record names, each ``(P, n)`` in the dict returned by :meth:`ClosedLoop.run`.
RECORDS = (
    "error",
    "steering",
    "left",
    "right",
    "x",
    "y",
    "heading",
    "off_track",
    "sensor_left",
    "sensor_right",
)

#: Per-step, per-layer record names, each ``(P, n, L)`` (L weight layers; 0 for the reflex
#: alone): ``saturated`` is the fraction of each layer's units whose slope is below
#: :data:`sarlearn.metrics.SATURATION_SLOPE` of f'(0) in that step's forward pass.
LAYER_RECORDS = ("saturated",)


def n_predictors_of(cfg: RunConfig) -> int:
    """Number of raw predictors the world config produces (rows of sensors or camera pairs);
    :func:`sarlearn.stages.perception.perception.n_predictors` of ``cfg.world``."""
    from sarlearn.stages.perception.perception import n_predictors

    return n_predictors(cfg.world_config)


def seed_generators(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the agent and the world, both from one seed."""
    agent_ss, world_ss = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(agent_ss), np.random.default_rng(world_ss)


class ClosedLoop:
    """An agent driving a robot, chunk by chunk; population-first throughout.

    Args:
        agent: the learner (:class:`~sarlearn.agent.ClosedLoopAgent`).
        robot: anything implementing :class:`~sarlearn.robots.interface.Robot`.
        error_gain: reflex error gain (``e = error_gain * (left - right)``).
        speed: base wheel speed ``v``.
        net_gain: network steering gain ``G``.
            (The defaults of the three are :class:`~sarlearn.config.WorldConfig`'s.)
        inputs: ``"rows"`` (predictors are the ground sensors after the reflex pair) or
            ``"camera"`` (predictors come from ``perception(robot.grab_frame())``).
        perception: frame ``(P, H, W)`` -> predictors ``(P, n)``; needed for camera inputs.
        predictor_mode: rows only: ``"raw"`` (the row sensors as they are) or ``"mirror"``
            (per row, left minus its mirror image on the right, so a centred line gives 0), see
            :func:`sarlearn.stages.perception.perception.row_predictors`.
        predictors_per_row: sensors per row (needed by ``"mirror"``).
        weights_every: sample ``agent.weight_change()`` after every ``weights_every`` steps.
        record_ground: also record every ground sensor, ``ground`` ``(P, n, n_ground)``, and
            with camera inputs every frame, ``frame`` ``(P, n, H, W)``, so the run can be
            replayed through :class:`~sarlearn.runs.replay.ReplayRobot`.
    """

    def __init__(
        self,
        agent: ClosedLoopAgent,
        robot: Robot,
        *,
        error_gain: float = WorldConfig.model_fields["error_gain"].default,
        speed: float = WorldConfig.model_fields["speed"].default,
        net_gain: float = WorldConfig.model_fields["net_gain"].default,
        inputs: str = "rows",
        perception: Callable[[NDArray[np.floating]], NDArray[np.floating]] | None = None,
        weights_every: int = 10,
        record_ground: bool = False,
        predictor_mode: str = "raw",
        predictors_per_row: int | None = None,
    ) -> None:
        if inputs not in ("rows", "camera"):
            raise ValueError(f"inputs must be 'rows' or 'camera', got {inputs!r}")
        if predictor_mode not in ("raw", "mirror"):
            raise ValueError(f"predictor_mode must be 'raw' or 'mirror', got {predictor_mode!r}")
        if predictor_mode == "mirror" and (
            inputs != "rows" or predictors_per_row is None or predictors_per_row % 2
        ):
            raise ValueError(
                "predictor_mode 'mirror' needs inputs='rows' and an even predictors_per_row, "
                f"got inputs={inputs!r}, predictors_per_row={predictors_per_row}"
            )
        if inputs == "camera" and perception is None:
            raise ValueError("camera inputs need a perception function (frame -> predictors)")
        if population_of(robot, agent.population) != agent.population:
            raise ShapeError(
                f"ClosedLoop: the robot runs {population_of(robot)} agents but the agent "
                f"population is {agent.population}"
            )
        self.agent = agent
        self.robot = robot
        self.error_gain = float(error_gain)
        self.speed = float(speed)
        self.net_gain = float(net_gain)
        self.inputs = inputs
        self.perception = perception
        self.predictor_mode = predictor_mode
        self.predictors_per_row = predictors_per_row
        self.weights_every = max(1, int(weights_every))
        self.record_ground = record_ground
        self.t = 0
        """Steps done so far (the index of the next step)."""
        self.partial: dict[str, Any] | None = None
        """Records of the steps completed in a chunk that raised (interrupt, divergence)."""

    # Class-level defaults: loops pickled before these options existed load as 'raw'.
    predictor_mode: str = "raw"
    predictors_per_row: int | None = None

    @property
    def population(self) -> int:
        """``P``, the number of agents in lockstep."""
        return self.agent.population

    @classmethod
    def from_config(
        cls,
        cfg: RunConfig,
        population: int = 1,
        robot: Robot | None = None,
        *,
        weights_every: int | None = None,
        record_ground: bool = False,
    ) -> ClosedLoop:
        """Build world (a :class:`~sarlearn.stages.world.sim.SimWorld` unless ``robot`` is given)
        and agent from ``cfg``; all randomness comes from ``cfg.seed``."""
        agent_rng, world_rng = seed_generators(cfg.seed)
        if robot is None:
            from sarlearn.stages.world.sim import SimWorld

            robot = SimWorld(cfg.world_config, population=population, rng=world_rng)
        agent = ClosedLoopAgent.from_config(
            cfg, n_predictors_of(cfg), population=population, rng=agent_rng
        )
        perception = make_perception(cfg) if cfg.world.inputs == "camera" else None
        every = weights_every if weights_every is not None else max(1, cfg.steps // 500)
        return cls(
            agent,
            robot,
            error_gain=cfg.world.error_gain,
            speed=cfg.world.speed,
            net_gain=cfg.world.net_gain,
            inputs=cfg.world.inputs,
            perception=perception,
            weights_every=every,
            record_ground=record_ground,
            predictor_mode=cfg.predictor_mode,
            predictors_per_row=cfg.world.predictors_per_row,
        )

    # ------------------------------------------------------------------ one control cycle
    def step(self) -> dict[str, NDArray[Any]]:
        """One control cycle for every agent; returns this step's values, each ``(P,)``."""
        with loop_errstate():
            return self._step()

    def _step(self) -> dict[str, NDArray[Any]]:
        robot = self.robot
        ground = np.asarray(robot.read_ground())
        pose = pose_of(robot)
        off = off_track_of(robot)
        e = reflex_error(ground[:, 0], ground[:, 1], self.error_gain)
        if self.inputs == "camera":
            frame = robot.grab_frame()
            if frame is None:
                raise RuntimeError("camera inputs selected but the robot returned no frame")
            predictors = self.perception(frame)  # type: ignore[misc]
        else:
            per_row = int(self.predictors_per_row or 0)
            predictors = row_predictors(ground[:, 2:], per_row, self.predictor_mode)
        y = self.agent.step(e, predictors)
        saturated = self._saturation()
        left, right = wheel_speeds(self.speed, e, y, self.net_gain)
        if not (np.all(np.isfinite(left)) and np.all(np.isfinite(right))):
            raise DivergenceError(COMMAND_OVERFLOW)  # y itself is finite (checked by the agent)
        robot.set_wheel_speeds(left, right)
        self.t += 1
        nan = np.full(self.population, np.nan)
        rec: dict[str, NDArray[Any]] = {
            "error": e,
            "steering": y,
            "left": left,
            "right": right,
            "x": nan if pose is None else pose[:, 0].copy(),
            "y": nan if pose is None else pose[:, 1].copy(),
            "heading": nan if pose is None else pose[:, 2].copy(),
            "off_track": np.zeros(self.population, bool) if off is None else off.copy(),
            "sensor_left": ground[:, 0].copy(),
            "sensor_right": ground[:, 1].copy(),
            "saturated": saturated,
        }
        if self.record_ground:
            rec["ground"] = ground.copy()
            if self.inputs == "camera":
                rec["frame"] = np.asarray(frame).copy()  # replayed by ReplayRobot
        return rec

    def _saturation(self) -> NDArray[np.float64]:
        """``(P, L)`` fraction of saturated units per layer in the last forward pass."""
        net = self.agent.network
        if net is None:
            return np.zeros((self.population, 0))
        return layer_saturation(net.slopes, net.activation.slope_at_zero)

    # ------------------------------------------------------------------ a chunk of steps
    def run(self, n: int) -> dict[str, NDArray[Any]]:
        """Run ``n`` control cycles.

        Returns:
            ``step`` ``(n,)`` global step indices; every name of :data:`RECORDS` as
            ``(P, n)``; ``saturated`` ``(P, n, L)`` (:data:`LAYER_RECORDS`); ``ground``
            ``(P, n, n_ground)`` if recorded; ``weight_steps``
            ``(K,)`` and ``weight_change`` ``(P, K, L)``: samples of the weight change taken
            after the steps in ``weight_steps``.

        If a step raises (Ctrl-C, divergence), the records of the steps completed in this
        chunk are left in :attr:`partial` and the exception propagates.
        """
        n = int(n)
        p = self.population
        start = self.t
        out: dict[str, NDArray[Any]] = {}
        w_steps: list[int] = []
        w_change: list[NDArray[Any]] = []
        self.partial = None
        i = 0
        try:
            with loop_errstate():
                for i in range(n):
                    rec = self.step()
                    if not out:
                        for key, val in rec.items():
                            out[key] = np.empty((p, n, *val.shape[1:]), dtype=val.dtype)
                    for key, val in rec.items():
                        out[key][:, i] = val
                    if self.t % self.weights_every == 0:
                        w_steps.append(self.t - 1)
                        w_change.append(self.agent.weight_change())
            i = n
        except BaseException:
            self.partial = _finish(out, start, i, w_steps, w_change, p, self.agent.n_layers)
            raise
        return _finish(out, start, n, w_steps, w_change, p, self.agent.n_layers)


def _finish(
    out: dict[str, NDArray[Any]],
    start: int,
    done: int,
    w_steps: list[int],
    w_change: list[NDArray[Any]],
    p: int,
    n_layers: int,
) -> dict[str, NDArray[Any]]:
    res: dict[str, NDArray[Any]] = {"step": np.arange(start, start + done)}
    for key in RECORDS:
        res[key] = out[key][:, :done] if key in out else np.zeros((p, 0))
    for key in LAYER_RECORDS:
        res[key] = out[key][:, :done] if key in out else np.zeros((p, 0, n_layers))
    for key in ("ground", "frame"):
        if key in out:
            res[key] = out[key][:, :done]
    for key in out:  # records a subclass adds to each step (sarlearn drive: cycle times)
        res.setdefault(key, out[key][:, :done])
    res["weight_steps"] = np.asarray(w_steps, dtype=np.int64)
    res["weight_change"] = np.stack(w_change, axis=1) if w_change else np.zeros((p, 0, n_layers))
    return res


__all__ = [
    "LAYER_RECORDS",
    "RECORDS",
    "ClosedLoop",
    "n_predictors_of",
    "seed_generators",
]
