"""Readout, reflex error and wheel speeds follow the world's sign conventions."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.errors import ShapeError
from sarlearn.stages.motor.motor import readout, reflex_error, steering_command, wheel_speeds


def test_reflex_error_positive_when_line_is_left() -> None:
    e = reflex_error(np.array([1.0, 0.0, 0.3]), np.array([0.0, 1.0, 0.3]), 50.0)
    np.testing.assert_allclose(e, [50.0, -50.0, 0.0])


def test_readout_weights_outputs() -> None:
    out = np.array([[1.0, 0.5], [-0.2, 0.1]])
    np.testing.assert_allclose(readout(out, [1.0, 2.0]), [2.0, 0.0])
    with pytest.raises(ShapeError):
        readout(out, [1.0, 2.0, 3.0])


def test_positive_steering_turns_left() -> None:
    # u = e + G y > 0 must make the right wheel faster (counter-clockwise turn)
    left, right = wheel_speeds(30.0, np.array([2.0]), np.array([0.5]), 5.0)
    assert steering_command(2.0, 0.5, 5.0) == pytest.approx(4.5)
    np.testing.assert_allclose(left, [25.5])
    np.testing.assert_allclose(right, [34.5])
    # the mean of the wheel speeds stays the base speed
    np.testing.assert_allclose((left + right) / 2, [30.0])


def test_wheel_speeds_population_and_zero_command() -> None:
    left, right = wheel_speeds(30.0, np.zeros(4), np.zeros(4), 5.0)
    assert left.shape == right.shape == (4,)
    np.testing.assert_array_equal(left, right)
