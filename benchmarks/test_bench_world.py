"""pytest-benchmark timings of the simulated world alone (not part of the test suite).

    pytest benchmarks/test_bench_world.py --benchmark-only

Typical on the 2-core development machines: ~40 us per world step through the robot
interface, ~1 ms per rendered video frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sarlearn.config import WorldConfig
from sarlearn.stages.world import SimWorld, load_track
from sarlearn.stages.world.render import FrameRenderer


def test_world_step_through_the_robot_interface(benchmark: Any) -> None:
    world = SimWorld(WorldConfig(), track=load_track("curvy"))
    world.step()

    def step() -> None:
        world.set_wheel_speeds(30.0, 30.5)
        world.read_ground()

    benchmark(step)


def test_video_frame(benchmark: Any) -> None:
    world = SimWorld(WorldConfig(track="oval"), camera=True)
    renderer = FrameRenderer(world.track, size=400, sensors=world.sensors, camera=world.camera)
    trail = np.array([world.pose[0, :2]])
    benchmark(lambda: renderer.frame(world.pose, trail, view=world.grab_frame()))
