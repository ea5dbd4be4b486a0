"""From a camera frame to predictors: segment grid, then left/right mirror differences.

This is what the real robot does with its camera, and the simulated camera goes through the
same code, so a frame from either gives predictors of the same meaning:

1. :func:`as_darkness` turns any frame into darkness in [0, 1] (1 = dark line): greyscale or
   RGB, 8/16-bit camera brightness or float;
2. :func:`segment_grid` cuts it into ``rows x cols`` segments and averages each;
3. :func:`mirror_differences` subtracts from each left segment its mirror image on the right:
   positive when the line is on the left, like the reflex error ``e = left - right``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import ShapeError

if TYPE_CHECKING:
    from sarlearn.config import RunConfig, WorldConfig

FrameKind = Literal["auto", "darkness", "brightness"]

# ITU-R BT.601 luma weights, as Pillow's "L" conversion uses.
_LUMA = np.array([0.299, 0.587, 0.114])


def as_darkness(image: ArrayLike, kind: FrameKind = "auto") -> NDArray[np.float64]:
    """Any frame -> darkness ``(..., H, W)`` in [0, 1] (1 = dark).

    Args:
        image: ``(..., H, W)`` greyscale or ``(..., H, W, 3|4)`` RGB(A) (a trailing axis of
            3 or 4 on an array of 3 or more dimensions is read as colour).
        kind: ``"darkness"`` (1 = dark, as the simulator renders), ``"brightness"`` (255 or
            1.0 = white, as cameras deliver), or ``"auto"``: integer images are brightness
            (scaled by 255, or 65535 for 16-bit), float greyscale is darkness, float colour
            is brightness in [0, 1].
    """
    a = np.asarray(image)
    if a.ndim < 2:
        raise ShapeError(f"as_darkness: image must be (..., H, W) or (..., H, W, 3), got {a.shape}")
    colour = a.ndim >= 3 and a.shape[-1] in (3, 4)
    integer = np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_
    if integer:
        top = 1.0 if a.dtype == np.bool_ else (65535.0 if a.dtype.itemsize > 1 else 255.0)
        x = a.astype(np.float64) / top
    else:
        x = a.astype(np.float64, copy=False)
    if colour:
        x = x[..., :3] @ _LUMA
    if kind == "auto":
        kind = "brightness" if (integer or colour) else "darkness"
    if kind == "brightness":
        x = 1.0 - x
    elif kind != "darkness":
        raise ValueError(f"as_darkness: kind must be auto, darkness or brightness, got {kind!r}")
    return np.clip(x, 0.0, 1.0)


def camera_darkness(frame: ArrayLike, size: tuple[int, int] | None = None) -> NDArray[np.float64]:
    """A camera's frame (brightness: RGB(A) or grey, 8/16-bit or float in [0, 1]) -> darkness
    ``(H, W)`` in [0, 1], optionally box-resized to ``size`` ``(H, W)``.

    The same formula as every other frame (:func:`as_darkness`, BT.601 luma), so a recorded
    video, a real camera and the simulator give predictors of the same meaning.
    """
    d = as_darkness(frame, kind="brightness")
    if d.ndim != 2:
        raise ShapeError(f"camera_darkness: one frame (H, W[, 3|4]) expected, got {d.shape}")
    if size is not None and d.shape != tuple(size):
        from PIL import Image

        img = Image.fromarray(d.astype(np.float32))  # mode "F"
        d = np.asarray(img.resize((size[1], size[0]), Image.Resampling.BOX), dtype=np.float64)
    return d


def segment_grid(image: ArrayLike, rows: int, cols: int) -> NDArray[np.float64]:
    """Mean of each segment of a ``rows x cols`` grid laid over the image.

    Args:
        image: ``(..., H, W)`` (any leading dimensions, e.g. a population ``P``).
        rows, cols: grid size; ``H`` and ``W`` need not be multiples (segment edges are at
            ``floor(k H / rows)``), but each segment holds at least one pixel.

    Returns:
        ``(..., rows, cols)`` segment means; row 0 is the top (far) band, column 0 the left.
    """
    a = np.asarray(image, dtype=np.float64)
    if a.ndim < 2:
        raise ShapeError(f"segment_grid: image must be (..., H, W), got {a.shape}")
    h, w = a.shape[-2:]
    if not (1 <= rows <= h and 1 <= cols <= w):
        raise ShapeError(
            f"segment_grid: a {rows} x {cols} grid does not fit a {h} x {w} image "
            f"(need 1 <= rows <= H and 1 <= cols <= W)"
        )
    rb, cb = segment_edges(h, w, rows, cols)
    sums = np.add.reduceat(np.add.reduceat(a, rb[:-1], axis=-2), cb[:-1], axis=-1)
    return sums / np.outer(np.diff(rb), np.diff(cb))


def segment_edges(
    h: int, w: int, rows: int, cols: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Edges of the segment grid: row edges ``(rows + 1,)`` at ``floor(k H / rows)`` and
    column edges ``(cols + 1,)`` at ``floor(k W / cols)`` (segment ``(i, j)`` holds rows
    ``rb[i]:rb[i + 1]`` and columns ``cb[j]:cb[j + 1]``)."""
    return (np.arange(rows + 1) * h) // rows, (np.arange(cols + 1) * w) // cols


