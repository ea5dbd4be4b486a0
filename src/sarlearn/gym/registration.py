"""Registration of the environments with Gymnasium, without importing gymnasium early.

Gymnasium's registry takes entry points as strings, so registering never imports the
environments themselves. ``import sarlearn`` calls :func:`register_when_imported`: if gymnasium
is already imported the id is registered at once; otherwise a one-shot import hook registers
it right after gymnasium's own import, whenever that happens. So ``import sarlearn`` does not
pay for gymnasium, and ``gym.make("sarlearn/LineFollower-v0")`` works in either import order.
(``gym.make("sarlearn:sarlearn/LineFollower-v0")`` also works without importing sarlearn.)
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType
from typing import Any

from sarlearn.errors import SarlearnError

ENV_ID = "sarlearn/LineFollower-v0"
#: The deep-RL baselines' settings: filtered predictor rows (720 inputs, as SaR sees them), the
#: reflex plus the policy's steering, reward ``-|e| / error_gain`` in [-1, 0], 1,000-step
#: episodes.
FILTERED_ENV_ID = "sarlearn/LineFollowerFiltered-v0"

#: Episode limits (Gymnasium's ``max_episode_steps``; the environments' ``max_steps`` follows).
MAX_EPISODE_STEPS = {ENV_ID: 5000, FILTERED_ENV_ID: 1000}
#: Arguments of the filtered id (any of them can still be overridden in ``make``).
FILTERED_KWARGS = {"filtered": True, "action": "reflex", "reward_scale": 0.02}


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
    """Register ``sarlearn/LineFollower-v0`` and ``sarlearn/LineFollowerFiltered-v0`` now
    (idempotent). Returns False without gymnasium."""
    try:
        from gymnasium.envs.registration import register, registry
    except ImportError:
        return False
    for env_id, kwargs in ((ENV_ID, {}), (FILTERED_ENV_ID, FILTERED_KWARGS)):
        if env_id not in registry:
            register(
                id=env_id,
                entry_point="sarlearn.gym.env:LineFollowerEnv",
                vector_entry_point="sarlearn.gym.vector:LineFollowerVectorEnv",
                max_episode_steps=MAX_EPISODE_STEPS[env_id],
                # The environment truncates itself at max_steps; the TimeLimit agrees.
                kwargs={**kwargs, "max_steps": MAX_EPISODE_STEPS[env_id]} if kwargs else {},
                nondeterministic=False,
            )
    return True


class _AfterGymnasiumImport(importlib.abc.MetaPathFinder):
    """One-shot finder: lets the normal finders locate gymnasium, then registers after its
    module has executed."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "gymnasium":
            return None
        _remove_hook()
        spec = importlib.util.find_spec(name)
        loader = None if spec is None else spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            # A broken registration must never break importing gymnasium.
            with contextlib.suppress(Exception):
                register_envs()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


_HOOK = _AfterGymnasiumImport()


def _remove_hook() -> None:
    if _HOOK in sys.meta_path:
        sys.meta_path.remove(_HOOK)


def register_when_imported() -> None:
    """Register now if gymnasium is imported, else as soon as it is (nothing if it is not
    installed: the hook then never fires)."""
    if "gymnasium" in sys.modules:
        register_envs()
    elif _HOOK not in sys.meta_path and importlib.util.find_spec("gymnasium") is not None:
        sys.meta_path.insert(0, _HOOK)


__all__ = [
    "ENV_ID",
    "FILTERED_ENV_ID",
    "FILTERED_KWARGS",
    "MAX_EPISODE_STEPS",
    "MissingExtraError",
    "register_envs",
    "register_when_imported",
    "require_gymnasium",
]
