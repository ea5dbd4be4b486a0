"""ClosedLoopAgent: construction from config, one step, learning, reflex-only, divergence."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.agent import ClosedLoopAgent, known_rules
from sarlearn.config import ConfigError, RunConfig
from sarlearn.errors import DivergenceError, NonFiniteError, ShapeError


def shallow(rule: str = "gdm", lr: float = 1e-2, **kw: object) -> RunConfig:
    return RunConfig().with_overrides(
        {"rule.name": rule, "rule.lr": lr, "network.layers": [2], **kw}
    )


def test_from_config_sizes_and_silent_start() -> None:
    agent = ClosedLoopAgent.from_config(RunConfig(), n_predictors=144, population=3)
    assert agent.population == 3
    assert agent.network.n_inputs == 720  # 144 predictors x 5 filters
    assert agent.n_layers == 11
    y = agent.step(np.zeros(3), np.zeros((3, 144)))
    assert y.shape == (3,)
    np.testing.assert_array_equal(y, 0.0)  # zero output layer: the untrained net is silent
    assert agent.weight_change().shape == (3, 11)


def test_same_seed_same_agent() -> None:
    a = ClosedLoopAgent.from_config(RunConfig(), 144)
    b = ClosedLoopAgent.from_config(RunConfig(), 144)
    for wa, wb in zip(a.network.weights, b.network.weights, strict=True):
        np.testing.assert_array_equal(wa, wb)


@pytest.mark.parametrize("rule", ["gdm", "sar"])
def test_learns_to_anticipate_an_error(rule: str) -> None:
    """A predictor pulse that precedes a positive error teaches a positive steering response."""
    cfg = shallow(rule, lr=0.05 if rule == "gdm" else 0.01)
    agent = ClosedLoopAgent.from_config(cfg, n_predictors=1)
    pulse = np.zeros((30, 1))
    pulse[2] = 1.0
    error = np.zeros(30)
    error[4] = 1.0  # the reflex fires two steps after the predictor
    for _ in range(40):
        agent.reset()
        for t in range(30):
            agent.step(error[t : t + 1], pulse[t][None])
    agent.learning = False
    agent.reset()
    ys = [agent.step(np.zeros(1), pulse[t][None])[0] for t in range(6)]
    assert max(ys[2:5]) > 0.01  # steers (left) before the error arrives
    assert agent.weight_change()[0, 0] > 0


def test_frozen_agent_does_not_learn() -> None:
    agent = ClosedLoopAgent.from_config(shallow(), n_predictors=4)
    agent.learning = False
    for _ in range(5):
        agent.step(np.ones(1), np.ones((1, 4)))
    np.testing.assert_array_equal(agent.weight_change(), 0.0)


def test_reflex_agent_is_silent() -> None:
    agent = ClosedLoopAgent.from_config(RunConfig().with_overrides({"rule.name": "reflex"}), 144, 2)
    assert agent.network is None and agent.n_layers == 0
    np.testing.assert_array_equal(agent.step(np.ones(2), np.ones((2, 144))), 0.0)
    assert agent.weight_change().shape == (2, 0)


def test_unknown_rule_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="known rules: reflex, gdm"):
        ClosedLoopAgent.from_config(RunConfig().with_overrides({"rule.name": "nope"}), 4)
    assert "sar" in known_rules()


def test_bad_inputs_are_clear_errors() -> None:
    agent = ClosedLoopAgent.from_config(shallow(), n_predictors=4, population=2)
    with pytest.raises(ShapeError):
        agent.step(np.zeros(3), np.zeros((2, 4)))
    with pytest.raises(NonFiniteError):
        agent.step(np.array([np.nan, 0.0]), np.zeros((2, 4)))


def test_divergence_is_reported() -> None:
    agent = ClosedLoopAgent.from_config(shallow(lr=1e300), n_predictors=4)
    with pytest.raises(DivergenceError), np.errstate(over="ignore", invalid="ignore"):
        for _ in range(20):
            agent.step(np.full(1, 1e300), np.ones((1, 4)))
    agent = ClosedLoopAgent.from_config(shallow(), n_predictors=4)
    agent.network.weights[-1][...] = np.nan
    with pytest.raises(DivergenceError, match="non-finite"):
        agent.step(np.zeros(1), np.ones((1, 4)))
