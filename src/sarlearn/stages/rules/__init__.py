"""Learning rules: how the teaching signal travels back and how big each step is.

    rule = make_rule("sar", lr=1e-2, rng=np.random.default_rng(0))   # lr=None: the recipe's
    rule.bind(net)
    net.forward(x)
    rule.step(net, error)            # error: (P,) or (P, n_out)

Rule names (``RULE_NAMES``) and what each rule is (where the sign is taken, what carries the
signal back, whether the relevance applies, its default rate) are declared once, in
:mod:`sarlearn.recipes`. The maths of each is in its module docstring and in
docs/learning-rules.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

import numpy as np

from sarlearn.config import ConfigError, RuleConfig
from sarlearn.recipes import RECIPES, RULE_NAMES
from sarlearn.stages.network.initialisation import RngLike
from sarlearn.stages.rules.alignment import DirectFeedbackAlignment, FeedbackAlignment, SignSymmetry
from sarlearn.stages.rules.backprop import GDM
from sarlearn.stages.rules.base import LearningRule, RuleOptions, fan_in_lr_scale
from sarlearn.stages.rules.checkpoint import load_learner, rule_from_state, save_learner
from sarlearn.stages.rules.relevance import Relevance
from sarlearn.stages.rules.sar import RelevanceOnly, SaR, SaRExact, SaRLocal, SignOnly

_CLASSES: dict[str, type[LearningRule]] = {
    cls.name: cls
    for cls in (
        GDM,
        SaR,
        SaRLocal,
        SaRExact,
        SignOnly,
        RelevanceOnly,
        FeedbackAlignment,
        DirectFeedbackAlignment,
        SignSymmetry,
    )
}
if set(_CLASSES) != set(RULE_NAMES):  # every recipe has its numpy statement, and vice versa
    raise ImportError(f"rule classes {sorted(_CLASSES)} do not match the recipes {RULE_NAMES}")
RULES: dict[str, type[LearningRule]] = {name: _CLASSES[name] for name in RULE_NAMES}
"""Registry: rule name -> class, in the order of :data:`sarlearn.recipes.RULE_NAMES`."""


def make_rule(name: str, lr: float | None = None, **options: Unpack[RuleOptions]) -> LearningRule:
    """Build a learning rule by name: ``lr`` (None = the recipe's default rate) and the
    options of :class:`~sarlearn.stages.rules.base.RuleOptions`, passed on to the rule's class.

    Raises:
        ConfigError: unknown name (the message lists the known ones), unknown option or bad
            value (the message names the field).
    """
    try:
        cls = RULES[name]
    except KeyError:
        raise ConfigError(f"unknown rule {name!r}; known rules: {', '.join(RULE_NAMES)}") from None
    return cls(lr, **options)


def make_rule_from_config(
    cfg: RuleConfig,
    rng: RngLike | Sequence[np.random.Generator] = None,
    seeds: Sequence[int] | None = None,
    readout: Sequence[float] | None = None,
) -> LearningRule:
    """Build the rule ``cfg`` describes; rng/seeds seed its feedback matrices (fa, dfa).

    ``readout`` (the network's readout coefficients) is needed for ``output_share="readout"``.
    """
    output_scale = None
    if cfg.output_share == "readout":
        if readout is None:
            raise ConfigError("output_share='readout' needs the network's readout coefficients")
        output_scale = readout_share(readout)
    return make_rule(
        cfg.name,
        cfg.learning_rate,
        layer_lr_scale=cfg.layer_lr_scale,
        relevance=cfg.relevance,
        rng=rng,
        seeds=seeds,
        output_scale=output_scale,
        **cfg.step_options,
    )


def readout_share(readout: Sequence[float]) -> list[float]:
    """Each output's share of the steering: ``|c_k| / max_k |c_k|`` ([1, 2] -> [0.5, 1])."""
    c = [abs(float(v)) for v in readout]
    top = max(c)
    if not top > 0:
        raise ConfigError(f"readout {list(readout)} is all zero: the network cannot steer")
    inv = 1.0 / top
    return [v * inv for v in c]


__all__ = [
    "GDM",
    "RECIPES",
    "RULES",
    "RULE_NAMES",
    "DirectFeedbackAlignment",
    "FeedbackAlignment",
    "LearningRule",
    "Relevance",
    "RelevanceOnly",
    "RuleOptions",
    "SaR",
    "SaRExact",
    "SaRLocal",
    "SignOnly",
    "SignSymmetry",
    "fan_in_lr_scale",
    "load_learner",
    "make_rule",
    "make_rule_from_config",
    "readout_share",
    "rule_from_state",
    "save_learner",
]
