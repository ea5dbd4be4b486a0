"""A forward pinhole camera tilted down at the floor, rendered from the track image.

The camera sits ``forward`` units ahead of the robot centre, ``height`` above the floor, on the
robot's axis, and looks ahead, pitched down by ``tilt``. Pixels are square; ``fov`` is the
horizontal field of view. Image row 0 is the top of the picture (far away), column 0 its left
(the robot's left, +y), as a real camera mounted upright would see it. Each pixel reads the
floor where its ray meets it (averaged over ``supersample``^2 rays for anti-aliasing); rays
above the horizon see nothing (0, light).

Because the camera is fixed to the robot, the floor point of every ray is precomputed once in
the robot frame; rendering a frame is then one ground-sensor lookup per ray.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import ShapeError
from sarlearn.stages.world.sensors import GroundSensors, as_poses

if TYPE_CHECKING:
    from sarlearn.config import CameraConfig
    from sarlearn.stages.world.track import Track


class PinholeCamera:
    """A downward-tilted pinhole camera fixed to the robot.

    Args:
        height: height of the optical centre above the floor (units).
        forward: mount position ahead of the robot centre (units).
        tilt_deg: downward pitch of the optical axis from horizontal (degrees, 0-90).
        fov_deg: horizontal field of view (degrees).
        width, height_px: image size in pixels.
        supersample: rays per pixel along each side (anti-aliasing).
        max_range: floor points farther than this from the camera (units) read as light.
    """

    def __init__(
        self,
        height: float = 12.0,
        forward: float = 5.0,
        tilt_deg: float = 50.0,
        fov_deg: float = 60.0,
        width: int = 32,
        height_px: int = 24,
        supersample: int = 2,
        max_range: float = 200.0,
    ) -> None:
        if not (height > 0 and 0 < tilt_deg < 90 and 0 < fov_deg < 180):
            raise ShapeError(
                f"PinholeCamera: need height > 0, 0 < tilt_deg < 90, 0 < fov_deg < 180; got "
                f"{height}, {tilt_deg}, {fov_deg}"
            )
        if width < 1 or height_px < 1 or supersample < 1:
            raise ShapeError(
                f"PinholeCamera: width, height_px, supersample must be >= 1, got "
                f"{width}, {height_px}, {supersample}"
            )
        self.height = float(height)
        self.forward = float(forward)
        self.tilt_deg = float(tilt_deg)
        self.fov_deg = float(fov_deg)
        self.shape = (int(height_px), int(width))
        """``(H, W)`` of a frame."""
        self.supersample = int(supersample)
        self.max_range = float(max_range)
        ground, valid = self._rays()
        self._valid = valid
        self.ground_points: NDArray[np.float64] = ground
        """``(H, W, s, s, 2)`` floor point of every ray in the robot frame (NaN above horizon)."""
        self._sensors = GroundSensors(np.where(valid[..., None], ground, 0.0).reshape(-1, 2))

    @classmethod
    def from_config(cls, cfg: CameraConfig) -> PinholeCamera:
        """Build from a :class:`~sarlearn.config.CameraConfig`."""
        return cls(
            height=cfg.height,
            forward=cfg.forward,
            tilt_deg=cfg.tilt_deg,
            fov_deg=cfg.fov_deg,
            width=cfg.width,
            height_px=cfg.height_px,
            supersample=cfg.supersample,
        )

    def _rays(self) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        h, w = self.shape
        s = self.supersample
        t = np.radians(self.tilt_deg)
        focal = 0.5 * w / np.tan(0.5 * np.radians(self.fov_deg))  # in pixels
        # Sub-pixel sample positions, image coordinates with the centre at 0, y up.
        sub = (np.arange(s) + 0.5) / s
        col = (np.arange(w)[:, None] + sub[None, :]).ravel() - 0.5 * w  # (w*s,)
        row = (np.arange(h)[:, None] + sub[None, :]).ravel() - 0.5 * h  # (h*s,)
        xn = col[None, :] / focal  # right
        yn = -row[:, None] / focal  # up
        # Camera axes in the robot frame (x fwd, y left, z up): axis, right, up.
        axis = np.array([np.cos(t), 0.0, -np.sin(t)])
        right = np.array([0.0, -1.0, 0.0])
        up = np.array([np.sin(t), 0.0, np.cos(t)])
        ray = axis + xn[..., None] * right + yn[..., None] * up  # (h*s, w*s, 3)
        down = -ray[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(down > 0, self.height / down, np.inf)
        gx = self.forward + dist * ray[..., 0]
        gy = dist * ray[..., 1]
        valid = np.isfinite(dist) & (np.hypot(gx - self.forward, gy) <= self.max_range)
        ground = np.stack([gx, gy], axis=-1)
        ground[~valid] = np.nan
        # (h*s, w*s, 2) -> (h, s, w, s, 2) -> (h, w, s, s, 2)
        ground = ground.reshape(h, s, w, s, 2).transpose(0, 2, 1, 3, 4)
        valid = valid.reshape(h, s, w, s).transpose(0, 2, 1, 3)
        return ground, valid

    def render(self, track: Track, pose: ArrayLike) -> NDArray[np.float64]:
        """The camera image of the floor.

        Args:
            track: the floor.
            pose: ``(P, 3)`` robot poses (or one ``(3,)``).

        Returns:
            ``(P, H, W)`` darkness in [0, 1] (1 = dark line).
        """
        p = as_poses(pose)
        h, w = self.shape
        s = self.supersample
        d = self._sensors.read(track, p).reshape(p.shape[0], h, w, s * s)
        d *= self._valid.reshape(1, h, w, s * s)
        return d.mean(axis=-1)

    def footprint(self) -> NDArray[np.float64]:
        """Corners ``(4, 2)`` of the seen floor in the robot frame (near-left, near-right,
        far-right, far-left), the far edge capped at ``max_range``; for drawing."""
        g = self.ground_points
        h, w = self.shape
        # Outer rays of the corner pixels; the top row may be above the horizon, so take the
        # first valid row from the top.
        rows_ok = np.flatnonzero(self._valid.all(axis=(1, 2, 3)))
        top = rows_ok[0] if len(rows_ok) else h - 1
        return np.array(
            [g[h - 1, 0, -1, 0], g[h - 1, w - 1, -1, -1], g[top, w - 1, 0, -1], g[top, 0, 0, 0]]
        )

    def __repr__(self) -> str:
        h, w = self.shape
        return (
            f"PinholeCamera({w}x{h}, height={self.height:g}, forward={self.forward:g}, "
            f"tilt={self.tilt_deg:g} deg, fov={self.fov_deg:g} deg)"
        )


__all__ = ["PinholeCamera"]
