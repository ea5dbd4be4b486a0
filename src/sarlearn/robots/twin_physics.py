"""The digital twin's physics beyond the ideal simulator: motors and light sensors of a board.

:class:`BoardPhysics` is the one seam between the twin's protocol server
(:mod:`sarlearn.robots.twin`) and any model of the hardware's imperfections. It answers two
questions:

- :meth:`BoardPhysics.wheel_speeds`: the commanded PWM and the wheels' current speeds ->
  their speeds after ``dt`` seconds (a first-order lag towards the PWM's speed, nothing
  below a deadband);
- :meth:`BoardPhysics.readings`: the darkness under the two light sensors -> the raw 10-bit
  numbers the Arduino's ``analogRead`` would give (with noise).

The formulas are the simulator's realism functions (:mod:`sarlearn.stages.world.realism`:
deadband, first-order lag, wheel mismatch, noise), applied in the board's units (PWM, ADC
counts); :meth:`BoardPhysics.from_realism` builds the board from the world's realism options,
so ``sarlearn twin --realism realistic`` runs the robot the simulator's preset describes.
Another model (a fitted model of a real robot) plugs in by implementing the same two methods
(:class:`Physics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import ConfigError
from sarlearn.stages.world.realism import (
    RealismParams,
    add_noise,
    apply_deadband,
    lag_factor,
    lag_step,
    wheel_gains,
)

#: Full scale of the Arduino's 10-bit ADC.
ADC_MAX = 1023


class Physics(Protocol):
    """What the twin needs from a model of the motors and sensors."""

    def wheel_speeds(
        self, pwm: NDArray[np.int64], speeds: NDArray[np.float64], dt: float
    ) -> NDArray[np.float64]:
        """Wheel speeds ``(2,)`` (units/s) after ``dt`` simulated seconds under ``pwm``."""
        ...

    def readings(self, darkness: NDArray[np.float64]) -> NDArray[np.int64]:
        """Raw ADC readings ``(2,)`` in 0..1023 of the (left, right) darkness in [0, 1]."""
        ...


@dataclass(frozen=True)
class BoardPhysics:
    """Motors with a first-order lag and a deadband, light sensors with noise and 10 bits.

    Attributes:
        max_speed: wheel speed (units/s) at full PWM; the default matches
            :class:`~sarlearn.robots.raspberry_pi.ArduinoMotors`, so a commanded speed
            comes back as itself once the lag has settled.
        max_pwm: full-scale PWM.
        tau: time constant of the motors' lag (simulated seconds); 0 = instant.
        deadband: PWM magnitudes below this do not turn a wheel (static friction).
        light: raw reading on the light floor; ``dark``: on the line. The default wiring
            (docs/robot.md) gives readings that grow with darkness; swap them for a
            divider wired the other way.
        noise: standard deviation of the readings' noise (ADC counts).
        mismatch: relative gain difference of the wheels (left ``1 + m/2``, right ``1 - m/2``).
        seed: seed of the noise.
    """

    max_speed: float = 120.0
    max_pwm: int = 255
    tau: float = 0.05
    deadband: int = 12
    light: float = 150.0
    dark: float = 850.0
    noise: float = 6.0
    mismatch: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.max_speed > 0 or self.max_pwm < 1:
            raise ConfigError("twin physics: max_speed and max_pwm must be positive")
        if self.tau < 0 or self.deadband < 0 or self.noise < 0:
            raise ConfigError("twin physics: tau, deadband and noise must be >= 0")
        for name in ("light", "dark"):
            if not 0 <= getattr(self, name) <= ADC_MAX:
                raise ConfigError(f"twin physics: {name} must be a reading in 0..{ADC_MAX}")
        # A frozen dataclass still needs its own generator (drawn from the seed once).
        object.__setattr__(self, "_rng", np.random.default_rng(self.seed))

    @classmethod
    def from_realism(
        cls,
        params: RealismParams,
        *,
        max_speed: float = 120.0,
        max_pwm: int = 255,
        light: float = 150.0,
        dark: float = 850.0,
        seed: int = 0,
    ) -> BoardPhysics:
        """The board the world's realism options describe: their motor lag, deadband (wheel
        speed -> PWM), wheel mismatch and sensor noise (darkness -> ADC counts). The lighting
        and camera effects, and the control delay (which real time produces by itself), stay
        with the simulator."""
        return cls(
            max_speed=max_speed,
            max_pwm=max_pwm,
            tau=params.motor_tau,
            deadband=math.ceil(params.deadband / max_speed * max_pwm),
            light=light,
            dark=dark,
            noise=params.sensor_noise * abs(dark - light),
            mismatch=params.wheel_mismatch,
            seed=seed,
        )

    def target(self, pwm: ArrayLike) -> NDArray[np.float64]:
        """The steady wheel speeds of ``pwm`` ``(2,)``: zero inside the deadband, else
        proportional to the PWM (times each wheel's gain)."""
        p = np.clip(np.asarray(pwm, dtype=np.float64), -self.max_pwm, self.max_pwm)
        gains = np.asarray(wheel_gains(self.mismatch))
        return apply_deadband(p, self.deadband) / self.max_pwm * self.max_speed * gains

    def wheel_speeds(
        self, pwm: NDArray[np.int64], speeds: NDArray[np.float64], dt: float
    ) -> NDArray[np.float64]:
        """Exact step of the lag ``tau * ds/dt = target - s`` over ``dt`` (constant PWM)."""
        return lag_step(speeds, self.target(pwm), lag_factor(self.tau, dt))

    def readings(self, darkness: NDArray[np.float64]) -> NDArray[np.int64]:
        """``light + darkness * (dark - light)`` plus Gaussian noise, rounded and clipped."""
        d = np.clip(np.asarray(darkness, dtype=np.float64), 0.0, 1.0)
        raw = self.light + d * (self.dark - self.light)
        if self.noise > 0:
            raw = add_noise(raw, self.noise, self._rng)  # type: ignore[attr-defined]
        return np.clip(np.rint(raw), 0, ADC_MAX).astype(np.int64)


__all__ = ["ADC_MAX", "BoardPhysics", "Physics"]
