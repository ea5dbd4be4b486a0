"""Track: bilinear darkness lookup, image loading and its errors, generated tracks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sarlearn.errors import NonFiniteError, ShapeError, TrackError
from sarlearn.stages.world import TRACK_NAMES, Track, load_track, radius_of_curvature
from sarlearn.stages.world.raster import rasterise
from sarlearn.stages.world.tracks import (
    COOPERATION_TRACKS,
    SETTLING_TRACKS,
    centreline,
    describe,
    style_of,
)


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


def normals(line: np.ndarray) -> np.ndarray:
    tangent = np.roll(line, -1, axis=0) - np.roll(line, 1, axis=0)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    return normal / np.linalg.norm(normal, axis=1, keepdims=True)


@pytest.mark.parametrize("name", TRACK_NAMES)
def test_generated_tracks_fit_the_arena_and_are_drawn_where_the_centreline_is(name: str) -> None:
    track = load_track(name)
    style = style_of(name)
    line = track.centreline
    width, height = style.size
    assert line is not None and track.arena == max(width, height)
    assert track.shape == (round(4 * height), round(4 * width))
    assert (track.width, track.height) == pytest.approx((width, height))
    assert line.min() >= 19.9  # >= 20 units from the border
    assert line[:, 0].max() <= width - 19.9 and line[:, 1].max() <= height - 19.9
    step = np.linalg.norm(np.diff(line, axis=0), axis=1)
    np.testing.assert_allclose(step, 0.5, rtol=0.05)
    if style.floor == "photo":
        return  # varying width and ink, gaps: see test_photo_floor_...
    w = style.line_width or 3.0
    assert track.darkness(line).min() > 0.99
    # 1.5 units beyond the edge of the line: light floor.
    normal = normals(line)
    if name != "figure8":  # (the crossing is dark on both sides)
        assert track.darkness(line + (0.5 * w + 1.5) * normal).max() == 0.0
    # The darkness integrated across the line is its width.
    across = np.linspace(-w, w, 241)
    k = len(line) // 3
    prof = track.darkness(line[k] + across[:, None] * normal[k])
    assert prof.sum() * (across[1] - across[0]) == pytest.approx(w, abs=0.05)


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


def bends(line: np.ndarray, below: float) -> list[tuple[float, float]]:
    """(smallest |radius|, turning angle in degrees) of each stretch with |radius| < below."""
    radius = radius_of_curvature(line)
    sharp = np.abs(radius) < below
    if sharp.all() or not sharp.any():
        return []
    start = int(np.argmin(sharp))  # begin the scan on a gentle point
    sharp, radius = np.roll(sharp, -start), np.roll(radius, -start)
    out, i = [], 0
    while i < len(sharp):
        if not sharp[i]:
            i += 1
            continue
        j = i
        while j < len(sharp) and sharp[j]:
            j += 1
        turn = np.degrees(np.sum(0.5 / radius[i:j]))  # arc length 0.5 per point
        out.append((float(np.abs(radius[i:j]).min()), float(turn)))
        i = j
    return out


def test_hairpin_has_half_turns_of_radius_24_to_28_both_ways() -> None:
    line = load_track("hairpin").centreline
    radius = radius_of_curvature(line)
    assert 24.0 <= np.abs(radius).min() <= 28.0  # just above the network's limit of 20
    half_turns = [(r, t) for r, t in bends(line, 30.0) if abs(abs(t) - 180.0) < 25.0]
    assert len(half_turns) >= 2
    assert all(24.0 <= r <= 28.0 for r, _ in half_turns)
    assert {np.sign(t) for _, t in half_turns} == {-1.0, 1.0}  # a left and a right hairpin


def test_tight_has_three_bends_tighter_than_the_network_can_turn() -> None:
    line = load_track("tight").centreline
    tight = bends(line, 20.0)
    assert len(tight) == 3
    assert all(15.0 <= r <= 18.0 and abs(abs(t) - 180.0) < 25.0 for r, t in tight)
    assert {np.sign(t) for _, t in tight} == {-1.0, 1.0}
    # cooperation with the reflex: reported apart, not part of the settling target
    assert COOPERATION_TRACKS == ("tight",)
    assert "tight" not in SETTLING_TRACKS and "curvy" in SETTLING_TRACKS
    assert "settling target" in describe("tight")


def test_thick_is_curvy_drawn_eight_units_wide_whatever_the_line_width() -> None:
    thick, curvy = load_track("thick", line_width=2.0), load_track("curvy")
    np.testing.assert_array_equal(thick.centreline, curvy.centreline)
    line, normal = thick.centreline, normals(thick.centreline)
    across = np.linspace(-8.0, 8.0, 321)
    prof = thick.darkness(line[100] + across[:, None] * normal[100])
    assert prof.sum() * (across[1] - across[0]) == pytest.approx(8.0, abs=0.05)


def test_wide_arena_is_350_by_200_and_scales_with_the_arena() -> None:
    wide = load_track("wide", resolution=2.0)
    assert wide.shape == (400, 700) and (wide.width, wide.height) == (350.0, 200.0)
    assert np.abs(radius_of_curvature(wide.centreline)).min() >= 24.0
    half = load_track("wide", arena=125.0, resolution=2.0)
    assert (half.width, half.height) == (175.0, 100.0) and half.shape == (200, 350)
    gap = np.linalg.norm(half.centreline[:, None] - 0.5 * wide.centreline[None], axis=2)
    assert gap.min(axis=1).max() < 0.3  # the same curve, half the size
    x = wide.centreline[:, 0]
    assert x.max() - x.min() > 250  # the line uses the long side


def test_photo_floor_is_seeded_textured_and_keeps_the_reflex_corridor_clean() -> None:
    a, b, c = (load_track("photo", seed=s, resolution=2.0) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.centreline, c.centreline)  # the seed changes the floor
    assert not np.array_equal(a.image, c.image)
    line = a.centreline
    on = a.darkness(line)
    assert (on == 0).mean() > 0.005  # gaps in the line
    inked = on[on > 0.5]
    assert inked.max() - inked.min() > 0.2  # varying darkness
    floor = a.image.ravel()
    assert (floor == 0).mean() > 0.8  # floor, shading and grain normalised to exactly 0
    near = np.linalg.norm(a.to_world(np.argwhere(a.image.T > 0)) - line[0], axis=1) >= 0
    assert near.any()
    # blotches: faint patches away from the line
    far = a.darkness(line + 25.0 * normals(line))
    assert ((a.image > 0.05) & (a.image < 0.5)).mean() > 0.002
    # nothing under a reflex sensor of a robot centred on the line (5 units to either side)
    for side in (-1.0, 1.0):
        assert a.darkness(line + side * 5.0 * normals(line)).max() == 0.0
    assert far.min() >= 0.0


def test_rasterise_draws_a_non_square_arena() -> None:
    line = np.array([[5.0, 5.0], [35.0, 5.0], [35.0, 15.0], [5.0, 15.0]])
    img = rasterise(line, arena=40.0, resolution=2.0, line_width=1.0, height=20.0)
    assert img.shape == (40, 80)
    # y = 15 is row (20 - 15) * 2 - 0.5 = 9.5: rows 9 and 10 at column 40
    assert img[9, 40] > 0.4 and img[10, 40] > 0.4 and img[0, 40] == 0.0


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


# ------------------------------------------------------------------ start point (exactness)
def brute_force_start_index(line: np.ndarray, ahead: float, clearance: float) -> int:
    """The start index as first written: every pair of points, N x N distances."""
    n = len(line)
    step = np.linalg.norm(line[1] - line[0])
    w = max(1, round(ahead / step))
    bend = np.abs(1.0 / radius_of_curvature(line))
    csum = np.concatenate([[0.0], np.cumsum(np.concatenate([bend, bend[:w]]))])
    ahead_bend = csum[w : w + n] - csum[:n]
    idx = np.arange(n)
    gap = np.abs(idx[:, None] - idx[None, :])
    far_along = np.minimum(gap, n - gap) > 2 * w
    dist = np.linalg.norm(line[:, None, :] - line[None, :, :], axis=2)
    near = np.where(far_along, dist, np.inf).min(axis=1) < clearance
    crossing_ahead = np.zeros(n, dtype=bool)
    for k in range(w):
        crossing_ahead |= np.roll(near, -k)
    ahead_bend[crossing_ahead] = np.inf
    return int(np.argmin(ahead_bend)) if np.isfinite(ahead_bend).any() else 0


def brute_force_near(line: np.ndarray, gap: int, clearance: float) -> np.ndarray:
    n = len(line)
    idx = np.arange(n)
    g = np.abs(idx[:, None] - idx[None, :])
    far = np.minimum(g, n - g) > gap
    dist = np.linalg.norm(line[:, None, :] - line[None, :, :], axis=2)
    return np.where(far, dist, np.inf).min(axis=1) < clearance


@pytest.mark.parametrize("name", TRACK_NAMES)
def test_start_point_is_the_brute_force_one_on_every_built_in_track(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grid search of crossings gives the same centreline (so the same start pose) as the
    all-pairs search it replaced."""
    from sarlearn.stages.world import tracks

    cases = [(250.0, 0), (250.0, 3), (120.0, 1)]
    fast = [tracks.centreline(name, arena, seed) for arena, seed in cases]
    monkeypatch.setattr(tracks, "start_index", brute_force_start_index)
    for (arena, seed), line in zip(cases, fast, strict=True):
        np.testing.assert_array_equal(line, tracks.centreline(name, arena, seed))


