"""sarlearn: closed-loop deep learning with Sign and Relevance (SaR) learning.

The pieces a user needs most, importable from the top level::

    from sarlearn import ClosedLoopAgent, RunConfig, SimWorld

    cfg = RunConfig()                    # defaults: SaR, 10 hidden layers of 10, track curvy
    world = SimWorld(cfg.world_config)  # the world this run's rule expects
    agent = ClosedLoopAgent.from_config(cfg, n_predictors=world.n_predictors)
    for _ in range(2000):
        world.step(agent.step(*world.observe()))

``run_follow`` (one experiment with its output folder) and ``make_closed_loop`` (the compiled
engine) are loaded on first use, so ``import sarlearn`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sarlearn.agent import ClosedLoopAgent
from sarlearn.config import RunConfig
from sarlearn.stages.filters.bank import make_filter_bank
from sarlearn.stages.network.network import Network
from sarlearn.stages.rules import RULE_NAMES, make_rule
from sarlearn.stages.world.sim import SimWorld

if TYPE_CHECKING:
    from sarlearn.engine import make_closed_loop
    from sarlearn.runs.run import run_follow

# Gymnasium environment sarlearn/LineFollower-v0: registered (by entry-point strings) when
# gymnasium is installed, as soon as it is imported; see sarlearn.gym.registration.
from sarlearn.gym.registration import register_when_imported as _register_gym
from sarlearn.version import __version__ as __version__

_register_gym()

_LAZY = {
    "run_follow": "sarlearn.runs.run",
    "make_closed_loop": "sarlearn.engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'sarlearn' has no attribute {name!r}")


__all__ = [
    "RULE_NAMES",
    "ClosedLoopAgent",
    "Network",
    "RunConfig",
    "SimWorld",
    "make_closed_loop",
    "make_filter_bank",
    "make_rule",
    "run_follow",
]