def mirror_differences(grid: ArrayLike) -> NDArray[np.float64]:
    """Left segments minus their mirror images on the right.

    Args:
        grid: ``(..., rows, cols)`` with ``cols`` even.

    Returns:
        ``(..., rows * cols / 2)``: for each row (top first), the pairs from the outermost
        (column 0 minus column cols-1) to the innermost.
    """
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim < 2 or g.shape[-1] % 2:
        raise ShapeError(
            f"mirror_differences: grid must be (..., rows, cols) with an even cols, got {g.shape}"
        )
    half = g.shape[-1] // 2
    diff = g[..., :half] - g[..., ::-1][..., :half]
    return diff.reshape(*g.shape[:-2], g.shape[-2] * half)


def darkness_predictors(frame: ArrayLike, rows: int, cols: int) -> NDArray[np.float64]:
    """The camera pipeline on darkness frames: ``(..., H, W) -> (..., rows * cols / 2)``,
    segment grid then mirror differences. The one place it is written: the simulator, the
    closed loop's camera input and :func:`frame_to_predictors` all call it."""
    return mirror_differences(segment_grid(frame, rows, cols))


def predictors_of(
    world: WorldConfig,
    ground: ArrayLike,
    frame: ArrayLike | None = None,
    inputs: str | None = None,
) -> NDArray[np.float64]:
    """The network's raw predictors from one reading ``(P, ...)``, the one place every stepper
    (the simulator, the gym) turns a reading into predictors.

    ``inputs`` (default ``world.inputs``): ``"rows"`` = the row sensors ``ground[:, 2:]``, raw or
    as mirror differences per ``world.predictor_mode``
    (:func:`row_predictors`); ``"camera"`` = the darkness
    ``frame``'s segment grid, then mirror differences (:func:`darkness_predictors`).
    """
    if (inputs or world.inputs) == "camera":
        if frame is None:
            raise ShapeError("camera inputs need a frame, got None")
        cam = world.camera
        return darkness_predictors(frame, cam.grid_rows, cam.grid_cols)
    rows = np.asarray(ground)[:, 2:]
    return row_predictors(rows, world.predictors_per_row, world.predictor_mode)


def frame_to_predictors(
    image: ArrayLike, rows: int, cols: int, kind: FrameKind = "auto"
) -> NDArray[np.float64]:
    """A camera frame -> its predictors: ``(..., H, W[, 3]) -> (..., rows * cols / 2)``.

    See :func:`as_darkness` for the accepted frames and :func:`mirror_differences` for the order.
    """
    if cols % 2:
        raise ShapeError(f"frame_to_predictors: cols must be even (mirror pairs), got {cols}")
    return darkness_predictors(as_darkness(image, kind), rows, cols)


def n_camera_predictors(rows: int, cols: int) -> int:
    """Number of predictors of a ``rows x cols`` grid."""
    return rows * (cols // 2)


class CameraPredictors:
    """Frame -> predictors of camera inputs: segment grid, then left/right mirror differences.

    Frames are darkness ``(P, H, W)`` (the Robot protocol), treated exactly as
    ``SimWorld.predictors`` treats them, so a simulated and a real camera share one pipeline.
    A class rather than a closure so a loop holding it can be checkpointed (pickled).
    """

    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = int(rows), int(cols)

    def __call__(self, frame: NDArray[np.floating]) -> NDArray[np.floating]:
        return darkness_predictors(frame, self.rows, self.cols)


def make_perception(cfg: RunConfig) -> CameraPredictors:
    """The camera perception ``cfg.world.camera`` describes."""
    return CameraPredictors(cfg.world.camera.grid_rows, cfg.world.camera.grid_cols)


def row_predictors(rows: ArrayLike, per_row: int, mode: str | None = "raw") -> NDArray[np.float64]:
    """Predictors from the row sensors' darkness ``(P, n_rows * per_row)``.

    ``mode="raw"`` returns them as they are (SPEC); ``"mirror"`` returns, for each row, each
    left sensor minus its mirror image on the right (outermost pair first), exactly as the
    camera pipeline does (:func:`mirror_differences`):
    ``(P, n_rows * per_row / 2)``, positive when the line is on the left and 0 for a line
    centred under the robot, however wide.
    """
    x = np.asarray(rows, dtype=np.float64)
    if mode is None or mode == "raw":  # None: a world config on its own, not tied to a rule
        return x
    if mode != "mirror":
        raise ValueError(f"row_predictors: mode must be 'raw' or 'mirror', got {mode!r}")
    if x.ndim != 2 or per_row % 2 or x.shape[1] % per_row:
        raise ShapeError(
            f"row_predictors: need (P, n_rows * per_row) with an even per_row ({per_row}), "
            f"got {x.shape}"
        )
    return mirror_differences(x.reshape(x.shape[0], -1, per_row))


def n_row_predictors(cfg: WorldConfig) -> int:
    """Number of predictors of the rows of ``cfg`` in its ``predictor_mode``."""
    n = len(cfg.predictor_distances) * cfg.predictors_per_row
    return n // 2 if cfg.predictor_mode == "mirror" else n


def n_predictors(cfg: WorldConfig) -> int:
    """Predictors per robot that ``cfg`` gives the network: its rows of sensors
    (:func:`n_row_predictors`) or, with ``inputs='camera'``, the camera grid's mirror pairs."""
    if cfg.inputs == "camera":
        return n_camera_predictors(cfg.camera.grid_rows, cfg.camera.grid_cols)
    return n_row_predictors(cfg)


__all__ = [
    "CameraPredictors",
    "FrameKind",
    "as_darkness",
    "camera_darkness",
    "darkness_predictors",
    "frame_to_predictors",
    "make_perception",
    "mirror_differences",
    "n_camera_predictors",
    "n_predictors",
    "n_row_predictors",
    "predictors_of",
    "row_predictors",
    "segment_edges",
    "segment_grid",
]
