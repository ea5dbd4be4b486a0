"""Realism: what a real robot adds to the ideal simulator, as pure functions and one state.

The ideal world senses the exact floor darkness and drives the exact wheel speeds it is given.
A real robot does not: its light sensors are noisy and read through an ADC, the light on the
floor is uneven and drifts, its commands arrive late, its motors ignore small PWM and take time
to spin up, its two wheels are never quite equal, and its camera blurs and mis-exposes.

:class:`RealismParams` (resolved from :class:`sarlearn.config.RealismConfig`) names each
effect; the pure functions below apply one effect each, and :class:`Realism` holds the state
they need over time (the command queue, the motors' speeds, the noise generator) and chains
them in the order a real robot does:

- sensing: ``ideal darkness -> lighting -> noise -> ADC quantisation -> clip to [0, 1]``
  (:meth:`Realism.sense`);
- driving: ``command -> delay -> deadband -> wheel gains -> first-order lag``
  (:meth:`Realism.drive`);
- camera: ``ideal frame -> lighting -> exposure -> blur -> noise`` (:meth:`Realism.frame`).

With every effect at its neutral value :attr:`RealismParams.active` is False and the simulator
does not call any of this (its results stay bit for bit those of the ideal world). Everything
here works on ``(P, ...)`` arrays, one row per robot of a population, and is used as it is by a
digital twin (a single robot: ``P = 1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


@dataclass(frozen=True)
class RealismParams:
    """The realism effects in force (neutral values = the ideal world).

    Attributes:
        sensor_noise: standard deviation of Gaussian noise added to every ground-sensor
            darkness reading (the readings are in [0, 1]).
        adc_bits: readings quantised to ``2**adc_bits - 1`` steps (10 = an Arduino's ADC);
            None = not quantised.
        delay: control cycles between computing a command and the motors receiving it (0-3).
        motor_tau: time constant (s) of the motors' first-order lag; 0 = instant.
        deadband: wheel speeds (units/s) with a smaller magnitude are not driven at all (the
            PWM too small to overcome the motor's friction).
        wheel_mismatch: relative gain difference of the wheels: the left wheel runs at
            ``1 + m/2`` and the right at ``1 - m/2`` of its command.
        light_gradient: relative change of the floor's illumination across the arena, along
            ``light_angle_deg`` (0.2 = from 0.9 to 1.1 of the nominal light).
        light_angle_deg: direction of the gradient (0 = brighter towards +x).
        light_drift: amplitude of a slow sinusoidal change of the illumination over time.
        light_drift_period: period of the drift in control cycles.
        camera_blur: standard deviation (pixels) of a Gaussian blur of the camera image.
        camera_exposure: brightness gain of the camera; above 1 over-exposes (light saturates),
            below 1 under-exposes (the floor reads grey).
        camera_noise: standard deviation of Gaussian noise added to every camera pixel.
        sensor_margin: the robot's calibration (not a flaw of the world): the floor's level
            is put this many noise widths (``sensor_noise``) into the dark side, so a bare
            floor reads exactly 0 but for rare blips, and the rest is rescaled to [0, 1]; the
            simulator's version of what ``sarlearn calibrate`` does on the robot.
        floor_tracking: the robot's per-sensor normalisation (not a flaw of the world): each
            ground sensor keeps a running estimate of the bare floor's reading (an average
            over about this many control cycles of its readings that are not much darker than
            the estimate) and reads darkness relative to it, as auto-calibrating line
            followers do; cancels a lighting gradient or drift. 0 = off.
    """

    sensor_noise: float = 0.0
    adc_bits: int | None = None
    delay: int = 0
    motor_tau: float = 0.0
    deadband: float = 0.0
    wheel_mismatch: float = 0.0
    light_gradient: float = 0.0
    light_angle_deg: float = 0.0
    light_drift: float = 0.0
    light_drift_period: int = 20_000
    camera_blur: float = 0.0
    camera_exposure: float = 1.0
    camera_noise: float = 0.0
    sensor_margin: float = 0.0
    floor_tracking: float = 0.0

    @property
    def active(self) -> bool:
        """Whether any effect differs from the ideal world."""
        return any(self.changed().values())

    def changed(self) -> dict[str, Any]:
        """The effects that differ from the ideal world, by name (``light_angle_deg`` and
        ``light_drift_period`` only count with a gradient or a drift)."""
        neutral = RealismParams()
        out = {}
        for f in fields(self):
            if f.name in ("light_angle_deg", "light_drift_period"):
                continue
            if f.name == "sensor_margin" and not self.sensor_noise:
                continue  # a margin of noise widths without noise is no margin
            value = getattr(self, f.name)
            if value != getattr(neutral, f.name):
                out[f.name] = value
        return out

    @property
    def senses(self) -> bool:
        """Whether the ground readings differ from the ideal ones."""
        return bool(
            self.sensor_noise
            or self.adc_bits is not None
            or self.light_gradient
            or self.light_drift
            or self.floor_tracking
        )

    @property
    def drives(self) -> bool:
        """Whether the wheel speeds differ from the commanded ones."""
        return bool(self.delay or self.motor_tau or self.deadband or self.wheel_mismatch)

    @property
    def films(self) -> bool:
        """Whether the camera image differs from the ideal one."""
        return bool(
            self.camera_blur
            or self.camera_exposure != 1.0
            or self.camera_noise
            or self.light_gradient
            or self.light_drift
        )


#: The ``realistic`` preset: plausible values for the original robot (a Raspberry Pi with a
#: camera, light-dependent resistors read by an Arduino's 10-bit ADC, small geared DC motors
#: driven by PWM at a 0.05 s control cycle; SPEC section 5). Each value and why it is plausible
#: is in docs/world.md ("Realism"). They are estimates for such hardware, not measurements of
#: the authors' robot.
REALISTIC = RealismParams(
    sensor_noise=0.01,
    adc_bits=10,
    delay=0,
    motor_tau=0.1,
    deadband=10.0,
    wheel_mismatch=0.05,
    light_gradient=0.2,
    light_angle_deg=30.0,
    light_drift=0.05,
    light_drift_period=20_000,
    camera_blur=0.7,
    camera_exposure=1.2,
    camera_noise=0.01,
    sensor_margin=5.0,
    floor_tracking=10.0,
)

#: Named presets: ``off`` is the ideal world.
PRESETS: dict[str, RealismParams] = {"off": RealismParams(), "realistic": REALISTIC}


# ---------------------------------------------------------------------- pure functions: sensing
def illumination(
    x: ArrayLike,
    y: ArrayLike,
    step: int,
    params: RealismParams,
    width: float,
    height: float,
) -> NDArray[np.float64]:
    """Relative light on the floor at world points ``(x, y)`` after ``step`` control cycles.

    ``1 + gradient * s + drift * sin(2 pi step / period)`` where ``s`` in ``[-1/2, 1/2]`` is
    the position along the gradient's direction relative to the arena's centre and extent.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    light = np.ones(np.broadcast_shapes(x.shape, y.shape))
    if params.light_gradient:
        a = math.radians(params.light_angle_deg)
        c, s = math.cos(a), math.sin(a)
        extent = abs(c) * width + abs(s) * height  # the arena's length along the direction
        along = ((x - 0.5 * width) * c + (y - 0.5 * height) * s) / extent
        light = light + params.light_gradient * along
    if params.light_drift:
        light = light + params.light_drift * math.sin(
            2.0 * math.pi * step / params.light_drift_period
        )
    return light


def lit_darkness(darkness: ArrayLike, light: ArrayLike) -> NDArray[np.float64]:
    """The darkness a sensor calibrated under nominal light reads under ``light``.

    The floor reflects ``light * (1 - darkness)``; calibration maps the nominal white floor to
    0 and no light to 1, so the reading is ``1 - light * (1 - darkness)`` (not clipped).
    """
    d = np.asarray(darkness, dtype=np.float64)
    return 1.0 - np.asarray(light, dtype=np.float64) * (1.0 - d)


def add_noise(
    values: NDArray[np.float64], std: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """``values`` plus Gaussian noise of standard deviation ``std`` (one draw per value)."""
    return values + std * rng.standard_normal(values.shape)


def quantise(values: ArrayLike, bits: int) -> NDArray[np.float64]:
    """Readings in [0, 1] rounded to the nearest of ``2**bits`` levels (an ADC), clipped."""
    top = float(2**bits - 1)
    return np.round(np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0) * top) / top


#: Readings more than this darker than a sensor's floor estimate are the line, not the floor:
#: they do not move the estimate (:func:`track_floor`). Far above the noise and any lighting
#: change across the arena, far below the line's darkness.
FLOOR_GATE = 0.25


def track_floor(
    floor: NDArray[np.float64], reading: NDArray[np.float64], cycles: float
) -> NDArray[np.float64]:
    """One cycle of each sensor's running estimate of the bare floor's reading: an average
    over about ``cycles`` cycles (an exponential one, factor ``1 / cycles``) of the readings
    less than :data:`FLOOR_GATE` darker than the estimate; readings of the line leave it."""
    floor = np.asarray(floor, dtype=np.float64)
    reading = np.asarray(reading, dtype=np.float64)
    on_floor = reading < floor + FLOOR_GATE
    return np.where(on_floor, floor + (reading - floor) / max(1.0, cycles), floor)


def relative_darkness(
    reading: ArrayLike, floor: ArrayLike, margin: float = 0.0
) -> NDArray[np.float64]:
    """Darkness relative to the floor's level ``floor`` (scalar or per sensor) plus a dead
    zone ``margin``: ``(reading - floor - margin) / (1 - floor - margin)`` clipped to [0, 1].
    A reading at or below ``floor + margin`` is 0, the line's full darkness stays 1."""
    r = np.asarray(reading, dtype=np.float64)
    lo = np.asarray(floor, dtype=np.float64) + margin
    return np.clip((r - lo) / np.maximum(1.0 - lo, 1e-9), 0.0, 1.0)


# ---------------------------------------------------------------------- pure functions: motors
def apply_deadband(speed: ArrayLike, deadband: float) -> NDArray[np.float64]:
    """Wheel speeds whose magnitude is below ``deadband`` become 0; larger ones pass as they
    are (the motor starts once the PWM overcomes its friction)."""
    v = np.asarray(speed, dtype=np.float64)
    return np.where(np.abs(v) < deadband, 0.0, v)


def wheel_gains(mismatch: float) -> tuple[float, float]:
    """``(left, right)`` gains of wheels with a relative mismatch ``m``: ``1 +- m/2``."""
    return 1.0 + 0.5 * mismatch, 1.0 - 0.5 * mismatch


def lag_factor(tau: float, dt: float) -> float:
    """Fraction of the gap to its target a first-order motor closes in one cycle ``dt``:
    ``1 - exp(-dt / tau)`` (1 for ``tau = 0``: no lag)."""
    return 1.0 if tau <= 0 else 1.0 - math.exp(-dt / tau)


def lag_step(speed: ArrayLike, target: ArrayLike, factor: float) -> NDArray[np.float64]:
    """One cycle of the first-order lag: ``speed + factor * (target - speed)``."""
    v = np.asarray(speed, dtype=np.float64)
    return v + factor * (np.asarray(target, dtype=np.float64) - v)


# ---------------------------------------------------------------------- pure functions: camera
def expose(darkness: ArrayLike, light: ArrayLike, exposure: float) -> NDArray[np.float64]:
    """Camera darkness of a floor of ``darkness`` under ``light`` with an exposure gain: the
    pixel's brightness ``exposure * light * (1 - darkness)`` saturates at 1."""
    d = np.asarray(darkness, dtype=np.float64)
    bright = np.clip(exposure * np.asarray(light, dtype=np.float64) * (1.0 - d), 0.0, 1.0)
    return 1.0 - bright


def gaussian_kernel(sigma: float) -> NDArray[np.float64]:
    """A normalised 1-d Gaussian kernel of standard deviation ``sigma`` (radius 3 sigma)."""
    radius = max(1, math.ceil(3.0 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def blur(frames: ArrayLike, sigma: float) -> NDArray[np.float64]:
    """``(P, H, W)`` frames blurred by a separable Gaussian of ``sigma`` pixels (edges
    repeated, so a uniform image stays uniform); ``sigma = 0`` returns a copy."""
    f = np.array(frames, dtype=np.float64)
    if sigma <= 0:
        return f
    k = gaussian_kernel(sigma)
    r = len(k) // 2
    for axis in (1, 2):
        pad = [(0, 0)] * f.ndim
        pad[axis] = (r, r)
        g = np.pad(f, pad, mode="edge")
        n = f.shape[axis]
        out = np.zeros_like(f)
        for i, w in enumerate(k):
            out += w * np.take(g, np.arange(i, i + n), axis=axis)
        f = out
    return f


# ---------------------------------------------------------------------- the state over time
class Realism:
    """The realism effects of ``P`` robots, with their state over time.

    Args:
        params: the effects (:class:`RealismParams`, e.g. ``cfg.world.realism.resolve()``).
        population: ``P``.
        dt: control cycle (s), for the motors' lag.
        width, height: the arena's size (units), for the lighting gradient.
        rng: the generator of all noise; its state is part of the realism's state, so a run
            is reproducible from its seed.

    Attributes:
        params: the effects.
    """

    def __init__(
        self,
        params: RealismParams,
        population: int,
        dt: float,
        width: float,
        height: float,
        rng: np.random.Generator,
    ) -> None:
        self.params = params
        self.population = int(population)
        self.dt = float(dt)
        self.width = float(width)
        self.height = float(height)
        self.rng = rng
        self._factor = lag_factor(params.motor_tau, self.dt)
        self._gains = np.array(wheel_gains(params.wheel_mismatch))
        self.reset()

    def reset(self) -> None:
        """The robots at rest: an empty command queue (zeros) and stopped motors."""
        self.queue = np.zeros((self.params.delay, self.population, 2))
        """``(delay, P, 2)`` commands waiting, oldest first."""
        self.wheels = np.zeros((self.population, 2))
        """``(P, 2)`` the motors' current speeds (left, right)."""
        self.floor: NDArray[np.float64] | None = None
        """``(P, n)`` each ground sensor's estimate of the floor's reading (``floor_tracking``;
        None until the first reading)."""

    def sense(
        self, ideal: NDArray[np.float64], points: NDArray[np.float64] | None, step: int
    ) -> NDArray[np.float64]:
        """Readings ``(P, n)`` of sensors whose ideal darkness is ``ideal`` ``(P, n)``.

        Args:
            points: ``(P, n, 2)`` world positions of the sensors (needed with a lighting
                gradient, else may be None).
            step: control cycles since the start (for the drift).
        """
        p = self.params
        d = ideal
        if p.light_gradient or p.light_drift:
            if points is None:
                x = y = np.zeros(1)
            else:
                x, y = points[..., 0], points[..., 1]
            d = lit_darkness(d, illumination(x, y, step, p, self.width, self.height))
        if p.sensor_noise:
            d = add_noise(d, p.sensor_noise, self.rng)
        d = quantise(d, p.adc_bits) if p.adc_bits is not None else np.clip(d, 0.0, 1.0)
        # What the robot makes of its readings: its calibration's dead zone and its
        # per-sensor floor estimate.
        margin = p.sensor_margin * p.sensor_noise
        if p.floor_tracking:
            if self.floor is None or self.floor.shape != d.shape:
                self.floor = np.zeros_like(d)  # calibrated under nominal light
            self.floor = track_floor(self.floor, d, p.floor_tracking)
            return relative_darkness(d, self.floor, margin)
        if margin:
            return relative_darkness(d, 0.0, margin)
        return d

    def drive(self, left: ArrayLike, right: ArrayLike) -> tuple[NDArray, NDArray]:
        """The wheel speeds ``(P,)`` the robots actually run this cycle for these commands:
        delayed by ``delay`` cycles, deadband, wheel gains, then the first-order lag."""
        p = self.params
        cmd = np.empty((self.population, 2))
        cmd[:, 0] = left
        cmd[:, 1] = right
        if p.delay:
            self.queue = np.concatenate([self.queue, cmd[None]])
            cmd, self.queue = self.queue[0], self.queue[1:]
        if p.deadband:
            cmd = apply_deadband(cmd, p.deadband)
        if p.wheel_mismatch:
            cmd = cmd * self._gains
        self.wheels = lag_step(self.wheels, cmd, self._factor) if p.motor_tau else cmd.copy()
        return self.wheels[:, 0].copy(), self.wheels[:, 1].copy()

    def frame(
        self, ideal: NDArray[np.float64], pose: NDArray[np.float64], step: int
    ) -> NDArray[np.float64]:
        """Camera darkness ``(P, H, W)`` of an ideal frame: lighting (taken at each robot's
        centre: the camera sees a small patch of floor), exposure, blur, noise, clipped."""
        p = self.params
        light = illumination(pose[:, 0], pose[:, 1], step, p, self.width, self.height)
        f = expose(ideal, light[:, None, None], p.camera_exposure)
        if p.camera_blur:
            f = blur(f, p.camera_blur)
        if p.camera_noise:
            f = add_noise(f, p.camera_noise, self.rng)
        return np.clip(f, 0.0, 1.0)

    def state_dict(self) -> dict[str, Any]:
        """Copies of the state: ``queue``, ``wheels`` and the generator's ``rng`` state."""
        out = {
            "queue": self.queue.copy(),
            "wheels": self.wheels.copy(),
            "rng": self.rng.bit_generator.state,
        }
        if self.floor is not None:
            out["floor"] = self.floor.copy()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state written by :meth:`state_dict`."""
        self.queue = np.array(state["queue"], dtype=np.float64)
        self.wheels = np.array(state["wheels"], dtype=np.float64)
        self.rng.bit_generator.state = state["rng"]
        floor = state.get("floor")
        self.floor = None if floor is None else np.array(floor, dtype=np.float64)


__all__ = [
    "FLOOR_GATE",
    "PRESETS",
    "REALISTIC",
    "Realism",
    "RealismParams",
    "add_noise",
    "apply_deadband",
    "blur",
    "expose",
    "gaussian_kernel",
    "illumination",
    "lag_factor",
    "lag_step",
    "lit_darkness",
    "quantise",
    "relative_darkness",
    "track_floor",
    "wheel_gains",
]
