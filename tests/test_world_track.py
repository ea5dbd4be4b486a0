"""Track: bilinear darkness lookup, image loading and its errors, generated tracks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sarlearn.errors import NonFiniteError, ShapeError, TrackError
from sarlearn.world import TRACK_NAMES, Track, load_track, radius_of_curvature
from sarlearn.world.tracks import rasterise


def gradient_track(n: int = 100, arena: float = 50.0) -> Track:
    """Darkness rising linearly with the column: pixel j has darkness j / (n - 1)."""
    img = np.tile(np.linspace(0.0, 1.0, n), (n, 1))
    return Track(img, arena)


# ---------------------------------------------------------------------------- lookup
def test_pixel_centres_read_their_pixel() -> None:
    rng = np.random.default_rng(0)
    img = rng.random((7, 9))
    track = Track(img, arena=18.0)  # 2 units per pixel, 18 x 14 units
    assert (track.width, track.height) == (18.0, 14.0)
    rows, cols = np.meshgrid(np.arange(7), np.arange(9), indexing="ij")
    xy = track.to_world(np.stack([cols, rows], axis=-1))
    np.testing.assert_allclose(track.darkness(xy), img, atol=1e-12)
    # Row 0 is the top of the arena.
    assert xy[0, 0, 1] == pytest.approx(13.0) and xy[-1, 0, 1] == pytest.approx(1.0)


def test_bilinear_is_exact_on_a_linear_gradient() -> None:
    track = gradient_track()
    s = track.scale
    x = np.linspace(0.5 * s, track.width - 0.5 * s, 57)  # between the outer pixel centres
    y = np.linspace(1.0, 49.0, 57)
    got = track.darkness(np.stack([x, y], axis=-1))
    np.testing.assert_allclose(got, (x / s - 0.5) / 99.0, atol=1e-12)


def test_bilinear_midpoint_of_four_pixels() -> None:
    track = Track(np.array([[0.0, 1.0], [0.5, 0.25]]), arena=2.0)
    assert float(track.darkness([1.0, 1.0])) == pytest.approx((0.0 + 1.0 + 0.5 + 0.25) / 4)
    # A quarter of the way from the top-left centre towards the right and down.
    got = float(track.darkness([0.5 + 0.25, 1.5 - 0.5]))
    top, bottom = 0.25 * 1.0, 0.5 + 0.25 * (0.25 - 0.5)
    assert got == pytest.approx(top + 0.5 * (bottom - top))


def test_outside_the_arena_reads_light_and_fades_within_half_a_pixel() -> None:
    track = Track(np.ones((10, 10)), arena=10.0)
    far = np.array([[-5.0, 5.0], [15.0, 5.0], [5.0, -3.0], [5.0, 100.0], [-1e6, 1e6]])
    np.testing.assert_array_equal(track.darkness(far), 0.0)
    assert float(track.darkness([0.0, 5.0])) == pytest.approx(0.5)  # on the border
    assert float(track.darkness([0.5, 5.0])) == pytest.approx(1.0)  # first pixel centre
    assert float(track.darkness([-0.5, 5.0])) == 0.0


def test_darkness_keeps_leading_shape_and_validates() -> None:
    track = gradient_track()
    assert track.darkness(np.zeros((3, 4, 2))).shape == (3, 4)
    assert track.darkness([1.0, 2.0]).shape == ()
    with pytest.raises(ShapeError, match=r"\(\.\.\., 2\)"):
        track.darkness(np.zeros((4, 3)))
    with pytest.raises(NonFiniteError):
        track.darkness([np.nan, 1.0])


def test_track_rejects_bad_images() -> None:
    with pytest.raises(ShapeError):
        Track(np.zeros(5))
    with pytest.raises(NonFiniteError):
        Track(np.full((4, 4), np.nan))
    with pytest.raises(TrackError, match="arena"):
        Track(np.zeros((4, 4)), arena=0.0)


def test_non_square_image_keeps_square_pixels() -> None:
    track = Track(np.zeros((50, 100)), arena=200.0)
    assert (track.width, track.height, track.scale) == (200.0, 100.0, 2.0)
    assert track.inside([[199.0, 99.0]])[0] and not track.inside([[100.0, 101.0]])[0]


# ---------------------------------------------------------------------------- files
def write(path: Path, array: np.ndarray, mode: str | None = None, fmt: str = "PNG") -> Path:
    Image.fromarray(array, mode=mode).save(path, format=fmt)
    return path


def line_drawing(n: int = 64) -> np.ndarray:
    """White floor, a black vertical band: uint8 brightness."""
    img = np.full((n, n), 255, dtype=np.uint8)
    img[:, n // 2 - 2 : n // 2 + 2] = 0
    return img


def test_from_image_greyscale_png(tmp_path: Path) -> None:
    path = write(tmp_path / "line.png", line_drawing())
    track = Track.from_image(path, arena=64.0)
    assert track.name == "line.png" and track.shape == (64, 64)
    assert float(track.darkness([32.0, 30.0])) == pytest.approx(1.0)
    assert float(track.darkness([10.0, 30.0])) == pytest.approx(0.0)


def test_from_image_colour_alpha_and_16_bit(tmp_path: Path) -> None:
    grey = line_drawing()
    rgb = np.repeat(grey[..., None], 3, axis=2)
    rgb[..., 0] = np.where(grey == 0, 60, 255)  # a dark red line still reads dark
    a = Track.from_image(write(tmp_path / "rgb.jpg", rgb, fmt="JPEG"), arena=64.0)
    assert float(a.darkness([32.0, 30.0])) > 0.8 and float(a.darkness([8.0, 8.0])) < 0.05
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)  # transparent = white floor
    rgba[:, 30:34] = (0, 0, 0, 255)
    b = Track.from_image(write(tmp_path / "rgba.png", rgba, mode="RGBA"), arena=64.0)
    assert float(b.darkness([32.0, 30.0])) == pytest.approx(1.0)
    assert float(b.darkness([8.0, 8.0])) == pytest.approx(0.0)
    deep = (line_drawing().astype(np.uint16) * 257).astype(np.uint16)
    c = Track.from_image(write(tmp_path / "deep.png", deep), arena=64.0)
    assert float(c.darkness([32.0, 30.0])) == pytest.approx(1.0)


def test_normalise_maps_grey_floor_to_light(tmp_path: Path) -> None:
    img = np.full((40, 40), 180, dtype=np.uint8)  # a grey floor, as in a photograph
    img[:, 18:22] = 60
    path = write(tmp_path / "photo.png", img)
    assert float(Track.from_image(path, 40.0).darkness([5.0, 5.0])) == 0.0
    assert float(Track.from_image(path, 40.0).darkness([20.0, 20.0])) == pytest.approx(1.0)
    raw = Track.from_image(path, 40.0, normalise=False)
    assert float(raw.darkness([5.0, 5.0])) == pytest.approx(1 - 180 / 255)


@pytest.mark.parametrize(
    ("maker", "problem"),
    [
        (lambda p: p, "file not found"),
        (lambda p: (p.write_text("not an image"), p)[1], "not an image file"),
        (lambda p: write(p, np.full((32, 32), 255, np.uint8)), "no dark pixels"),
        (lambda p: write(p, np.full((32, 32), 140, np.uint8)), "no dark pixels"),
        (lambda p: write(p, np.zeros((32, 32), np.uint8)), "inverted"),
        (lambda p: write(p, np.zeros((4, 4), np.uint8)), "too small"),
        (lambda p: write(p, line_drawing(), fmt="PPM"), "format PPM is not supported"),
        (lambda p: (p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40), p)[1], "track image"),
    ],
    ids=["missing", "text", "white", "grey", "inverted", "tiny", "ppm", "truncated"],
)
def test_bad_images_give_a_clear_track_error(tmp_path: Path, maker, problem: str) -> None:
    path = tmp_path / "floor.png"
    maker(path)
    with pytest.raises(TrackError, match=problem) as info:
        load_track(path)
    assert str(path) in str(info.value)


def test_a_directory_is_not_a_track(tmp_path: Path) -> None:
    with pytest.raises(TrackError, match="not a file"):
        load_track(tmp_path)


def test_save_png_round_trip(tmp_path: Path) -> None:
    track = load_track("circle", resolution=1.0)
    path = track.save_png(tmp_path / "sub" / "circle.png")
    back = load_track(path, normalise=False)
    np.testing.assert_allclose(back.image, track.image, atol=1 / 255 + 1e-9)
    assert back.arena == track.arena


# ---------------------------------------------------------------------------- generated
def test_unknown_name_lists_the_built_in_tracks() -> None:
    with pytest.raises(TrackError, match="circle, oval, figure8, curvy, random"):
        load_track("spiral")


@pytest.mark.parametrize("name", TRACK_NAMES)
def test_generated_tracks_fit_the_arena_and_are_drawn_where_the_centreline_is(name: str) -> None:
    track = load_track(name)
    line = track.centreline
    assert line is not None and track.arena == 250.0 and track.shape == (1000, 1000)
    assert line.min() >= 19.9 and line.max() <= 230.1  # >= 20 units from the border
    step = np.linalg.norm(np.diff(line, axis=0), axis=1)
    np.testing.assert_allclose(step, 0.5, rtol=0.05)
    assert track.darkness(line).min() > 0.99
    # 3 units off the centre is 1.5 units beyond the edge of a 3-unit line: light floor.
    tangent = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    if name != "figure8":  # (the crossing is dark on both sides)
        assert track.darkness(line + 3.0 * normal).max() == 0.0
    # The darkness integrated across the line is its width.
    across = np.linspace(-3.0, 3.0, 241)
    k = len(line) // 3
    prof = track.darkness(line[k] + across[:, None] * normal[k])
    assert prof.sum() * (across[1] - across[0]) == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize("name", ["circle", "oval", "curvy", "random"])
def test_generated_tracks_run_counter_clockwise(name: str) -> None:
    line = load_track(name).centreline
    x, y = line[:, 0], line[:, 1]
    area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    assert area > 0


def test_curvy_has_sharp_bends_both_ways_but_none_below_20_units() -> None:
    radius = radius_of_curvature(load_track("curvy").centreline)
    assert 20.0 <= np.abs(radius).min() <= 25.0
    assert (radius < 0).any() and (radius > 0).any()  # right and left bends
    assert np.mean(np.abs(radius) < 30.0) > 0.2  # a fifth of the lap is sharp bends


def test_random_tracks_depend_on_the_seed_only() -> None:
    a, b, c = (load_track("random", seed=s).centreline for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.allclose(a, c)
    for seed in range(8):
        line = load_track("random", seed=seed, resolution=1.0).centreline
        assert np.abs(radius_of_curvature(line)).min() >= 24.5
        assert line.min() >= 19.9 and line.max() <= 230.1


def test_geometry_scales_with_the_arena_but_the_line_width_does_not() -> None:
    small = load_track("circle", arena=100.0, resolution=4.0, line_width=2.0)
    assert small.shape == (400, 400)
    r = np.linalg.norm(small.centreline - 50.0, axis=1)
    np.testing.assert_allclose(r, 36.0, rtol=1e-3)
    p = small.centreline[0]
    outward = (p - 50.0) / np.linalg.norm(p - 50.0)
    assert float(small.darkness(p + 0.8 * outward)) > 0.9
    assert float(small.darkness(p + 1.3 * outward)) == 0.0


def test_rasterise_draws_exact_coverage_of_a_straight_line() -> None:
    line = np.array([[-10.0, 5.0], [30.0, 5.0], [30.0, -100.0], [-10.0, -100.0]])
    img = rasterise(line, arena=20.0, resolution=2.0, line_width=2.0)
    # y = 5 is row (20 - 5) * 2 - 0.5 = 29.5: the line covers rows 28..31 fully, none else.
    col = img[:, 20]
    np.testing.assert_allclose(col[28:32], 1.0)
    assert col[:27].max() == 0.0 and col[33:].max() == 0.0
