"""Differential-drive kinematics for a population of robots.

With constant wheel speeds over a control cycle the robot moves on a circular arc (a straight
line when both wheels turn equally fast). :func:`step_poses` integrates that arc exactly, so
the result does not depend on how finely time is cut, only on the control cycle ``dt`` at which
the wheel speeds change.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import NonFiniteError, ShapeError


def wrap_angle(theta: ArrayLike) -> NDArray[np.float64]:
    """Angles mapped to ``[-pi, pi)``."""
    return (np.asarray(theta, dtype=np.float64) + np.pi) % (2.0 * np.pi) - np.pi


def step_poses(
    pose: ArrayLike,
    v_left: ArrayLike,
    v_right: ArrayLike,
    axle: float,
    dt: float,
    out: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Advance differential-drive robots by one control cycle, exactly.

    The forward speed is ``v = (v_left + v_right) / 2`` and the turn rate
    ``w = (v_right - v_left) / axle`` (counter-clockwise positive). Over ``dt`` the robot
    turns by ``a = w dt`` and travels the chord of its arc, of length ``v dt sinc(a / 2)``, in
    the direction ``heading + a / 2`` (this form is exact for arcs and for straight motion).

    Args:
        pose: ``(P, 3)`` x, y, heading (radians, CCW from +x).
        v_left, v_right: ``(P,)`` wheel speeds (units/s), or scalars.
        axle: distance between the wheels (units).
        dt: duration of the control cycle (s).
        out: optional ``(P, 3)`` array for the result (may be ``pose`` itself).

    Returns:
        ``(P, 3)`` new poses, heading wrapped to ``[-pi, pi)``.
    """
    p = np.asarray(pose, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ShapeError(f"step_poses: pose must be (P, 3), got {p.shape}")
    vl = np.asarray(v_left, dtype=np.float64)
    vr = np.asarray(v_right, dtype=np.float64)
    if (
        vl.ndim > 1
        or vr.ndim > 1
        or (vl.ndim == 1 and vl.shape[0] != p.shape[0])
        or (vr.ndim == 1 and vr.shape[0] != p.shape[0])
    ):
        raise ShapeError(
            f"step_poses: wheel speeds must be scalars or ({p.shape[0]},), "
            f"got {vl.shape} and {vr.shape}"
        )
    if not (np.isfinite(vl).all() and np.isfinite(vr).all()):
        raise NonFiniteError("step_poses: wheel speeds contain NaN or infinite values")
    return advance(p, vl, vr, axle, dt, out)


def arc_formula(x: Any, y: Any, th: Any, vl: Any, vr: Any, axle: Any, dt: Any) -> Any:
    """The exact arc, for numbers or arrays: ``(x, y, heading)`` after one control cycle.

    Written once: :func:`advance` applies it to arrays and the compiled engine compiles this
    very function with numba.
    """
    turn = (vr - vl) * (dt / axle)
    # np.sinc(x) = sin(pi x) / (pi x): the chord of an arc of angle a is 2 r sin(a/2).
    chord = (vr + vl) * (0.5 * dt) * np.sinc(turn * (0.5 / np.pi))
    mid = th + 0.5 * turn
    return (
        x + chord * np.cos(mid),
        y + chord * np.sin(mid),
        (th + turn + np.pi) % (2.0 * np.pi) - np.pi,
    )


def advance(
    p: NDArray[np.float64],
    vl: NDArray[np.float64],
    vr: NDArray[np.float64],
    axle: float,
    dt: float,
    out: NDArray[np.float64] | None,
) -> NDArray[np.float64]:
    """:func:`step_poses` without validation (hot path)."""
    x, y, th = arc_formula(p[:, 0], p[:, 1], p[:, 2], vl, vr, axle, dt)
    if out is None:
        out = np.empty_like(p)
    out[:, 0] = x
    out[:, 1] = y
    out[:, 2] = th
    return out


def arc_pose(
    pose: ArrayLike, v_left: float, v_right: float, axle: float, t: float
) -> NDArray[np.float64]:
    """Closed-form pose after driving constant wheel speeds for time ``t``: ``(3,) -> (3,)``.

    Uses the centre of the circle (``R = v / w``) rather than the chord form of
    :func:`step_poses`, as an independent reference for tests and plots.
    """
    x, y, th = (float(a) for a in np.asarray(pose, dtype=np.float64))
    v = 0.5 * (v_left + v_right)
    w = (v_right - v_left) / axle
    if abs(w) < 1e-12:
        return np.array([x + v * t * np.cos(th), y + v * t * np.sin(th), float(wrap_angle(th))])
    r = v / w
    cx, cy = x - r * np.sin(th), y + r * np.cos(th)
    th2 = th + w * t
    return np.array([cx + r * np.sin(th2), cy - r * np.cos(th2), float(wrap_angle(th2))])


__all__ = ["advance", "arc_formula", "arc_pose", "step_poses", "wrap_angle"]
