"""Registration of the environments with Gymnasium (no import of the environments themselves).

Gymnasium's registry takes entry points as strings, so registering costs only the import of
``gymnasium`` (done once by ``import sarlearn`` when gymnasium is installed, and also by
gymnasium's own plugin hook, the ``gymnasium.envs`` entry point in pyproject.toml).
"""

from __future__ import annotations

from sarlearn.errors import SarlearnError

ENV_ID = "sarlearn/LineFollower-v0"


class MissingExtraError(SarlearnError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require_gymnasium() -> None:
    """Raise :class:`MissingExtraError` naming ``sarlearn[gym]`` when gymnasium is missing."""
    try:
        import gymnasium  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "the Gymnasium environments need gymnasium: pip install 'sarlearn[gym]'"
        ) from None


def register_envs() -> bool:
    """Register ``sarlearn/LineFollower-v0`` (idempotent). Returns False without gymnasium."""
    try:
        from gymnasium.envs.registration import register, registry
    except ImportError:
        return False
    if ENV_ID not in registry:
        register(
            id=ENV_ID,
            entry_point="sarlearn.gym.env:LineFollowerEnv",
            vector_entry_point="sarlearn.gym.vector:LineFollowerVectorEnv",
            nondeterministic=False,
        )
    return True


__all__ = ["ENV_ID", "MissingExtraError", "register_envs", "require_gymnasium"]
