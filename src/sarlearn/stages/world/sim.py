"""SimWorld: the simulated line-following world behind the robot interface.

One control cycle: :meth:`SimWorld.set_wheel_speeds` moves every robot along its exact arc for
``dt`` seconds, then reads all ground sensors at the new pose (one vectorised lookup, cached for
:meth:`SimWorld.read_ground`) and updates the off-track flags. The camera frame is rendered only
when asked for.

With ``cfg.realism`` on (:mod:`sarlearn.stages.world.realism`), the wheel speeds pass through the
command delay and the motors first, the readings through the lighting, noise and ADC, and the
frame through the lighting, exposure, blur and noise; the off-track flags keep using the ideal
readings (they describe where the robot is, not what it senses). With realism off none of it
runs.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from sarlearn.config import WorldConfig
from sarlearn.errors import NonFiniteError, ShapeError
from sarlearn.stages.motor.motor import reflex_error, wheel_speeds
from sarlearn.stages.perception.perception import n_predictors, predictors_of
from sarlearn.stages.world.camera import PinholeCamera
from sarlearn.stages.world.realism import Realism
from sarlearn.stages.world.robot import advance
from sarlearn.stages.world.sensors import (
    GroundSensors,
    off_track_formula,
    predictor_rows,
    reflex_pair,
)
from sarlearn.stages.world.start import start_pose, start_poses
from sarlearn.stages.world.track import Track
from sarlearn.stages.world.tracks import load_track

#: A sensor reading above this darkness counts as seeing the line (off-track detection).
LINE_SEEN = 0.1


class SimWorld:
    """``P`` simulated robots in lockstep on one track.

    Args:
        cfg: the world's configuration (track, robot, sensors, camera, time step).
        population: number of robots ``P``.
        rng: draws the random start poses; with realism on, a child of it draws the noise
            (without one the noise is seeded with 0). The ideal world is deterministic.
        track: use this track instead of loading ``cfg.track``.
        camera: fit the camera; ``None`` = only when ``cfg.inputs == "camera"``.
        dtype: dtype of the readings handed out (poses stay float64).

    Attributes:
        track: the :class:`Track`.
        sensors: all ground sensors, reflex pair first then the predictor rows.
        camera: the :class:`PinholeCamera` or None.
        realism: the :class:`~sarlearn.stages.world.realism.Realism` state, None when realism
            is off.
        population: ``P``.
    """

    def __init__(
        self,
        cfg: WorldConfig | None = None,
        population: int = 1,
        rng: np.random.Generator | None = None,
        *,
        track: Track | None = None,
        camera: bool | None = None,
        dtype: DTypeLike = np.float64,
    ) -> None:
        cfg = cfg if cfg is not None else WorldConfig()
        if population < 1:
            raise ShapeError(f"SimWorld: population must be >= 1, got {population}")
        self.cfg = cfg
        self.population = int(population)
        self.dtype = np.dtype(dtype)
        self.track = (
            track
            if track is not None
            else load_track(cfg.track, cfg.arena, cfg.track_seed, cfg.resolution, cfg.line_width)
        )
        self.sensors: GroundSensors = reflex_pair(cfg) + predictor_rows(cfg)
        fit_camera = cfg.inputs == "camera" if camera is None else camera
        self.camera = PinholeCamera.from_config(cfg.camera) if fit_camera else None
        self.starts = self._start_poses(rng)
        self.axle = float(cfg.axle)
        """Distance between the wheels (units)."""
        self.dt = float(cfg.dt)
        """Duration of one control cycle (s)."""
        self._gain = float(cfg.error_gain)
        self.realism: Realism | None = None
        params = cfg.realism.resolve()
        if params.active:
            # A child generator: the noise does not shift any draw of the world's own rng.
            noise_rng = rng.spawn(1)[0] if rng is not None else np.random.default_rng(0)
            self.realism = Realism(
                params, self.population, self.dt, self.track.width, self.track.height, noise_rng
            )
        self.reset()

    def _start_poses(self, rng: np.random.Generator | None) -> NDArray[np.float64]:
        """``(P, 3)`` start poses: the configured one, a random place on the line per robot
        (``random_start`` with an rng), or the deterministic automatic start."""
        if self.cfg.start is not None:
            return np.tile(np.asarray(self.cfg.start, dtype=np.float64), (self.population, 1))
        if self.cfg.random_start and rng is not None:
            return start_poses(self.track, self.population, rng)
        return np.tile(start_pose(self.track), (self.population, 1))

    @property
    def start(self) -> NDArray[np.float64]:
        """``(3,)`` the first robot's start pose (all robots' are in ``starts``)."""
        return self.starts[0]

    # Class-level default: worlds pickled before realism existed load with it off.
    realism: Realism | None = None

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """All robots back to their start poses; counters cleared."""
        self._pose = self.starts.copy()
        self._lost = np.zeros(self.population, dtype=np.int64)
        self.steps = 0
        if self.realism is not None:
            self.realism.reset()
        self._sense()

    @property
    def pose(self) -> NDArray[np.float64]:
        """``(P, 3)`` x, y, heading (a copy)."""
        return self._pose.copy()

    @pose.setter
    def pose(self, value: ArrayLike) -> None:
        p = np.array(value, dtype=np.float64)
        if p.shape == (3,):
            p = np.tile(p, (self.population, 1))
        if p.shape != (self.population, 3) or not np.isfinite(p).all():
            raise ShapeError(f"SimWorld.pose: need finite ({self.population}, 3), got {p.shape}")
        self._pose = p
        self._lost[:] = 0
        self._sense()

    def state_dict(self) -> dict[str, NDArray[np.generic]]:
        """Copies of the world's state: ``pose`` ``(P, 3)``, ``lost`` ``(P,)`` (steps without
        seeing the line), ``ground`` ``(P, n_sensors)`` (float64, the reading at ``pose``) and
        ``steps``. With :meth:`load_state_dict` this is how a compiled engine takes the state
        out and puts it back (the reading is not re-sensed, so it round-trips exactly)."""
        state = {
            "pose": self._pose.copy(),
            "lost": self._lost.copy(),
            "ground": self._ground.copy(),
            "steps": np.array(self.steps),
        }
        if self.realism is not None:  # realism on: the ideal reading and the effects' state
            state["ideal"] = self._ideal.copy()
            state["realism"] = self.realism.state_dict()
        return state

    def load_state_dict(self, state: dict[str, ArrayLike]) -> None:
        """Restore a state written by :meth:`state_dict` (same population and sensors)."""
        pose = np.array(state["pose"], dtype=np.float64)
        lost = np.array(state["lost"], dtype=np.int64)
        ground = np.array(state["ground"], dtype=np.float64)
        expected = {"pose": (self.population, 3), "lost": (self.population,),
                    "ground": (self.population, len(self.sensors))}  # fmt: skip
        for key, arr in (("pose", pose), ("lost", lost), ("ground", ground)):
            if arr.shape != expected[key]:
                raise ShapeError(f"SimWorld state {key}: expected {expected[key]}, got {arr.shape}")
        self._pose, self._lost, self._ground = pose, lost, ground
        self._ideal = ground
        if self.realism is not None and "realism" in state:
            self._ideal = np.array(state["ideal"], dtype=np.float64)
            self.realism.load_state_dict(state["realism"])  # type: ignore[arg-type]
        self.steps = int(np.asarray(state["steps"]))

    @property
    def off_track(self) -> NDArray[np.bool_]:
        """``(P,)`` robots outside the arena or whose sensors have not seen the line for
        ``cfg.off_track_after`` steps (clears when they find it again)."""
        x, y = self._pose[:, 0], self._pose[:, 1]
        w, h = self.track.width, self.track.height
        return off_track_formula(x, y, w, h, self._lost, self.cfg.off_track_after)

    @property
    def lost_steps(self) -> NDArray[np.int64]:
        """``(P,)`` consecutive steps in which no ground sensor saw the line."""
        return self._lost.copy()

    # ------------------------------------------------------------------ robot interface
    def read_ground(self) -> NDArray[np.floating]:
        """``(P, 2 + n_rows)`` darkness: reflex (left, right), then the predictor rows (row by
        row in ``cfg.predictor_distances`` order, each from left to right)."""
        return self._ground.astype(self.dtype, copy=True)

    def grab_frame(self) -> NDArray[np.floating] | None:
        """``(P, H, W)`` camera darkness (1 = dark), or None when no camera is fitted."""
        if self.camera is None:
            return None
        frame = self.camera.render(self.track, self._pose)
        if self.realism is not None and self.realism.params.films:
            frame = self.realism.frame(frame, self._pose, self.steps)
        return frame.astype(self.dtype, copy=False)

    def set_wheel_speeds(self, left: ArrayLike, right: ArrayLike) -> None:
        """Drive ``(P,)`` wheel speeds (units/s, scalars broadcast) for one control cycle.

        With realism on these are the commands; the wheels run what the delay and the motors
        make of them (:meth:`sarlearn.stages.world.realism.Realism.drive`)."""
        vl = np.asarray(left, dtype=np.float64)
        vr = np.asarray(right, dtype=np.float64)
        if vl.shape not in ((), (self.population,)) or vr.shape not in ((), (self.population,)):
            raise ShapeError(
                f"set_wheel_speeds: left and right must be ({self.population},) or scalars, "
                f"got {vl.shape} and {vr.shape}"
            )
        if not (np.isfinite(vl).all() and np.isfinite(vr).all()):
            raise NonFiniteError("set_wheel_speeds: wheel speeds contain NaN or infinite values")
        if self.realism is not None and self.realism.params.drives:
            vl, vr = self.realism.drive(vl, vr)
        advance(self._pose, vl, vr, self.axle, self.dt, out=self._pose)
        self.steps += 1
        self._sense()
        ideal = self._ground if self.realism is None else self._ideal
        seen = (ideal > LINE_SEEN).any(axis=1)
        self._lost = np.where(seen, 0, self._lost + 1)

    # ------------------------------------------------------------------ helpers
    @property
    def n_predictors(self) -> int:
        """Predictors per robot: the row sensors (``inputs='rows'``) or the camera grid's
        mirror differences (``inputs='camera'``)."""
        return n_predictors(self.cfg)

    def reflex_error(self, ground: ArrayLike | None = None) -> NDArray[np.floating]:
        """``(P,)`` reflex error ``e = error_gain * (left - right)`` (of ``ground`` if given,
        else of the current reading)."""
        g = self._ground if ground is None else np.asarray(ground)
        return reflex_error(g[:, 0], g[:, 1], self._gain).astype(self.dtype, copy=False)

    def predictors(
        self, ground: ArrayLike | None = None, frame: ArrayLike | None = None
    ) -> NDArray[np.floating]:
        """``(P, n_predictors)`` for ``cfg.inputs``: ``'rows'`` = the row sensors' darkness
        (``predictor_mode='raw'``) or its left/right mirror differences per row
        (``'mirror'``); ``'camera'`` = mirror differences of the frame's segment grid."""
        f = None
        if self.cfg.inputs == "camera":
            f = self.grab_frame() if frame is None else np.asarray(frame, dtype=np.float64)
            if f is None:
                raise ShapeError("SimWorld.predictors: inputs='camera' needs a camera")
        g = self._ground if ground is None else ground
        return predictors_of(self.cfg, g, f).astype(self.dtype, copy=True)

    def observe(self) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
        """``(reflex_error (P,), predictors (P, n_predictors))`` at the current pose."""
        return self.reflex_error(), self.predictors()

    def step(self, steering: ArrayLike | float = 0.0) -> NDArray[np.floating]:
        """One cycle of the steering law with network steering ``y`` ``(P,)``.

        Applies ``u = e + net_gain * y``, ``v_left = speed - u``, ``v_right = speed + u`` with
        the current reflex error ``e``, and returns that ``e`` ``(P,)``. ``y = 0`` is the
        reflex alone.
        """
        e = reflex_error(self._ground[:, 0], self._ground[:, 1], self._gain)
        y = np.asarray(steering, dtype=np.float64)
        self.set_wheel_speeds(*wheel_speeds(self.cfg.speed, e, y, self.cfg.net_gain))
        return e.astype(self.dtype, copy=False)

    def _sense(self) -> None:
        self._ideal = self._ground = self.sensors.read(self.track, self._pose)
        if self.realism is not None and self.realism.params.senses:
            p = self.realism.params
            points = self.sensors.world_points(self._pose) if p.light_gradient else None
            self._ground = self.realism.sense(self._ideal, points, self.steps)

    def __repr__(self) -> str:
        return (
            f"SimWorld(track={self.track.name!r}, population={self.population}, "
            f"inputs={self.cfg.inputs!r}, dt={self.cfg.dt:g})"
        )


__all__ = ["LINE_SEEN", "SimWorld"]
