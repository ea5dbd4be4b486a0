"""Automatic start: on the line, centred, heading along it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from sarlearn.config import WorldConfig
from sarlearn.errors import TrackError
from sarlearn.stages.world import (
    TRACK_NAMES,
    Track,
    image_start,
    load_track,
    reflex_pair,
    start_pose,
)
from sarlearn.stages.world.tracks import style_of


def heading_error(pose: np.ndarray, line: np.ndarray) -> tuple[float, float]:
    """Distance from the pose to the centreline, and angle to its local direction."""
    i = int(np.argmin(np.linalg.norm(line - pose[:2], axis=1)))
    t = line[(i + 1) % len(line)] - line[i - 1]
    angle = np.angle(np.exp(1j * (pose[2] - np.arctan2(t[1], t[0]))))
    return float(np.linalg.norm(line[i] - pose[:2])), float(angle)


def assert_on_the_line(track: Track, pose: np.ndarray, width: float | None = 3.0) -> None:
    """Centred on a line of ``width``, heading along it, line ahead, reflex silent.

    ``width=None``: a line of varying width and ink (the photo track): on it and ahead only.
    """
    x, y, th = pose
    fwd, left = np.array([np.cos(th), np.sin(th)]), np.array([-np.sin(th), np.cos(th)])
    p = np.array([x, y])
    dark = 0.8 if width is not None else 0.2
    assert float(track.darkness(p)) > dark
    if width is not None:
        inner, outer = 0.5 * width - 0.6, 0.5 * width + 1.0
        for side in (1, -1):
            assert float(track.darkness(p + side * inner * left)) > 0.5, "not centred"
            assert float(track.darkness(p + side * outer * left)) < 0.1, "not centred"
    assert float(track.darkness(p + 6.0 * fwd)) > dark * 0.6, "the line does not go on ahead"
    reflex = reflex_pair(WorldConfig()).read(track, pose)
    np.testing.assert_allclose(reflex, 0.0, atol=1e-9)


def drawn_width(name: str) -> float | None:
    """The line width of a built-in track (None: it varies along the line)."""
    style = style_of(name)
    return None if style.floor == "photo" else (style.line_width or 3.0)


@pytest.mark.parametrize("name", TRACK_NAMES)
def test_built_in_tracks_start_on_their_centreline(name: str) -> None:
    track = load_track(name)
    pose = start_pose(track)
    dist, angle = heading_error(pose, track.centreline)
    assert dist < 1e-9 and abs(angle) < 0.02
    assert_on_the_line(track, pose, drawn_width(name))


@pytest.mark.parametrize("name", TRACK_NAMES)
def test_image_search_finds_the_line_of_every_built_in_track(name: str) -> None:
    generated = load_track(name)
    bare = Track(generated.image, generated.arena, name=f"{name} image")  # no centreline
    pose = image_start(bare)
    dist, angle = heading_error(pose, generated.centreline)
    assert dist < 0.5
    assert min(abs(angle), np.pi - abs(angle)) < 0.1
    assert_on_the_line(bare, pose, drawn_width(name))


def draw_user_track(path: Path, size: tuple[int, int] = (600, 450)) -> Path:
    """A hand-made floor: a thick wobbly loop, a filled blob and a speck; ~0.4 units/px."""
    im = Image.new("RGB", size, (235, 230, 220))
    d = ImageDraw.Draw(im)
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    r = 150 + 25 * np.sin(3 * t)
    pts = [(300 + a * np.cos(b), 225 + 0.9 * a * np.sin(b)) for a, b in zip(r, t, strict=True)]
    d.line([*pts, pts[0]], fill=(20, 20, 60), width=10, joint="curve")
    d.ellipse((270, 195, 330, 255), fill=(10, 10, 10))  # a blob in the middle
    d.point((20, 20), fill=(0, 0, 0))
    im.save(path)
    return path


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_user_image_start_lands_on_the_line(tmp_path: Path, suffix: str) -> None:
    track = load_track(draw_user_track(tmp_path / f"floor{suffix}"), arena=240.0)
    assert (track.width, track.height) == (240.0, 180.0)
    pose = start_pose(track)
    assert_on_the_line(track, pose, width=4.0)
    # Not on the blob in the middle.
    assert np.linalg.norm(pose[:2] - [120.0, 90.0]) > 30.0


def test_a_straight_user_line_gives_its_direction(tmp_path: Path) -> None:
    im = Image.new("L", (500, 500), 255)
    ImageDraw.Draw(im).line([(50, 450), (450, 50)], fill=0, width=12)  # 45 degrees up-right
    im.save(tmp_path / "diagonal.png")
    track = load_track(tmp_path / "diagonal.png")  # 0.5 units per pixel
    pose = start_pose(track)
    assert abs(np.sin(pose[2] - np.pi / 4)) < 0.02
    assert_on_the_line(track, pose, width=6.0)


def test_explicit_start_is_used_by_the_simulator() -> None:
    from sarlearn.stages.world import SimWorld

    world = SimWorld(WorldConfig(track="circle", start=(10.0, 20.0, 0.5)), population=2)
    np.testing.assert_allclose(world.pose, [[10.0, 20.0, 0.5]] * 2)


def test_no_dark_pixels_is_a_track_error() -> None:
    with pytest.raises(TrackError, match="no dark pixels"):
        start_pose(Track(np.zeros((50, 50)), 50.0, name="blank"))


def test_start_poses_draw_as_repeated_single_starts(tmp_path) -> None:
    """n starts at once equal n single draws from the same generator, on a generated track
    and on an image (whose line is analysed only once)."""
    from sarlearn.stages.world.start import start_poses
    from sarlearn.stages.world.tracks import load_track

    oval = load_track("oval")
    oval.save_png(tmp_path / "oval.png")
    image = Track.from_image(tmp_path / "oval.png")
    for track in (oval, image):
        many = start_poses(track, 4, np.random.default_rng(7))
        rng = np.random.default_rng(7)
        one_by_one = np.stack([start_pose(track, rng) for _ in range(4)])
        np.testing.assert_array_equal(many, one_by_one)
        assert np.all(track.darkness(many[:, :2]) > 0.5)  # every start is on the line
