"""Pictures of the world: the track, robot bodies, their sensors, camera footprint and paths.

:func:`world_image` draws one picture (RGB ``uint8`` array, :func:`save_image` writes a PNG);
:class:`FrameRenderer` prepares the background once and then draws video frames quickly
(about a millisecond each at 500 x 500 pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.stages.world.camera import PinholeCamera
from sarlearn.stages.world.sensors import GroundSensors
from sarlearn.stages.world.track import Track

if TYPE_CHECKING:  # PIL is imported where a picture is drawn (a simulation needs none)
    from PIL import Image

FLOOR = np.array([246, 244, 238], dtype=np.float64)
LINE = np.array([25, 25, 30], dtype=np.float64)
BODY = (70, 110, 170)
LEFT_SENSOR = (220, 40, 40)
RIGHT_SENSOR = (40, 90, 230)
ROW_SENSOR = (30, 160, 70)
FOOTPRINT = (200, 120, 0)
# Distinct path colours (matplotlib's tab10), cycled over robots.
PATH_COLOURS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)

#: Robot body (length, width) in units; SPEC: 20 x 10, centred on the axle.
BODY_SIZE = (20.0, 10.0)


def background(track: Track, scale: float) -> NDArray[np.uint8]:
    """The floor as an RGB image ``(H', W', 3)`` at ``scale`` pixels per unit."""
    from PIL import Image

    h = max(1, round(track.height * scale))
    w = max(1, round(track.width * scale))
    grey = Image.fromarray(np.round(track.image * 255).astype(np.uint8), mode="L")
    # Box filter when shrinking (averages the line in), bilinear when enlarging.
    shrink = scale * track.scale < 1.0
    grey = grey.resize((w, h), Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR)
    dark = np.asarray(grey, dtype=np.float64)[..., None] / 255.0
    return np.round(FLOOR * (1.0 - dark) + LINE * dark).astype(np.uint8)


class _Painter:
    """Draws world-coordinate shapes on a PIL image of the arena."""

    def __init__(self, img: Image.Image, track: Track, scale: float) -> None:
        from PIL import ImageDraw

        self.draw = ImageDraw.Draw(img, "RGBA")
        self.scale = scale
        self.top = track.height

    def px(self, pts: ArrayLike) -> list[tuple[float, float]]:
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        s = self.scale
        return [(float(x * s), float((self.top - y) * s)) for x, y in p]

    def path(self, pts: ArrayLike, colour: tuple[int, int, int], width: float) -> None:
        p = np.asarray(pts, dtype=np.float64)
        p = p[np.isfinite(p).all(axis=1)]
        if len(p) >= 2:
            self.draw.line(self.px(p), fill=(*colour, 230), width=max(1, round(width)))

    def robot(
        self,
        pose: NDArray,
        sensors: GroundSensors | None,
        camera: PinholeCamera | None,
        colour: tuple[int, int, int] = BODY,
    ) -> None:
        x, y, th = pose
        c, s = np.cos(th), np.sin(th)
        rot = np.array([[c, -s], [s, c]])

        def world(local: ArrayLike) -> NDArray:
            return np.asarray(local, dtype=np.float64) @ rot.T + (x, y)

        if camera is not None:
            self.draw.polygon(
                self.px(world(camera.footprint())), fill=(*FOOTPRINT, 40), outline=(*FOOTPRINT, 200)
            )
        hl, hw = 0.5 * BODY_SIZE[0], 0.5 * BODY_SIZE[1]
        body = world([(-hl, -hw), (hl, -hw), (hl, hw), (-hl, hw)])
        self.draw.polygon(self.px(body), fill=(*colour, 110), outline=(*colour, 255))
        for side in (hw, -hw):  # wheels on the axle
            wheel = world([(-3, side - 1), (3, side - 1), (3, side + 1), (-3, side + 1)])
            self.draw.polygon(self.px(wheel), fill=(40, 40, 40, 255))
        nose = world([(hl, 0.0), (hl - 4, 2.5), (hl - 4, -2.5)])
        self.draw.polygon(self.px(nose), fill=(*colour, 255))
        if sensors is not None:
            pts = world(sensors.positions)
            r = max(1.0, 0.6 * self.scale)
            for k, (u, v) in enumerate(self.px(pts)):
                if k < 2:
                    col, rad = (LEFT_SENSOR if k == 0 else RIGHT_SENSOR), 1.6 * r
                else:
                    col, rad = ROW_SENSOR, 0.35 * r
                self.draw.ellipse((u - rad, v - rad, u + rad, v + rad), fill=(*col, 255))


def world_image(
    track: Track,
    poses: ArrayLike | None = None,
    paths: ArrayLike | Sequence[ArrayLike] | None = None,
    sensors: GroundSensors | None = None,
    camera: PinholeCamera | None = None,
    scale: float = 3.0,
    path_width: float = 1.5,
) -> NDArray[np.uint8]:
    """A picture of the world.

    Args:
        track: the floor.
        poses: robots to draw, ``(P, 3)`` or ``(3,)`` (x, y, heading).
        paths: trajectories, ``(T, 2)``, ``(T, P, 2)`` (or ``(T, P, 3)`` poses) or a list of
            ``(T_k, 2)``; NaN points are skipped.
        sensors: ground sensors to mark on each robot (the reflex pair is drawn red = left,
            blue = right when they come first, as in the simulator; the rest small and green).
        camera: draw the floor area the camera sees.
        scale: pixels per unit.
        path_width: line width of the paths in pixels.

    Returns:
        ``(H, W, 3)`` uint8 RGB image, row 0 at the top of the arena.
    """
    from PIL import Image

    img = Image.fromarray(background(track, scale), mode="RGB")
    paint = _Painter(img, track, scale)
    for k, p in enumerate(_path_list(paths)):
        paint.path(p, PATH_COLOURS[k % len(PATH_COLOURS)], path_width)
    if poses is not None:
        for pose in np.asarray(poses, dtype=np.float64).reshape(-1, 3):
            paint.robot(pose, sensors, camera)
    return np.asarray(img)


def _path_list(paths: ArrayLike | Sequence[ArrayLike] | None) -> list[NDArray]:
    if paths is None:
        return []
    if isinstance(paths, list | tuple):
        return [np.asarray(p, dtype=np.float64)[..., :2] for p in paths]
    a = np.asarray(paths, dtype=np.float64)
    if a.ndim == 2:
        return [a[:, :2]]
    if a.ndim == 3:
        return [a[:, k, :2] for k in range(a.shape[1])]
    raise ValueError(f"paths must be (T, 2), (T, P, 2|3) or a list of (T, 2), got {a.shape}")


def save_image(rgb: ArrayLike, path: str | Path) -> Path:
    """Write an RGB (or greyscale) ``uint8`` array as a PNG; returns the path."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(path, format="PNG")
    return path


