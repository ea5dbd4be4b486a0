"""``sarlearn/LineFollower-v0``: the line-following robot as a Gymnasium environment.

::

    import gymnasium as gym
    import sarlearn  # registers the environment

    env = gym.make("sarlearn/LineFollower-v0", track="curvy", observation="rows")
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())

The world, sensors and tracks are sarlearn's own (:class:`~sarlearn.stages.world.SimWorld`); what is
observed, how the action steers and what is rewarded are described in
:mod:`sarlearn.gym.options` and docs/gym.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from sarlearn.config import FilterConfig, WorldConfig
from sarlearn.gym.core import LineFollowerCore
from sarlearn.gym.options import EnvOptions, RewardFn, make_options


def observation_space(options: EnvOptions) -> spaces.Box:
    """The Box of one robot's observation."""
    lo, hi, shape = options.observation_bounds()
    return spaces.Box(
        low=lo.astype(options.dtype), high=hi.astype(options.dtype), shape=shape,
        dtype=options.dtype,
    )  # fmt: skip


def action_space(options: EnvOptions) -> spaces.Box:
    """``Box(-1, 1, (1,))``: the steering, scaled by ``action_scale``."""
    return spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=options.dtype)


class LineFollowerEnv(gym.Env):
    """One line-following robot (see docs/gym.md for every option).

    Args:
        track: a built-in track name (``sarlearn tracks``) or the path of a PNG/JPEG image.
        observation: ``"rows"`` (predictor rows), ``"camera"`` (camera predictors) or
            ``"frame"`` (the raw camera image).
        filtered: pass the predictors through the filter bank (``filters``), as SaR sees them.
        action: ``"reflex"`` (steering added to the reflex, the paper's setting) or ``"full"``
            (no reflex).
        action_scale: network steering ``y`` per unit of action (None: 1.5 with the reflex,
            ``error_gain / net_gain`` without).
        reward: ``"abs_error"`` (``-|e|``), ``"squared_error"``, ``"on_line"`` or a callable
            ``f(error, lost_steps)`` on ``(1,)`` arrays.
        reward_scale: multiplies every reward (and the default penalty).
        off_track_penalty: added to the reward of the step that ends an episode off track
            (None: ``-|error_gain|`` per step left until truncation).
        max_steps: truncate the episode after this many steps.
        random_start: start each episode at a random place on the line drawn from the
            environment's ``np_random`` (else the automatic start).
        observe_error: append the signed reflex error ``e / |error_gain|`` to the observation.
        world: :class:`~sarlearn.config.WorldConfig` or a dict of its fields (speed, gains,
            sensors, camera, ``off_track_after``, ...).
        filters: :class:`~sarlearn.config.FilterConfig` or a dict of its fields.
        dtype: of observations and actions (float32, as most RL libraries want, or float64).
        render_mode: None or ``"rgb_array"`` (a picture of the track, robot and recent path).

    Raises:
        ConfigError: an unknown track, observation, action or reward, or an impossible value;
            raised at construction, i.e. by ``gymnasium.make``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        track: str | Path = "curvy",
        *,
        observation: str = "rows",
        filtered: bool = False,
        action: str = "reflex",
        action_scale: float | None = None,
        reward: str | RewardFn = "abs_error",
        reward_scale: float = 1.0,
        off_track_penalty: float | None = None,
        max_steps: int = 5000,
        random_start: bool = True,
        observe_error: bool = False,
        world: WorldConfig | dict[str, Any] | None = None,
        filters: FilterConfig | dict[str, Any] | None = None,
        dtype: Any = np.float32,
        render_mode: str | None = None,
    ) -> None:
        from sarlearn.errors import ConfigError

        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r}: only None or 'rgb_array'")
        self.options = make_options(
            track,
            observation=observation,
            filtered=filtered,
            action=action,
            action_scale=action_scale,
            reward=reward,
            reward_scale=reward_scale,
            off_track_penalty=off_track_penalty,
            max_steps=max_steps,
            random_start=random_start,
            observe_error=observe_error,
            world=world,
            filters=filters,
            dtype=dtype,
        )
        self.render_mode = render_mode
        self.core = LineFollowerCore(self.options, n=1, backend="numpy")
        self.observation_space = observation_space(self.options)
        self.action_space = action_space(self.options)
        self._trail: list[NDArray[np.float64]] = []
        self._renderer: Any = None
        self._row = np.zeros(1, dtype=np.int64)
        self._warned = False

    @property
    def track(self) -> Any:
        """The :class:`~sarlearn.stages.world.Track` driven on."""
        return self.core.track

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[NDArray[np.floating], dict[str, Any]]:
        """Start a new episode (``options={"pose": (x, y, heading)}`` places the robot)."""
        super().reset(seed=seed)
        obs = self.core.reset(self._row, [self.np_random])
        if options and "pose" in options:
            self._place(options["pose"])
            obs = self.core.observe(self._row)
        self._trail = [self.core.pose[0]]
        return obs[0], self._info(self.core.error(), np.zeros(1), self.core.lost())

    def _place(self, pose: Any) -> None:
        from sarlearn.errors import ShapeError

        p = np.asarray(pose, dtype=np.float64)
        if p.shape != (3,) or not np.isfinite(p).all():
            raise ShapeError(f"reset options 'pose' must be finite (x, y, heading), got {pose!r}")
        self.core.place(self._row, p[None])

    def step(self, action: Any) -> tuple[NDArray[np.floating], float, bool, bool, dict[str, Any]]:
        """One control cycle (``dt`` of simulated time).

        After ``terminated`` Gymnasium expects a reset; stepping on anyway warns once and
        returns the same observation, reward 0 and ``terminated`` (no second penalty).
        """
        if self.core.finished[0] and not self._warned:
            gym.logger.warn("step() after terminated=True: call reset(); the robot stays put")
            self._warned = True
        obs, reward, terminated, truncated, info = self.core.step(np.asarray(action).reshape(1))
        self._trail.append(self.core.pose[0])
        if len(self._trail) > 400:
            del self._trail[:-400]
        return (
            obs[0],
            float(reward[0]),
            bool(terminated[0]),
            bool(truncated[0]),
            self._info(info["error"], info["steering"], info["lost_steps"]),
        )

    def _info(self, e: NDArray, y: NDArray, lost: NDArray) -> dict[str, Any]:
        return {
            "error": float(e[0]),
            "steering": float(y[0]),
            "lost_steps": int(lost[0]),
            "step": int(self.core.steps[0]),
            "pose": self.core.pose[0],
        }

    def render(self) -> NDArray[np.uint8] | None:
        """``(H, 400, 3)`` uint8: track, robot with its sensors and the last 400 steps' path;
        ``H`` follows the arena's aspect (400 on square tracks, 228 on ``wide``)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode='rgb_array'")
            return None
        if self._renderer is None:
            from sarlearn.stages.world.render import FrameRenderer

            self._renderer = FrameRenderer(
                self.core.track, size=400, sensors=self.core.world.sensors, camera=self.core.camera
            )
        view = self.core.frames() if self.core.camera is not None else None
        trail = np.stack(self._trail) if self._trail else None
        return self._renderer.frame(self.core.pose, trail=trail, view=view)


__all__ = ["LineFollowerEnv", "action_space", "observation_space"]
