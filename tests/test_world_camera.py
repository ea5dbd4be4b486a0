"""Pinhole camera: geometry of the rendered floor."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import CameraConfig
from sarlearn.errors import ShapeError
from sarlearn.stages.world import PinholeCamera, Track


def line_track(x0: float = 125.0, width: float = 3.0) -> Track:
    """A vertical dark line x = x0 on a 250-unit floor at 4 px per unit."""
    img = np.zeros((1000, 1000))
    cols = (np.arange(1000) + 0.5) / 4.0
    img[:, np.abs(cols - x0) < width / 2] = 1.0
    return Track(img, 250.0)


def row_centroids(frame: np.ndarray) -> np.ndarray:
    cols = np.arange(frame.shape[1])
    return (frame * cols).sum(axis=1) / frame.sum(axis=1)


def test_a_straight_line_ahead_is_straight_and_centred() -> None:
    cam = PinholeCamera()
    frame = cam.render(line_track(), [[125.0, 40.0, np.pi / 2]])[0]
    assert frame.shape == (24, 32)
    assert (frame.sum(axis=1) > 0.5).all()  # seen in every row
    np.testing.assert_allclose(row_centroids(frame), 15.5, atol=1e-9)
    np.testing.assert_allclose(frame, frame[:, ::-1], atol=1e-12)
    # Perspective: the line looks wider near the robot (bottom) than far away (top).
    assert frame[-1].sum() > 1.5 * frame[0].sum()


def test_a_line_to_the_left_appears_on_the_left() -> None:
    cam = PinholeCamera()
    frame = cam.render(line_track(), [[129.0, 40.0, np.pi / 2]])[0]  # robot right of the line
    assert (row_centroids(frame) < 15.5).all()


def test_an_oblique_straight_line_stays_straight() -> None:
    cam = PinholeCamera(width=64, height_px=48, supersample=3)
    frame = cam.render(line_track(), [[125.0, 40.0, np.pi / 2 + 0.25]])[0]
    rows = np.flatnonzero(frame.sum(axis=1) > 1.0)
    assert len(rows) > 30
    c = row_centroids(frame[rows])
    fit = np.polyfit(rows, c, 1)
    # The robot turned left: farther away (towards row 0) the line lies more to the right.
    assert fit[0] < -0.1
    assert np.abs(np.polyval(fit, rows) - c).max() < 0.15


def test_ground_geometry_of_the_default_camera() -> None:
    cam = PinholeCamera.from_config(CameraConfig())
    assert cam.shape == (24, 32)
    fp = cam.footprint()
    near, far = fp[0, 0], fp[2, 0]
    assert 5.0 < near < 12.0 and 20.0 < far < 40.0  # sees the floor from ~9 to ~29 ahead
    assert fp[0, 1] > 0 > fp[1, 1]  # column 0 is the robot's left
    np.testing.assert_allclose(fp[0, 1], -fp[1, 1])


def test_rays_above_the_horizon_see_nothing() -> None:
    cam = PinholeCamera(tilt_deg=10.0, fov_deg=90.0)
    track = Track(np.ones((100, 100)), 250.0)  # everything dark
    frame = cam.render(track, [[125.0, 125.0, 0.0]])[0]
    assert frame[0].max() == 0.0 and frame[-1].min() == 1.0


def test_population_and_validation() -> None:
    cam = PinholeCamera(width=8, height_px=6, supersample=1)
    poses = np.array([[125.0, 40.0, np.pi / 2], [129.0, 40.0, np.pi / 2]])
    frames = cam.render(line_track(), poses)
    assert frames.shape == (2, 6, 8)
    np.testing.assert_allclose(frames[1], cam.render(line_track(), poses[1])[0])
    with pytest.raises(ShapeError):
        PinholeCamera(tilt_deg=95.0)
    with pytest.raises(ShapeError):
        PinholeCamera(width=0)
