"""Perception: frame -> segment grid -> left/right mirror differences."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.errors import ShapeError
from sarlearn.stages.perception.perception import (
    as_darkness,
    camera_darkness,
    frame_to_predictors,
    mirror_differences,
    n_camera_predictors,
    segment_grid,
)
from sarlearn.stages.world import PinholeCamera, Track


def test_segment_grid_means_of_divisible_blocks() -> None:
    img = np.arange(24.0).reshape(4, 6)
    grid = segment_grid(img, 2, 3)
    expected = img.reshape(2, 2, 3, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(grid, expected)


def test_segment_grid_uneven_blocks_and_leading_axes() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((3, 7, 10))
    grid = segment_grid(img, 3, 4)  # rows split 2/2/3, columns 2/3/2/3
    assert grid.shape == (3, 3, 4)
    assert grid[1, 2, 1] == pytest.approx(img[1, 4:7, 2:5].mean())
    assert grid[2, 0, 3] == pytest.approx(img[2, 0:2, 7:10].mean())


def test_mirror_differences_order_and_sign() -> None:
    grid = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.5, 0.0, 0.0]])
    np.testing.assert_allclose(mirror_differences(grid), [1 - 4, 2 - 3, 0.0, 0.5])
    assert mirror_differences(np.zeros((5, 2, 8))).shape == (5, 8)
    with pytest.raises(ShapeError, match="even"):
        mirror_differences(np.zeros((2, 3)))


def test_a_symmetric_frame_gives_zero_predictors() -> None:
    rng = np.random.default_rng(1)
    half = rng.random((24, 16))
    frame = np.concatenate([half, half[:, ::-1]], axis=1)
    np.testing.assert_allclose(frame_to_predictors(frame, 4, 8), 0.0, atol=1e-12)


def test_camera_brightness_and_simulated_darkness_agree() -> None:
    dark = np.zeros((24, 32))
    dark[:, 4:8] = 1.0  # a line on the left
    bright_u8 = np.round((1.0 - dark) * 255).astype(np.uint8)
    rgb_u8 = np.repeat(bright_u8[..., None], 3, axis=-1)
    a = frame_to_predictors(dark, 4, 8)
    np.testing.assert_allclose(frame_to_predictors(bright_u8, 4, 8), a)
    np.testing.assert_allclose(frame_to_predictors(rgb_u8, 4, 8), a, atol=1e-9)
    np.testing.assert_allclose(frame_to_predictors(1.0 - dark, 4, 8, kind="brightness"), a)
    assert a.shape == (16,) and n_camera_predictors(4, 8) == 16
    assert (a.reshape(4, 4)[:, 1] == 1.0).all() and a.reshape(4, 4)[:, [0, 2, 3]].max() == 0.0


def test_as_darkness_conversions() -> None:
    np.testing.assert_allclose(as_darkness(np.array([[0, 255]], dtype=np.uint8)), [[1.0, 0.0]])
    np.testing.assert_allclose(as_darkness(np.array([[0, 65535]], dtype=np.uint16)), [[1.0, 0.0]])
    red = np.zeros((2, 2, 3))
    red[..., 0] = 1.0
    np.testing.assert_allclose(as_darkness(red), 1.0 - 0.299)
    np.testing.assert_allclose(as_darkness(np.array([[0.2, 1.7]])), [[0.2, 1.0]])
    with pytest.raises(ShapeError):
        as_darkness(np.zeros(5))
    with pytest.raises(ValueError, match="kind"):
        as_darkness(np.zeros((2, 2)), kind="negative")  # type: ignore[arg-type]


def test_grid_must_fit_the_image() -> None:
    with pytest.raises(ShapeError, match="does not fit"):
        segment_grid(np.zeros((3, 8)), 4, 8)
    with pytest.raises(ShapeError, match="even"):
        frame_to_predictors(np.zeros((8, 8)), 2, 3)


def test_simulated_camera_predictors_say_where_the_line_is() -> None:
    img = np.zeros((1000, 1000))
    cols = (np.arange(1000) + 0.5) / 4.0
    img[:, np.abs(cols - 125.0) < 1.5] = 1.0
    track = Track(img, 250.0)
    cam = PinholeCamera()
    poses = np.array([[125.0, 40.0, np.pi / 2], [128.0, 40.0, np.pi / 2], [122.0, 40.0, np.pi / 2]])
    pred = frame_to_predictors(cam.render(track, poses), 4, 8)
    assert pred.shape == (3, 16)
    np.testing.assert_allclose(pred[0], 0.0, atol=1e-12)  # centred: left == right
    assert pred[1].sum() > 0.5 and pred[1].min() >= 0  # line on the left: positive
    np.testing.assert_allclose(pred[2], -pred[1], atol=1e-12)


def test_a_camera_frame_gets_the_same_luma_darkness_wherever_it_is_read() -> None:
    # A real camera's colour frame must give the simulator's formula (BT.601 luma), also
    # when it comes from a recorded video (replay) or the Pi camera.
    from sarlearn.runs.replay import to_darkness

    rgb = np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)
    expected = 1.0 - (rgb / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(camera_darkness(rgb), expected, atol=1e-12)
    np.testing.assert_allclose(to_darkness(rgb), expected, atol=1e-12)
    np.testing.assert_allclose(camera_darkness(rgb), as_darkness(rgb), atol=0)


def test_camera_darkness_box_resizes_to_the_mean_of_each_block() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    full = camera_darkness(rgb)
    small = camera_darkness(rgb, (4, 4))
    np.testing.assert_allclose(small, full.reshape(4, 2, 4, 2).mean(axis=(1, 3)), atol=1e-6)
    with pytest.raises(ShapeError):
        camera_darkness(np.zeros((2, 4, 4, 3), np.uint8))


def test_predictors_of_is_every_steppers_reading_to_predictors() -> None:
    from sarlearn.config import WorldConfig
    from sarlearn.stages.perception.perception import (
        darkness_predictors,
        predictors_of,
        row_predictors,
    )

    rng = np.random.default_rng(3)
    raw = WorldConfig(predictor_mode="raw")
    mirror = WorldConfig(predictor_mode="mirror")
    n_rows = raw.predictors_per_row * len(raw.predictor_distances)
    ground = rng.random((2, 2 + n_rows))
    np.testing.assert_array_equal(predictors_of(raw, ground), ground[:, 2:])
    per_row = mirror.predictors_per_row
    expected = row_predictors(ground[:, 2:], per_row, "mirror")
    np.testing.assert_array_equal(predictors_of(mirror, ground), expected)
    cam = WorldConfig(inputs="camera")
    frame = rng.random((2, 24, 32))
    grid = cam.camera.grid_rows, cam.camera.grid_cols
    np.testing.assert_array_equal(
        predictors_of(cam, ground, frame), darkness_predictors(frame, *grid)
    )
    # The gym asks for camera predictors whatever the world's own inputs say.
    np.testing.assert_array_equal(
        predictors_of(raw, ground, frame, inputs="camera"), darkness_predictors(frame, *grid)
    )
    with pytest.raises(ShapeError, match="need a frame"):
        predictors_of(cam, ground)
