"""Ground sensors: layout in the robot frame and readings on synthetic floors."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import WorldConfig
from sarlearn.errors import ShapeError
from sarlearn.stages.world import GroundSensors, Track, ground_sensors, predictor_rows, reflex_pair


def edge_track() -> Track:
    """100 x 100 units, the left half (x < 50) dark."""
    img = np.zeros((400, 400))
    img[:, :200] = 1.0
    return Track(img, 100.0)


def band_track(x0: float = 50.0, width: float = 3.0) -> Track:
    """A vertical line centred on x = x0, at 10 px per unit."""
    img = np.zeros((1000, 1000))
    cols = (np.arange(1000) + 0.5) / 10.0
    img[:, np.abs(cols - x0) < width / 2] = 1.0
    return Track(img, 100.0)


def test_default_layout() -> None:
    cfg = WorldConfig()
    np.testing.assert_array_equal(reflex_pair(cfg).positions, [[10.0, 5.0], [10.0, -5.0]])
    rows = predictor_rows(cfg).positions
    assert rows.shape == (144, 2)
    np.testing.assert_array_equal(np.unique(rows[:, 0]), [11.0, 12.0, 13.0])
    first = rows[:48]
    assert (first[:, 0] == 11.0).all()
    np.testing.assert_allclose(np.diff(first[:, 1]), -0.25)  # left (+y) to right
    assert first[0, 1] == pytest.approx(5.875) and first[-1, 1] == pytest.approx(-5.875)
    assert len(ground_sensors(cfg)) == 146


def test_world_points_follow_the_pose() -> None:
    s = GroundSensors([[10.0, 5.0], [0.0, 0.0]])
    pts = s.world_points([[1.0, 2.0, np.pi / 2]])
    np.testing.assert_allclose(pts[0], [[1.0 - 5.0, 2.0 + 10.0], [1.0, 2.0]], atol=1e-12)
    assert s.world_points(np.zeros((4, 3))).shape == (4, 2, 2)


def test_edge_reads_dark_on_one_side_only() -> None:
    track = edge_track()
    s = GroundSensors([[0.0, 3.0], [0.0, -3.0], [0.0, 0.0]])
    # Heading north along the edge x = 50: the left sensor (x = 47) is on the dark side.
    r = s.read(track, [[50.0, 50.0, np.pi / 2]])[0]
    np.testing.assert_allclose(r, [1.0, 0.0, 0.5])
    # Heading south the sides swap.
    r = s.read(track, [[50.0, 50.0, -np.pi / 2]])[0]
    np.testing.assert_allclose(r, [0.0, 1.0, 0.5], atol=1e-12)


def test_gradient_readings_under_rotation() -> None:
    # darkness = x / 100 (linear in x): exact under bilinear interpolation.
    n = 400
    cols = (np.arange(n) + 0.5) * (100.0 / n)
    track = Track(np.tile(cols / 100.0, (n, 1)), 100.0)
    s = GroundSensors([[10.0, 0.0], [0.0, 4.0], [-3.0, -2.0]])
    rng = np.random.default_rng(0)
    poses = np.column_stack(
        [rng.uniform(30, 70, 16), rng.uniform(30, 70, 16), rng.uniform(-4, 4, 16)]
    )
    got = s.read(track, poses)
    c, sn = np.cos(poses[:, 2:3]), np.sin(poses[:, 2:3])
    x = poses[:, 0:1] + c * s.positions[:, 0] - sn * s.positions[:, 1]
    np.testing.assert_allclose(got, x / 100.0, atol=1e-12)


def test_line_between_the_reflex_sensors_is_silent_and_rows_see_it_centred() -> None:
    cfg = WorldConfig()
    track = band_track()
    sensors = ground_sensors(cfg)
    r = sensors.read(track, [[50.0, 20.0, np.pi / 2]])[0]
    np.testing.assert_array_equal(r[:2], 0.0)
    rows = r[2:].reshape(3, 48)
    np.testing.assert_allclose(rows, rows[:, ::-1])  # symmetric about the axis
    assert rows.sum(axis=1) == pytest.approx([12.0, 12.0, 12.0])  # 3 units / 0.25
    # Shift the robot 4 units right of the line: the left reflex sensor sees its edge.
    r = sensors.read(track, [[54.0, 20.0, np.pi / 2]])[0]
    assert r[0] == 1.0 and r[1] == 0.0
    centroid = (r[2:50] * np.arange(48)).sum() / r[2:50].sum()
    assert centroid == pytest.approx(23.5 - 16.0)  # 4 units left = 16 sensors


def test_reading_shapes_and_errors() -> None:
    s = GroundSensors([[1.0, 0.0]])
    track = edge_track()
    assert s.read(track, np.zeros(3)).shape == (1, 1)
    assert s.read(track, np.zeros((5, 3))).shape == (5, 1)
    with pytest.raises(ShapeError):
        GroundSensors(np.zeros((3, 3)))
    with pytest.raises(ShapeError):
        s.read(track, np.zeros((2, 2)))
