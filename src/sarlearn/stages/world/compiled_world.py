"""The world alone, compiled: ``P`` robots driven by external steering, no learner.

The closed-loop kernels (:mod:`sarlearn.engine.kernels`) step world, filters, network and rule
together. An outside controller (a reinforcement-learning policy behind the Gymnasium vector
environment, a hand-written controller) needs only the world: steering in, sensor readings
out. :class:`CompiledWorld` does that for a whole population in one compiled call per step,
with the state layout of :class:`sarlearn.stages.world.SimWorld` (poses ``(P, 3)``, readings
``(P, n_sensors)`` with the reflex pair first, lost-line counters ``(P,)``).

The maths is :meth:`SimWorld.step` per robot, from the same compiled stage functions as the
closed-loop engine (the reference's own formulas: reflex error, steering law, exact arc, and
the bilinear lookup of :mod:`sarlearn.stages.world.compiled_sensors`); sin and cos come from the C
library instead of numpy's SIMD versions, so poses agree with the reference to a few ulp per
step (tested in ``tests/test_engine_world_step.py``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from sarlearn.config import WorldConfig
from sarlearn.errors import NonFiniteError, ShapeError
from sarlearn.stages.motor.compiled import command, reflex
from sarlearn.stages.motor.motor import error_formula
from sarlearn.stages.world.compiled_robot import advance_agent
from sarlearn.stages.world.compiled_sensors import lookup, sensor_xy
from sarlearn.stages.world.sensors import (
    GroundSensors,
    off_track_formula,
    predictor_rows,
    reflex_pair,
)
from sarlearn.stages.world.sim import LINE_SEEN
from sarlearn.stages.world.track import Track
from sarlearn.stages.world.tracks import load_track

# Indices into the float64 parameters of the kernel.
_INV, _HEIGHT, _UMAX, _VMAX, _SPEED, _DT, _AXLE, _GAIN, _NET_GAIN, _SEEN = range(10)


@njit(cache=True)
def _sense_all(pose, ground, lost, img, stride, sx, sy, par, rows):
    inv, height, umax, vmax, seen_at = par[_INV], par[_HEIGHT], par[_UMAX], par[_VMAX], par[_SEEN]
    for p in rows:
        c = math.cos(pose[p, 2])
        s = math.sin(pose[p, 2])
        seen = False
        for k in range(sx.shape[0]):
            x, y = sensor_xy(pose[p, 0], pose[p, 1], c, s, sx[k], sy[k])
            g = lookup(img, stride, inv, height, umax, vmax, x, y)
            ground[p, k] = g
            if g > seen_at:
                seen = True
        lost[p] = 0 if seen else lost[p] + 1


@njit(cache=True)
def _step_all(pose, ground, lost, steering, reflex_on, img, stride, sx, sy, par, rows):
    """One control cycle of the robots in ``rows``: u = reflex * e + G * y, then move, sense."""
    dt, axle, speed = par[_DT], par[_AXLE], par[_SPEED]
    for p in rows:
        e = reflex(ground[p, 0], ground[p, 1], par[_GAIN])
        u = command(reflex_on * e, steering[p], par[_NET_GAIN])
        advance_agent(p, pose, speed - u, speed + u, axle, dt)
    _sense_all(pose, ground, lost, img, stride, sx, sy, par, rows)


class CompiledWorld:
    """``P`` robots on one track, stepped by one compiled call (ground sensors only).

    Args:
        cfg: the world's configuration (its ``start`` and ``random_start`` are ignored: set
            :attr:`pose` yourself).
        population: ``P``.
        track: use this track instead of loading ``cfg.track``.

    Attributes:
        ground: ``(P, 2 + n_rows)`` the current readings (reflex pair first), as
            :meth:`SimWorld.read_ground` returns them; read-only by convention.
        lost: ``(P,)`` consecutive steps in which no sensor saw the line.
        steps: control cycles since construction.
    """

    def __init__(
        self, cfg: WorldConfig | None = None, population: int = 1, *, track: Track | None = None
    ) -> None:
        cfg = cfg if cfg is not None else WorldConfig()
        if population < 1:
            raise ShapeError(f"CompiledWorld: population must be >= 1, got {population}")
        self.cfg = cfg
        self.population = int(population)
        self.track = (
            track
            if track is not None
            else load_track(cfg.track, cfg.arena, cfg.track_seed, cfg.resolution, cfg.line_width)
        )
        self.sensors: GroundSensors = reflex_pair(cfg) + predictor_rows(cfg)
        padded = self.track.padded
        self._img = np.ascontiguousarray(padded).ravel()
        self._stride = padded.shape[1]
        self._sx = np.ascontiguousarray(self.sensors.positions[:, 0])
        self._sy = np.ascontiguousarray(self.sensors.positions[:, 1])
        h, w = self.track.shape
        par = np.zeros(10)
        par[_INV] = 1.0 / self.track.scale
        par[_HEIGHT] = self.track.height
        par[_UMAX], par[_VMAX] = float(w + 1), float(h + 1)
        par[_SPEED], par[_DT], par[_AXLE] = cfg.speed, cfg.dt, cfg.axle
        par[_GAIN], par[_NET_GAIN], par[_SEEN] = cfg.error_gain, cfg.net_gain, LINE_SEEN
        self._par = par
        self._all = np.arange(self.population)
        self._pose = np.zeros((self.population, 3))
        self.ground = np.zeros((self.population, len(self.sensors)))
        self.lost = np.zeros(self.population, dtype=np.int64)
        self.steps = 0

    @property
    def pose(self) -> NDArray[np.float64]:
        """``(P, 3)`` x, y, heading (a copy)."""
        return self._pose.copy()

    def place(self, rows: ArrayLike, poses: ArrayLike) -> None:
        """Put robots ``rows`` ``(k,)`` at ``poses`` ``(k, 3)``: lost counters cleared, sensors
        read (as :attr:`SimWorld.pose` does)."""
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        p = np.asarray(poses, dtype=np.float64).reshape(len(idx), 3)
        if not np.isfinite(p).all():
            raise NonFiniteError("CompiledWorld.place: poses contain NaN or infinite values")
        self._pose[idx] = p
        self.lost[idx] = 0
        _sense_all(
            self._pose, self.ground, self.lost, self._img, self._stride, self._sx, self._sy,
            self._par, idx,
        )  # fmt: skip
        self.lost[idx] = 0  # placing is not a step: the counter starts at zero

    def step(
        self, steering: ArrayLike, *, reflex: bool = True, rows: ArrayLike | None = None
    ) -> None:
        """One control cycle: ``u = e + G * y`` (``reflex=False``: ``u = G * y``), wheel speeds
        ``v -/+ u``, move, read the sensors.

        Args:
            steering: ``(P,)`` network steering ``y`` (entries of robots not in ``rows`` are
                ignored).
            reflex: add the reflex error ``e`` to the steering.
            rows: step only these robots ``(k,)`` (default: all).
        """
        y = np.ascontiguousarray(steering, dtype=np.float64)
        if y.shape != (self.population,):
            raise ShapeError(f"CompiledWorld.step: steering must be ({self.population},)")
        if not np.isfinite(y).all():
            raise NonFiniteError("CompiledWorld.step: steering contains NaN or infinite values")
        idx = self._all if rows is None else np.asarray(rows, dtype=np.int64).reshape(-1)
        _step_all(
            self._pose, self.ground, self.lost, y, 1.0 if reflex else 0.0, self._img,
            self._stride, self._sx, self._sy, self._par, idx,
        )  # fmt: skip
        self.steps += 1

    @property
    def off_track(self) -> NDArray[np.bool_]:
        """``(P,)`` outside the arena, or no line seen for ``cfg.off_track_after`` steps."""
        x, y = self._pose[:, 0], self._pose[:, 1]
        w, h = self.track.width, self.track.height
        return off_track_formula(x, y, w, h, self.lost, self.cfg.off_track_after)

    def reflex_error(self) -> NDArray[np.float64]:
        """``(P,)`` ``e = error_gain * (left - right)`` at the current pose."""
        return error_formula(self.ground[:, 0], self.ground[:, 1], self.cfg.error_gain)


__all__ = ["CompiledWorld"]
