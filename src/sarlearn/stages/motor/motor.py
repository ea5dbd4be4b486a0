"""From sensor readings and network outputs to wheel speeds (SPEC section 4).

The three formulas of the motor side of the loop, written once: the Python loop, the
simulator and the robot backends call the functions below, and the compiled engine compiles
the same formula functions (:func:`error_formula`, :func:`command_formula`) with numba:

- reflex error ``e = error_gain * (left - right)`` (darkness of the reflex sensor pair);
- steering of the network ``y = sum_k readout[k] * output_k``;
- wheel speeds ``v_left = v - u``, ``v_right = v + u`` with ``u = e + G * y``
  (a positive u turns the robot left, counter-clockwise).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import ShapeError


def error_formula(left: Any, right: Any, gain: Any) -> Any:
    """``gain * (left - right)`` for numbers or arrays (compiled as it is by the engine)."""
    return gain * (left - right)


def command_formula(reflex: Any, steering: Any, net_gain: Any) -> Any:
    """``u = e + G * y`` for numbers or arrays (compiled as it is by the engine).

    ``G * y`` is evaluated in the dtype of ``y`` (the network's), then added to ``e``."""
    return reflex + net_gain * steering


def reflex_error(left: ArrayLike, right: ArrayLike, gain: float) -> NDArray[np.floating]:
    """``e = gain * (left - right)``: positive when the line is under the left sensor."""
    return error_formula(np.asarray(left), np.asarray(right), gain)


def readout(outputs: NDArray[np.floating], coefficients: ArrayLike) -> NDArray[np.floating]:
    """Steering ``y`` of the network: ``(P, n_out) @ (n_out,) -> (P,)``."""
    coef = np.asarray(coefficients, dtype=outputs.dtype)
    if outputs.ndim != 2 or outputs.shape[1] != coef.shape[0]:
        raise ShapeError(
            f"readout: outputs must be (P, {coef.shape[0]}) to match the readout coefficients, "
            f"got {outputs.shape}"
        )
    return outputs @ coef


def steering_command(reflex: ArrayLike, steering: ArrayLike, net_gain: float) -> NDArray:
    """The total turn command ``u = e + G * y``."""
    return command_formula(np.asarray(reflex), np.asarray(steering), net_gain)


def wheel_speeds(
    speed: float | ArrayLike, reflex: ArrayLike, steering: ArrayLike, net_gain: float
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """``(v_left, v_right) = (v - u, v + u)`` with ``u = e + G * y``; all ``(P,)``."""
    u = steering_command(reflex, steering, net_gain)
    v = np.asarray(speed)
    return v - u, v + u


__all__ = [
    "command_formula",
    "error_formula",
    "readout",
    "reflex_error",
    "steering_command",
    "wheel_speeds",
]
