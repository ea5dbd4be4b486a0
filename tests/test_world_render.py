"""Pictures of the world and video frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from sarlearn.config import WorldConfig
from sarlearn.stages.world import FrameRenderer, SimWorld, load_track, save_image, world_image
from sarlearn.stages.world.render import FLOOR, LINE


def test_track_picture_shows_floor_and_line() -> None:
    track = load_track("circle")
    img = world_image(track, scale=2.0)
    assert img.shape == (500, 500, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img[250, 250], FLOOR)  # arena centre: floor
    x, y = track.centreline[0]
    col, row = round(x * 2 - 0.5), round((250 - y) * 2 - 0.5)
    np.testing.assert_array_equal(img[row, col], LINE)  # row 0 is the top of the arena


def test_robot_sensors_camera_and_paths_are_drawn(tmp_path: Path) -> None:
    world = SimWorld(WorldConfig(track="curvy"), population=2, camera=True)
    poses = [world.pose]
    for _ in range(100):
        world.step([0.0, 0.3])
        poses.append(world.pose)
    paths = np.array(poses)  # (T, P, 3)
    plain = world_image(world.track)
    full = world_image(world.track, world.pose, paths, sensors=world.sensors, camera=world.camera)
    changed = np.any(full != plain, axis=2)
    assert changed.mean() > 0.002
    # The robot body covers its own centre.
    x, y = world.pose[0, :2]
    assert changed[round((250 - y) * 3), round(x * 3)]
    path = save_image(full, tmp_path / "deep" / "world.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (750, 750)
    # Paths may also come as a list of (T, 2) arrays with gaps.
    gap = paths[:, 0, :2].copy()
    gap[50] = np.nan
    assert world_image(world.track, paths=[gap, paths[:, 1, :2]]).shape == (750, 750, 3)


def test_video_frames_have_the_camera_inset() -> None:
    # (frame speed, ~1 ms, is measured in benchmarks/test_bench_world.py)
    world = SimWorld(WorldConfig(track="oval"), camera=True)
    renderer = FrameRenderer(world.track, size=401, sensors=world.sensors, camera=world.camera)
    assert renderer.shape == (400, 400, 3)  # even sizes for video encoders
    trail = []
    for _ in range(200):
        world.step()
        trail.append(world.pose[0, :2])
        frame = renderer.frame(world.pose, np.array(trail[-50:]), view=world.grab_frame())
    assert frame.shape == (400, 400, 3) and frame.dtype == np.uint8
    # The camera inset sits in the top-right corner.
    assert frame[10:40, 300:395].std() > 10