def test_near_search_equals_all_pairs_on_random_lines() -> None:
    from sarlearn.stages.world import curves

    rng = np.random.default_rng(0)
    for trial in range(40):
        n = int(rng.integers(3, 400))
        line = np.cumsum(rng.normal(0.0, rng.uniform(0.1, 5.0), (n, 2)), axis=0)
        if trial % 4 == 0:  # points exactly on cell borders and repeated points
            line = np.round(line) * 2.0
        for clearance in (0.0, 0.5, 2.0, 7.0, 50.0):
            gap = int(rng.integers(0, max(1, n // 2)))
            np.testing.assert_array_equal(
                curves.near_far_along(line, gap, clearance), brute_force_near(line, gap, clearance)
            )


def square_window_rasterise(line, arena, resolution, line_width, ink=None) -> np.ndarray:
    """rasterise as first written: every pixel of a square window around each segment."""
    from sarlearn.stages.world import curves

    n = round(arena * resolution)
    res = n / arena
    p = np.asarray(line, dtype=np.float64)
    widths = np.broadcast_to(np.asarray(line_width, dtype=np.float64), (len(p),))
    inks = np.ones(len(p)) if ink is None else np.asarray(ink, dtype=np.float64)
    p, widths, inks = curves.resample_closed_with(p, 0.5 / res, widths, inks)
    px = np.stack([p[:, 0] * res - 0.5, (arena - p[:, 1]) * res - 0.5], axis=1)
    a, b = px, np.roll(px, -1, axis=0)
    halves = 0.5 * widths * res
    reach = int(np.ceil(halves.max() + 1.5))
    off = np.arange(-reach, reach + 1)
    oc, orow = (g.ravel() for g in np.meshgrid(off, off))
    img = np.zeros(n * n)
    base = np.round(a).astype(np.intp)
    cols, rows = base[:, :1] + oc, base[:, 1:] + orow
    d = b - a
    len2 = np.maximum((d**2).sum(axis=1, keepdims=True), 1e-12)
    rx, ry = cols - a[:, :1], rows - a[:, 1:]
    tt = np.clip((rx * d[:, :1] + ry * d[:, 1:]) / len2, 0.0, 1.0)
    dist = np.hypot(rx - tt * d[:, :1], ry - tt * d[:, 1:])
    dark = np.clip(halves[:, None] + 0.5 - dist, 0.0, 1.0) * inks[:, None]
    ok = (cols >= 0) & (cols < n) & (rows >= 0) & (rows < n) & (dark > 0)
    np.maximum.at(img, rows[ok] * n + cols[ok], dark[ok])
    return img.reshape(n, n)


@pytest.mark.parametrize("name", ["curvy", "figure8", "tight", "random"])
def test_rasterise_equals_the_square_window_drawing(name: str) -> None:
    """Leaving out the window's corners (never dark) changes no pixel, for any width or ink."""
    rng = np.random.default_rng(1)
    for arena, res, width in [(250.0, 4.0, 3.0), (120.0, 7.3, 1.0), (250.0, 2.5, 8.0)]:
        line = centreline(name, arena)
        varying = width * rng.uniform(0.5, 1.5, len(line))
        for widths, ink in [(width, None), (varying, rng.uniform(0.0, 1.0, len(line)))]:
            np.testing.assert_array_equal(
                rasterise(line, arena, res, widths, ink=ink),
                square_window_rasterise(line, arena, res, widths, ink=ink),
            )
