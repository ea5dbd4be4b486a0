"""Replay of a recorded run: the robot interface fed from a sensor log (and optional video).

A replay lets an agent be trained or tested offline on what a robot once saw, e.g. a run
recorded on the real robot, or a simulator run recorded with ``record_ground=True``. The
wheel commands the agent sends are collected (:attr:`ReplayRobot.commands`) but, the log being
fixed, they do not change what is seen next: the loop is open.

Sensor logs are the ``trace.parquet`` files that runs write: the reflex pair comes from the
``ground_0 .. ground_{n-1}`` columns when present (all ground sensors, rows included), else
from ``sensor_left`` / ``sensor_right``. Camera frames come from an array ``(T, H, W)`` or a
video file (darkness ``1 - luma`` as for every camera frame, :func:`camera_darkness`; lossy
video gives approximate frames), or
from the ``frames.npy`` of a camera run recorded with ``record_ground=True`` (exact).

:func:`replay_run` re-runs the agent of a recorded run folder on what it recorded: the same
config and seed, so the same initial network, hence (with the engine that recorded it) the
same wheel commands, bit for bit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import SarlearnError, ShapeError
from sarlearn.stages.perception.perception import camera_darkness

#: A camera frame -> darkness (kept under its old name for existing callers).
to_darkness = camera_darkness

if TYPE_CHECKING:
    import pandas as pd


class ReplayFinished(SarlearnError, EOFError):
    """The replayed log has no more steps."""


class ReplayRobot:
    """A robot (P = 1) that plays back recorded ground sensors and camera frames.

    Args:
        ground: ``(T, n)`` ground darkness per step, the reflex pair first.
        frames: optional ``(T, H, W)`` darkness frames (1 = dark).
        poses: optional ``(T, 3)`` recorded x, y, heading (exposed as :attr:`pose`).
        off_track: optional ``(T,)`` recorded off-track flags.
    """

    population = 1

    def __init__(
        self,
        ground: ArrayLike,
        frames: ArrayLike | None = None,
        poses: ArrayLike | None = None,
        off_track: ArrayLike | None = None,
    ) -> None:
        g = np.asarray(ground, dtype=np.float64)
        if g.ndim != 2 or g.shape[1] < 2:
            raise ShapeError(f"ReplayRobot: ground must be (T, n >= 2), got {g.shape}")
        self._ground = g
        self._frames = None if frames is None else np.asarray(frames, dtype=np.float64)
        if self._frames is not None and (self._frames.ndim != 3 or len(self._frames) < len(g)):
            raise ShapeError(
                f"ReplayRobot: frames must be (T >= {len(g)}, H, W), got {self._frames.shape}"
            )
        self._poses = None if poses is None else np.asarray(poses, dtype=np.float64)
        self._off = None if off_track is None else np.asarray(off_track, dtype=bool)
        self.cursor = 0
        """Index of the step being replayed."""
        self.commands: list[tuple[float, float]] = []
        """Wheel speeds (left, right) the agent sent, one pair per step."""

    def __len__(self) -> int:
        return len(self._ground)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_trace(
        cls,
        trace: str | Path | pd.DataFrame,
        video: str | Path | None = None,
        frames: ArrayLike | None = None,
        frame_size: tuple[int, int] | None = None,
    ) -> ReplayRobot:
        """Build a replay from a trace (a run folder, a ``trace.parquet`` or a DataFrame).

        ``video`` (a file imageio can read) or ``frames`` provide camera frames; video frames
        are resized to ``frame_size`` ``(H, W)`` when given. A run folder's ``frames.npy``
        (camera runs recorded with ``record_ground=True``) is used when neither is given.
        """
        import pandas as pd  # here: importing sarlearn.loop (which needs Robot) stays light

        if isinstance(trace, pd.DataFrame):
            df = trace
        else:
            path = Path(trace)
            if path.is_dir():
                if frames is None and video is None and (path / "frames.npy").is_file():
                    frames = np.load(path / "frames.npy")
                path = path / "trace.parquet"
            if not path.is_file():
                raise FileNotFoundError(f"no sensor log at {path}")
            df = pd.read_parquet(path)
        ground_cols = sorted(
            (c for c in df.columns if re.fullmatch(r"ground_\d+", c)),
            key=lambda c: int(c.split("_")[1]),
        )
        if ground_cols:
            ground = df[ground_cols].to_numpy()
        elif {"sensor_left", "sensor_right"} <= set(df.columns):
            ground = df[["sensor_left", "sensor_right"]].to_numpy()
        else:
            raise ValueError("the sensor log has neither ground_<k> nor sensor_left/right columns")
        poses = df[["x", "y", "heading"]].to_numpy() if {"x", "y", "heading"} <= set(df) else None
        off = df["off_track"].to_numpy() if "off_track" in df else None
        if frames is None and video is not None:
            frames = read_video_frames(video, frame_size)[: len(ground)]
        return cls(ground, frames=frames, poses=poses, off_track=off)

    # ------------------------------------------------------------------ Robot protocol
    def _check(self) -> int:
        if self.cursor >= len(self._ground):
            raise ReplayFinished(f"the replayed log has only {len(self._ground)} steps")
        return self.cursor

    def read_ground(self) -> NDArray[np.float64]:
        """The recorded ground sensors of the current step, ``(1, n)``."""
        return self._ground[self._check()][None, :].copy()

    @property
    def has_frames(self) -> bool:
        """Whether the recording holds camera frames (a camera run recorded with its frames)."""
        return self._frames is not None

    def grab_frame(self) -> NDArray[np.float64] | None:
        """The recorded frame of the current step ``(1, H, W)``, or None without frames."""
        if self._frames is None:
            return None
        return self._frames[self._check()][None].copy()

    def set_wheel_speeds(self, left: ArrayLike, right: ArrayLike) -> None:
        """Record the command and move on to the next recorded step."""
        self._check()
        self.commands.append((float(np.ravel(left)[0]), float(np.ravel(right)[0])))
        self.cursor += 1

    @property
    def pose(self) -> NDArray[np.float64] | None:
        """The recorded pose of the current step ``(1, 3)``, if the log has one."""
        if self._poses is None or self.cursor >= len(self._poses):
            return None
        return self._poses[self.cursor][None].copy()

    @property
    def off_track(self) -> NDArray[np.bool_] | None:
        """The recorded off-track flag of the current step ``(1,)``, if logged."""
        if self._off is None or self.cursor >= len(self._off):
            return None
        return self._off[self.cursor : self.cursor + 1].copy()


def replay_run(run_dir: str | Path, steps: int | None = None) -> tuple[Any, dict[str, Any]]:
    """Re-run the agent of a recorded run on its recorded sensors (and camera frames).

    The run folder must hold ``config.json`` and a trace recorded with ``record_ground=True``
    (``sarlearn follow --record-sensors``). The agent is built from the folder's config and
    seed exactly as the run built it, so it starts from the same network; fed the same
    sensors it sends the same wheel commands.

    Args:
        run_dir: the run folder.
        steps: steps to replay (default: every recorded step).

    Returns:
        ``(loop, records)``: the :class:`~sarlearn.loop.ClosedLoop` driving the
        :class:`ReplayRobot` (its ``robot.commands`` are the wheel commands sent) and the
        records of :meth:`~sarlearn.loop.ClosedLoop.run`.
    """
    from sarlearn.loop import ClosedLoop
    from sarlearn.runs.run import load_run_config

    cfg = load_run_config(run_dir)
    robot = ReplayRobot.from_trace(run_dir)
    if cfg.world.inputs == "camera" and not robot.has_frames:
        raise ValueError(f"{run_dir} is a camera run without recorded frames (frames.npy)")
    loop = ClosedLoop.from_config(cfg, robot=robot)
    n = len(robot) if steps is None else min(int(steps), len(robot))
    return loop, loop.run(n)


def read_video_frames(path: str | Path, size: tuple[int, int] | None = None) -> NDArray[np.float64]:
    """Every frame of a video as darkness ``(T, H, W)``."""
    import imageio.v2 as imageio

    reader = imageio.get_reader(str(path))
    try:
        return np.stack([camera_darkness(f, size) for f in reader])
    finally:
        reader.close()


__all__ = ["ReplayFinished", "ReplayRobot", "read_video_frames", "replay_run", "to_darkness"]
