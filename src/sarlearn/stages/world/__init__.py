"""The simulated world: track images, robot kinematics, ground sensors, camera, pictures.

Start here::

    from sarlearn.config import WorldConfig
    from sarlearn.stages.world import SimWorld

    world = SimWorld(WorldConfig(track="curvy"), population=4)
    for _ in range(1000):
        e = world.step()            # the reflex alone; world.step(y) adds network steering
    world.off_track                 # (4,) bool

Conventions (units, axes, image orientation) are in docs/world.md.
"""

from __future__ import annotations

from sarlearn.stages.world.camera import PinholeCamera
from sarlearn.stages.world.curves import radius_of_curvature
from sarlearn.stages.world.render import FrameRenderer, save_image, world_image
from sarlearn.stages.world.robot import arc_pose, step_poses, wrap_angle
from sarlearn.stages.world.sensors import (
    GroundSensors,
    ground_sensors,
    predictor_rows,
    reflex_pair,
    row_positions,
)
from sarlearn.stages.world.sim import LINE_SEEN, SimWorld
from sarlearn.stages.world.start import centreline_start, image_start, start_pose
from sarlearn.stages.world.track import DARK, Track
from sarlearn.stages.world.tracks import (
    DEFAULT_TRACK,
    TRACK_NAMES,
    centreline,
    describe,
    load_track,
)

__all__ = [
    "DARK",
    "DEFAULT_TRACK",
    "LINE_SEEN",
    "TRACK_NAMES",
    "FrameRenderer",
    "GroundSensors",
    "PinholeCamera",
    "SimWorld",
    "Track",
    "arc_pose",
    "centreline",
    "centreline_start",
    "describe",
    "ground_sensors",
    "image_start",
    "load_track",
    "predictor_rows",
    "radius_of_curvature",
    "reflex_pair",
    "row_positions",
    "save_image",
    "start_pose",
    "step_poses",
    "world_image",
    "wrap_angle",
]