class FrameRenderer:
    """Fast video frames of the world: the background is drawn once.

    Args:
        track: the floor.
        size: frame width in pixels (height follows the arena's aspect; rounded to even
            sizes, as video encoders want).
        sensors, camera: as in :func:`world_image`.
    """

    def __init__(
        self,
        track: Track,
        size: int = 500,
        sensors: GroundSensors | None = None,
        camera: PinholeCamera | None = None,
    ) -> None:
        from PIL import Image

        self.track = track
        self.scale = size / track.width
        bg = background(track, self.scale)
        h, w = bg.shape[0] // 2 * 2, bg.shape[1] // 2 * 2
        self._bg = Image.fromarray(np.ascontiguousarray(bg[:h, :w]), mode="RGB")
        self.sensors = sensors
        self.camera = camera

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(H, W, 3)`` of a frame."""
        return (self._bg.height, self._bg.width, 3)

    def frame(
        self,
        poses: ArrayLike,
        trail: ArrayLike | Sequence[ArrayLike] | None = None,
        view: ArrayLike | None = None,
    ) -> NDArray[np.uint8]:
        """One frame ``(H, W, 3)`` uint8.

        Args:
            poses: ``(P, 3)`` or ``(3,)`` robots.
            trail: recent path(s), as ``paths`` of :func:`world_image`.
            view: optional camera frame ``(h, w)`` darkness of the first robot, shown as an
                inset in the top-right corner.
        """
        img = self._bg.copy()
        paint = _Painter(img, self.track, self.scale)
        for k, p in enumerate(_path_list(trail)):
            paint.path(p, PATH_COLOURS[k % len(PATH_COLOURS)], 2.0)
        for pose in np.asarray(poses, dtype=np.float64).reshape(-1, 3):
            paint.robot(pose, self.sensors, self.camera)
        if view is not None:
            self._inset(img, np.asarray(view, dtype=np.float64))
        return np.asarray(img)

    def _inset(self, img: Image.Image, view: NDArray) -> None:
        from PIL import Image, ImageDraw

        v = view[0] if view.ndim == 3 else view  # (P, h, w): the first robot's view
        zoom = max(1, int(0.3 * img.width / v.shape[1]))
        grey = np.round((1.0 - np.clip(v, 0.0, 1.0)) * 255).astype(np.uint8)
        inset = Image.fromarray(grey, mode="L").resize(
            (v.shape[1] * zoom, v.shape[0] * zoom), Image.Resampling.NEAREST
        )
        x0 = img.width - inset.width - 6
        ImageDraw.Draw(img).rectangle(
            (x0 - 2, 4, x0 + inset.width + 1, 6 + inset.height + 1), outline=(0, 0, 0)
        )
        img.paste(inset.convert("RGB"), (x0, 6))


__all__ = ["BODY_SIZE", "FrameRenderer", "background", "save_image", "world_image"]
