"""The population behind both environments: ``N`` robots, their observations and rewards.

:class:`LineFollowerCore` holds the world (the readable :class:`~sarlearn.stages.world.SimWorld` or
the compiled :class:`~sarlearn.stages.world.compiled_world.CompiledWorld`), the optional filter
bank, the step counters and the random start poses, and turns actions into ``(obs, reward,
terminated, truncated, info)`` for all robots at once. The single environment is this core with
``N = 1`` and the numpy world; the vector environment is the same core with ``N`` robots, so the
two give the same numbers by construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import WorldConfig
from sarlearn.errors import ConfigError, NonFiniteError, ShapeError
from sarlearn.gym.options import EnvOptions
from sarlearn.stages.filters.bank import make_filter_bank
from sarlearn.stages.perception.perception import predictors_of
from sarlearn.stages.world.camera import PinholeCamera
from sarlearn.stages.world.sim import SimWorld
from sarlearn.stages.world.start import centreline_start, image_starts
from sarlearn.stages.world.track import Track
from sarlearn.stages.world.tracks import load_track

#: Candidate start poses precomputed for image tracks (their line analysis is slow); a reset
#: picks one of them with the environment's own generator.
N_IMAGE_STARTS = 32

BACKENDS = ("numpy", "compiled")


def load_env_track(cfg: WorldConfig) -> Track:
    """The track of ``cfg`` (a built-in name or an image path)."""
    return load_track(cfg.track, cfg.arena, cfg.track_seed, cfg.resolution, cfg.line_width)


_STARTS: dict[tuple[Any, ...], NDArray[np.float64]] = {}


def _image_starts(cfg: WorldConfig) -> NDArray[np.float64]:
    """``(N_IMAGE_STARTS, 3)`` candidate starts on an image track, computed once per file
    version (so ``SyncVectorEnv`` over many copies analyses the image once)."""
    path = Path(cfg.track).resolve()
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size, cfg.arena)
    if key not in _STARTS:
        track = load_env_track(cfg)
        _STARTS[key] = image_starts(track, N_IMAGE_STARTS, rng=np.random.default_rng(0))
    return _STARTS[key]


class LineFollowerCore:
    """``N`` line-following robots stepped together.

    Args:
        options: validated settings (:func:`sarlearn.gym.options.make_options`).
        n: number of robots ``N``.
        backend: ``"numpy"`` (the reference world) or ``"compiled"`` (one numba call per step).
        track: a loaded track to share (else loaded from ``options.world``).
    """

    def __init__(
        self,
        options: EnvOptions,
        n: int = 1,
        backend: str = "numpy",
        track: Track | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ConfigError(f"backend={backend!r} is not one of {', '.join(map(repr, BACKENDS))}")
        if n < 1:
            raise ConfigError(f"the number of environments must be >= 1, got {n}")
        if options.world.realism.active:
            # The environments render and step the world themselves (camera, compiled
            # backend), outside the simulator's realism: refuse rather than ignore it.
            raise ConfigError(
                "world.realism is not simulated by the gym environments; switch it off "
                "(sarlearn follow runs it)"
            )
        self.options = o = options
        self.n = int(n)
        self.backend = backend
        self.track = track if track is not None else load_env_track(o.world)
        if backend == "numpy":
            # A placeholder start: the core places its robots itself, so the world need not
            # analyse an image's line for its own start (slow on large images).
            cfg = o.world.model_copy(update={"start": (0.0, 0.0, 0.0)})
            self.world: Any = SimWorld(cfg, population=n, track=self.track, camera=False)
        else:
            from sarlearn.stages.world.compiled_world import CompiledWorld

            self.world = CompiledWorld(o.world, population=n, track=self.track)
        self.camera = PinholeCamera.from_config(o.world.camera) if o.observation != "rows" else None
        self.bank = (
            make_filter_bank(o.filters, n_predictors=o.n_predictors, population=n)
            if o.filtered
            else None
        )
        self.steps = np.zeros(self.n, dtype=np.int64)
        #: Robots whose episode ended off track and that were not placed again since.
        self.finished = np.zeros(self.n, dtype=np.bool_)
        self._last_obs: NDArray[np.floating] | None = None
        self._starts = None if self.track.centreline is not None else _image_starts(o.world)
        self._fixed_start = (
            np.asarray(o.world.start, dtype=np.float64) if o.world.start is not None else None
        )

    # ------------------------------------------------------------------ world access
    @property
    def pose(self) -> NDArray[np.float64]:
        """``(N, 3)`` x, y, heading."""
        return self.world.pose

    def ground(self) -> NDArray[np.float64]:
        """``(N, n_sensors)`` the current readings (reflex pair first)."""
        if self.backend == "numpy":
            return self.world.state_dict()["ground"]
        return self.world.ground

    def lost(self) -> NDArray[np.int64]:
        """``(N,)`` consecutive steps in which no sensor saw the line."""
        if self.backend == "numpy":
            return self.world.state_dict()["lost"]
        return self.world.lost

    def error(self) -> NDArray[np.float64]:
        """``(N,)`` reflex error ``e`` at the current poses."""
        g = self.ground()
        return self.options.world.error_gain * (g[:, 0] - g[:, 1])

    def frames(self) -> NDArray[np.float64]:
        """``(N, H, W)`` camera darkness at the current poses."""
        assert self.camera is not None
        return self.camera.render(self.track, self.world.pose)

    # ------------------------------------------------------------------ episode
    def start_pose(self, rng: np.random.Generator) -> NDArray[np.float64]:
        """A start pose ``(3,)`` on the line drawn with ``rng`` (or the configured / automatic
        one when ``random_start`` is off)."""
        if self._fixed_start is not None:
            return self._fixed_start.copy()
        line = self.track.centreline
        if line is not None:
            return centreline_start(line, rng if self.options.random_start else None)
        assert self._starts is not None
        i = int(rng.integers(len(self._starts))) if self.options.random_start else 0
        return self._starts[i].copy()

    def place(self, rows: NDArray[np.int64], poses: NDArray[np.float64]) -> None:
        """Put robots ``rows`` ``(k,)`` at ``poses`` ``(k, 3)`` as at the start of an episode:
        step counters, lost-line counters and filter states of ``rows`` cleared."""
        if self.backend == "numpy":
            before = self.world.state_dict()
            pose = before["pose"]
            pose[rows] = poses
            self.world.pose = pose  # re-reads every sensor and clears every counter
            after = self.world.state_dict()
            lost = before["lost"]
            lost[rows] = 0
            after["lost"] = lost
            self.world.load_state_dict(after)
        else:
            self.world.place(rows, poses)
        self.steps[rows] = 0
        self.finished[rows] = False
        if self.bank is not None:
            state = self.bank.state_dict()
            for a in state.values():
                a[rows] = 0.0
            self.bank.load_state_dict(state)

    def reset(
        self, rows: NDArray[np.int64], rngs: list[np.random.Generator]
    ) -> NDArray[np.floating]:
        """Start robots ``rows`` afresh at poses drawn from their generators (one each);
        returns the ``(N, ...)`` observations (only the entries of ``rows`` are new)."""
        return self.restart_at(rows, np.stack([self.start_pose(r) for r in rngs]))

    def restart_at(self, rows: NDArray[np.int64], poses: NDArray[np.float64]) -> NDArray:
        """Start robots ``rows`` ``(k,)`` afresh at ``poses`` ``(k, 3)``; returns the
        ``(N, ...)`` observations (only the entries of ``rows`` are new)."""
        self.place(rows, poses)
        obs = self.observe(rows)
        self._last_obs = obs.copy()
        return obs

    def step(
        self, actions: NDArray[np.floating], rows: NDArray[np.int64] | None = None
    ) -> tuple[NDArray, NDArray, NDArray, NDArray, dict[str, NDArray]]:
        """Step robots ``rows`` (default all) with actions ``(N,)`` in [-1, 1] (clipped).

        Returns ``obs (N, ...)`` and ``reward, terminated, truncated (N,)`` plus ``info``
        arrays ``(N,)``; entries of robots not in ``rows`` are meaningless.

        A robot stepped again after its episode ended off track (Gymnasium leaves this
        undefined and asks for a reset) stays where it is: ``terminated`` again, reward 0, the
        same observation. So the off-track penalty is paid once, never as a stream.
        """
        o = self.options
        a = np.asarray(actions, dtype=np.float64).reshape(-1)
        if a.shape != (self.n,):
            raise ShapeError(f"actions must have {self.n} entries, got shape {a.shape}")
        if not np.isfinite(a).all():
            raise NonFiniteError("the action contains NaN or infinite values")
        y = o.action_scale * np.clip(a, -1.0, 1.0)
        idx = np.arange(self.n) if rows is None else rows
        ended = self.finished[idx]
        if ended.any():
            idx = idx[~ended]  # those wait where they stopped
        if len(idx) and self.backend == "numpy":
            self._numpy_step(y, idx)
        elif len(idx):
            self.world.step(y, reflex=o.reflex, rows=idx)
        self.steps[idx] += 1
        e = self.error()
        lost = self.lost().copy()
        terminated = self.world.off_track.copy()
        truncated = (self.steps >= o.max_steps) & ~terminated
        reward = o.rewards(e, lost)
        reward = np.where(terminated, reward + o.penalty(self.steps), reward)
        gone = self.finished.copy()
        reward[gone] = 0.0  # ended before this step: nothing more to pay
        self.finished[idx] |= terminated[idx]
        obs = self.observe(idx)
        if gone.any() and self._last_obs is not None:
            obs[gone] = self._last_obs[gone]
        self._last_obs = obs.copy()
        info = {"error": e, "steering": y, "lost_steps": lost}
        return obs, reward, terminated, truncated, info

    def _numpy_step(self, y: NDArray[np.float64], idx: NDArray[np.int64]) -> None:
        w = self.world
        if len(idx) == self.n:
            if self.options.reflex:
                w.step(y)
            else:
                u = self.options.world.net_gain * y
                w.set_wheel_speeds(self.options.world.speed - u, self.options.world.speed + u)
            return
        # Some robots wait (vector autoreset): step everyone, then put the others back.
        before = w.state_dict()
        self._numpy_step(y, np.arange(self.n))
        keep = np.setdiff1d(np.arange(self.n), idx)
        after = w.state_dict()
        for key in ("pose", "lost", "ground"):
            after[key][keep] = before[key][keep]
        w.load_state_dict(after)

    def observe(self, rows: NDArray[np.int64]) -> NDArray[np.floating]:
        """The observations ``(N, ...)`` at the current poses; the filter banks of ``rows``
        advance one sample (call once per step or reset of those robots)."""
        o = self.options
        if o.observation == "frame":
            out = self.frames()
        else:
            frame = self.frames() if o.observation == "camera" else None
            x = predictors_of(o.world, self.ground(), frame, inputs=o.observation)
            if self.bank is not None:
                # Only the stepped robots' filters advance; the others keep their state.
                partial = len(rows) < self.n
                state = self.bank.state_dict() if partial else {}
                y = self.bank.filter(x)
                if partial:
                    keep = np.setdiff1d(np.arange(self.n), rows)
                    new = self.bank.state_dict()
                    for k in new:
                        new[k][keep] = state[k][keep]
                    self.bank.load_state_dict(new)
                x = y
            if o.observe_error:
                e = self.error() / (abs(o.world.error_gain) or 1.0)
                x = np.concatenate([x, np.clip(e, -1.0, 1.0)[:, None]], axis=1)
            out = x
        return np.asarray(out, dtype=o.dtype)


__all__ = ["BACKENDS", "N_IMAGE_STARTS", "LineFollowerCore", "load_env_track"]
