"""The engine's vector environment as a Stable-Baselines3 ``VecEnv`` (extra ``sarlearn[rl]``).

SB3 does not accept Gymnasium's ``VectorEnv``; its own vector environments (``DummyVecEnv``,
``SubprocVecEnv``) step one Python environment per robot. :func:`make_sb3_vec_env` wraps
:class:`~sarlearn.gym.vector.LineFollowerVectorEnv` instead, so all robots step in one compiled
call::

    from stable_baselines3 import PPO
    from sarlearn.gym import make_sb3_vec_env

    venv = make_sb3_vec_env(16, track="curvy", filtered=True, reward_scale=0.02, seed=0)
    PPO("MlpPolicy", venv).learn(20_000)

It follows SB3's ``VecEnv`` contract: ``step_async`` / ``step_wait``; finished robots reset
in the same step, their last observation in ``info["terminal_observation"]`` and
``info["TimeLimit.truncated"]`` set on truncation; ``seed(k)`` seeds robot ``i`` with ``k + i``
at the next ``reset()`` (as ``DummyVecEnv``); ``render()`` tiles one picture per robot. Robot
``i`` drives exactly as ``DummyVecEnv`` over single environments seeded ``k + i`` would
(tested step for step). The robots share one engine, so ``get_attr`` / ``env_method`` read or
call the shared vector environment and return its answer once per requested index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from numpy.typing import NDArray
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from sarlearn.errors import ConfigError
from sarlearn.gym.vector import LineFollowerVectorEnv

#: Per-robot info entries copied into SB3's per-robot info dicts.
INFO_KEYS = ("error", "steering", "lost_steps", "step")


class LineFollowerSB3VecEnv(VecEnv):
    """``num_envs`` robots in one :class:`LineFollowerVectorEnv`, behind SB3's ``VecEnv`` API.

    Args:
        num_envs: number of robots.
        backend: ``"compiled"`` (one numba call per step) or ``"numpy"``.
        render_mode: None or ``"rgb_array"``.
        **env_kwargs: the arguments of :class:`~sarlearn.gym.env.LineFollowerEnv`.
    """

    def __init__(
        self,
        num_envs: int,
        *,
        backend: str = "compiled",
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        self.venv = LineFollowerVectorEnv(
            num_envs,
            backend=backend,
            autoreset_mode=AutoresetMode.SAME_STEP,
            render_mode=render_mode,
            **env_kwargs,
        )
        self._actions: NDArray[np.floating] | None = None
        self._obs: NDArray[np.floating] | None = None
        self._renderer: Any = None
        super().__init__(
            self.venv.num_envs, self.venv.single_observation_space, self.venv.single_action_space
        )

    # ------------------------------------------------------------------ stepping
    def reset(self) -> NDArray[np.floating]:
        """Reset every robot; uses (once) the seeds of :meth:`seed` and options of
        :meth:`set_options` (``{"pose": (x, y, heading)}`` places a robot)."""
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        obs, info = self.venv.reset(seed=seeds)
        poses = [(i, o["pose"]) for i, o in enumerate(self._options) if o and "pose" in o]
        unknown = {k for o in self._options if o for k in o} - {"pose"}
        if unknown:
            raise ConfigError(f"reset options {sorted(unknown)} unknown; only 'pose' is")
        if poses:
            rows = np.array([i for i, _ in poses], dtype=np.int64)
            p = np.asarray([q for _, q in poses], dtype=np.float64).reshape(len(rows), 3)
            obs = self.venv.core.restart_at(rows, p)
        self.reset_infos = self._split(info)
        self._reset_seeds()
        self._reset_options()
        self._obs = obs
        return obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        """Remember ``actions`` ``(num_envs, 1)`` for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every robot: ``obs, rewards (float32), dones, infos`` (a list of dicts)."""
        if self._actions is None:
            raise ConfigError("step_wait() without step_async(actions)")
        obs, reward, term, trunc, info = self.venv.step(self._actions)
        self._actions = None
        done = term | trunc
        infos = self._split(info)
        if done.any():
            finals = info["final_obs"]
            for i in np.flatnonzero(done):
                infos[i]["terminal_observation"] = finals[i]
                infos[i]["TimeLimit.truncated"] = bool(trunc[i] and not term[i])
                self.reset_infos[i] = {"error": float(self.venv.core.error()[i])}
        self._obs = obs
        return obs, reward.astype(np.float32), done, infos

    def _split(self, info: dict[str, Any]) -> list[dict[str, Any]]:
        cols = [(k, info[k].tolist()) for k in INFO_KEYS if k in info]
        return [{k: v[i] for k, v in cols} for i in range(self.num_envs)]

    def close(self) -> None:
        """Release the environment (nothing to free: one process, no subprocesses)."""
        self.venv.close()

    # ------------------------------------------------------------------ seeding, rendering
    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Robot ``i`` takes ``seed + i`` at the next :meth:`reset` (SB3's convention)."""
        return super().seed(seed)

    def get_images(self) -> Sequence[np.ndarray | None]:
        """One ``(H, W, 3)`` uint8 picture per robot (SB3's ``render`` tiles them)."""
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        if self._renderer is None:
            from sarlearn.stages.world.render import FrameRenderer

            core = self.venv.core
            self._renderer = FrameRenderer(core.track, size=400, sensors=core.world.sensors)
        return [self._renderer.frame(p) for p in self.venv.core.pose]

    # ------------------------------------------------------------------ attributes
    def _indices(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The attribute of the shared vector environment, once per index (``np_random``:
        each robot's generator)."""
        rows = self._indices(indices)
        if attr_name == "np_random":
            gens = self.venv.np_random
            return [gens[i] for i in rows]
        if attr_name == "render_mode":
            return [self.venv.render_mode] * len(rows)
        value = getattr(self.venv, attr_name)
        return [value] * len(rows)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the shared vector environment (all robots only)."""
        rows = self._indices(indices)
        if len(rows) != self.num_envs:
            raise ConfigError(
                f"set_attr({attr_name!r}) on some robots only: they share one engine, "
                "so attributes can only be set for all of them"
            )
        setattr(self.venv, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the shared vector environment once; its result once per index."""
        rows = self._indices(indices)
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result] * len(rows)

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        """No robot is wrapped in a Gymnasium wrapper (use ``VecMonitor`` for statistics)."""
        return [False] * len(self._indices(indices))

    @property
    def core(self) -> Any:
        """The shared :class:`~sarlearn.gym.core.LineFollowerCore` (poses, errors)."""
        return self.venv.core


def make_sb3_vec_env(
    num_envs: int,
    *,
    seed: int | None = None,
    backend: str = "compiled",
    render_mode: str | None = None,
    **env_kwargs: Any,
) -> LineFollowerSB3VecEnv:
    """SB3 ``VecEnv`` of ``num_envs`` robots stepped by one compiled call.

    Args:
        num_envs: number of robots.
        seed: robot ``i`` is seeded ``seed + i`` at the first reset (as SB3's ``make_vec_env``).
        backend: ``"compiled"`` or ``"numpy"`` (the reference world).
        render_mode: None or ``"rgb_array"``.
        **env_kwargs: the arguments of :class:`~sarlearn.gym.env.LineFollowerEnv` (``track``,
            ``observation``, ``filtered``, ``reward_scale``, ``max_steps``, ...).

    Raises:
        ConfigError: a bad argument (named).
    """
    venv = LineFollowerSB3VecEnv(num_envs, backend=backend, render_mode=render_mode, **env_kwargs)
    if seed is not None:
        venv.seed(seed)
    return venv


__all__ = ["INFO_KEYS", "LineFollowerSB3VecEnv", "make_sb3_vec_env"]
