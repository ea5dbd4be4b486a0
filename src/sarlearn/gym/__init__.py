"""Gymnasium environments of the line-following robot (optional extra ``sarlearn[gym]``).

``import sarlearn`` registers ``sarlearn/LineFollower-v0`` when gymnasium is installed (by an
entry-point string, once gymnasium is imported: ``import sarlearn`` itself does not import
gymnasium, and the environment modules load only on ``make``)::

    import gymnasium as gym
    import sarlearn

    env = gym.make("sarlearn/LineFollower-v0", track="curvy")
    envs = gym.make_vec(
        "sarlearn/LineFollower-v0", num_envs=16, vectorization_mode="vector_entry_point"
    )

- :class:`LineFollowerEnv` (:mod:`sarlearn.gym.env`): one robot;
- :class:`LineFollowerVectorEnv` (:mod:`sarlearn.gym.vector`): ``N`` robots stepped by one
  compiled call (Gymnasium's ``VectorEnv`` API);
- :func:`make_sb3_vec_env` (:mod:`sarlearn.gym.sb3`): the vector environment as a
  Stable-Baselines3 ``VecEnv`` (extra ``sarlearn[rl]``);
- :mod:`sarlearn.gym.baseline`: PPO and SAC baselines (extra ``sarlearn[rl]``).

Details: docs/gym.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sarlearn.gym.registration import (
    ENV_ID,
    FILTERED_ENV_ID,
    register_envs,
    register_when_imported,
)

if TYPE_CHECKING:
    from sarlearn.gym.env import LineFollowerEnv
    from sarlearn.gym.sb3 import LineFollowerSB3VecEnv, make_sb3_vec_env
    from sarlearn.gym.vector import LineFollowerVectorEnv

_LAZY = {
    "LineFollowerEnv": "sarlearn.gym.env",
    "LineFollowerVectorEnv": "sarlearn.gym.vector",
    "LineFollowerSB3VecEnv": "sarlearn.gym.sb3",
    "make_sb3_vec_env": "sarlearn.gym.sb3",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        from sarlearn.gym.registration import require_gymnasium

        require_gymnasium()
        if _LAZY[name] == "sarlearn.gym.sb3":
            from sarlearn.gym.baseline import require_rl

            require_rl()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sarlearn.gym' has no attribute {name!r}")


__all__ = [
    "ENV_ID",
    "FILTERED_ENV_ID",
    "LineFollowerEnv",
    "LineFollowerSB3VecEnv",
    "LineFollowerVectorEnv",
    "make_sb3_vec_env",
    "register_envs",
    "register_when_imported",
]
