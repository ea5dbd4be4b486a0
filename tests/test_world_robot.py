"""Differential-drive kinematics: exact arcs, straight lines, rotation, population."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sarlearn.errors import NonFiniteError, ShapeError
from sarlearn.stages.world import arc_pose, step_poses, wrap_angle


def drive(pose, vl, vr, axle, dt, steps):
    p = np.atleast_2d(np.asarray(pose, dtype=np.float64))
    for _ in range(steps):
        p = step_poses(p, vl, vr, axle, dt)
    return p


def test_straight_line() -> None:
    p = drive([1.0, 2.0, np.pi / 6], 30.0, 30.0, 10.0, 0.05, 20)
    np.testing.assert_allclose(
        p[0], [1 + 30 * np.cos(np.pi / 6), 2 + 30 * np.sin(np.pi / 6), np.pi / 6]
    )


def test_turning_on_the_spot() -> None:
    # Wheels at -v and +v turn counter-clockwise at 2v / axle without moving the centre.
    p = drive([5.0, 5.0, 0.0], -10.0, 10.0, 10.0, 0.05, 10)
    np.testing.assert_allclose(p[0], [5.0, 5.0, 1.0], atol=1e-12)


def test_full_circle_returns_to_the_start() -> None:
    # v = 30, w = 20 / 10 = 2 rad/s: radius 15, a lap takes pi seconds.
    vl, vr, axle = 20.0, 40.0, 10.0
    n = 400
    p = drive([100.0, 50.0, 0.3], vl, vr, axle, np.pi / n, n)
    np.testing.assert_allclose(p[0], [100.0, 50.0, 0.3], atol=1e-9)
    # Halfway round the robot is a diameter away, heading the opposite way.
    h = drive([100.0, 50.0, 0.0], vl, vr, axle, np.pi / n, n // 2)
    np.testing.assert_allclose(h[0, :2], [100.0, 80.0], atol=1e-9)
    assert abs(np.cos(h[0, 2]) + 1.0) < 1e-12


def test_left_wheel_faster_turns_clockwise() -> None:
    p = drive([0.0, 0.0, 0.0], 35.0, 25.0, 10.0, 0.05, 5)
    assert p[0, 2] < 0 and p[0, 1] < 0


@settings(max_examples=200, deadline=None)
@given(
    x=st.floats(-100, 100),
    y=st.floats(-100, 100),
    th=st.floats(-np.pi, np.pi),
    vl=st.floats(-80, 80),
    vr=st.floats(-80, 80),
    dt=st.floats(1e-3, 0.5),
    steps=st.integers(1, 20),
)
def test_steps_follow_the_closed_form_arc(x, y, th, vl, vr, dt, steps) -> None:
    p = drive([x, y, th], vl, vr, 10.0, dt, steps)[0]
    ref = arc_pose([x, y, th], vl, vr, 10.0, dt * steps)
    np.testing.assert_allclose(p[:2], ref[:2], atol=1e-8)
    assert abs(wrap_angle(p[2] - ref[2])) < 1e-9


def test_result_does_not_depend_on_the_time_step_for_constant_speeds() -> None:
    one = drive([10.0, 20.0, 1.0], 12.0, 31.0, 10.0, 1.0, 1)
    many = drive([10.0, 20.0, 1.0], 12.0, 31.0, 10.0, 0.01, 100)
    np.testing.assert_allclose(one, many, atol=1e-9)


def test_population_is_vectorised_and_independent() -> None:
    rng = np.random.default_rng(3)
    pose = rng.uniform(0, 100, (6, 3))
    vl, vr = rng.uniform(-30, 30, 6), rng.uniform(-30, 30, 6)
    together = step_poses(pose, vl, vr, 10.0, 0.05)
    alone = np.vstack([step_poses(pose[k : k + 1], vl[k], vr[k], 10.0, 0.05) for k in range(6)])
    np.testing.assert_allclose(together, alone, atol=1e-12)
    out = pose.copy()
    assert step_poses(out, vl, vr, 10.0, 0.05, out=out) is out
    np.testing.assert_allclose(out, together)


def test_heading_is_wrapped() -> None:
    p = drive([0.0, 0.0, 3.0], -10.0, 10.0, 10.0, 0.1, 5)
    assert -np.pi <= p[0, 2] < np.pi
    assert p[0, 2] == pytest.approx(wrap_angle(4.0))


def test_bad_arguments() -> None:
    with pytest.raises(ShapeError, match=r"\(P, 3\)"):
        step_poses(np.zeros(3), 1.0, 1.0, 10.0, 0.1)
    with pytest.raises(ShapeError, match="wheel speeds"):
        step_poses(np.zeros((2, 3)), np.zeros(3), 1.0, 10.0, 0.1)
    with pytest.raises(NonFiniteError):
        step_poses(np.zeros((1, 3)), np.nan, 1.0, 10.0, 0.1)
