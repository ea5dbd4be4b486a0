"""Saving and loading a network together with its learning rule's state (one .npz file).

save_learner("ckpt.npz", net, rule)
net, rule = load_learner("ckpt.npz")     # continues exactly where it stopped
"""

from __future__ import annotations

import json
from pathlib import Path

from sarlearn.config import ConfigError
from sarlearn.stages.network.network import Network, load_npz, save_npz
from sarlearn.stages.rules.base import Array, LearningRule

_RULE = "rule/"


def rule_from_state(state: dict[str, Array]) -> LearningRule:
    """Rebuild a rule (of the right class) from its :meth:`LearningRule.state_dict`."""
    from sarlearn.stages.rules import make_rule

    if "config" not in state:
        raise ConfigError("not a saved learning rule state (no 'config' entry)")
    rule = make_rule(json.loads(str(state["config"]))["name"])
    rule.load_state_dict(state)
    return rule


def save_learner(path: str | Path, net: Network, rule: LearningRule) -> None:
    """Write network and rule state to one .npz file at ``path`` (atomically)."""
    arrays = net.to_arrays()
    arrays.update({_RULE + k: v for k, v in rule.state_dict().items()})
    save_npz(path, arrays)


def load_learner(path: str | Path) -> tuple[Network, LearningRule]:
    """Read what :func:`save_learner` wrote: the network and its (bound) rule."""
    arrays = load_npz(path)
    rule_state = {k.removeprefix(_RULE): v for k, v in arrays.items() if k.startswith(_RULE)}
    if not rule_state:
        raise ConfigError(f"{path} holds no learning rule state (saved with Network.save?)")
    net = Network.from_arrays({k: v for k, v in arrays.items() if not k.startswith(_RULE)})
    rule = rule_from_state(rule_state)
    rule.bind(net)  # a no-op when the saved state matches the network's sizes
    return net, rule


__all__ = ["load_learner", "rule_from_state", "save_learner"]
