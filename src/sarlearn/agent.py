"""The learner of the closed loop: filter bank -> network -> readout, trained by the error.

One object, one call per control cycle (like the lab's FCL library)::

    agent = ClosedLoopAgent.from_config(RunConfig(), n_predictors=144)
    steering = agent.step(reflex_error, predictors)      # (P,), (P, 144) -> (P,)

``step`` filters the raw predictors, runs the network forward, lets the learning rule update
the weights with the current closed-loop error (which is the teaching signal: whenever the
reflex has to act, the network was late), and returns the network's steering ``y`` computed
by that forward pass. The caller adds ``G * y`` to the reflex (:func:`sarlearn.motor.wheel_speeds`).

The rule name ``"reflex"`` builds an agent without a network: it always returns ``y = 0``,
so the loop runs on the reflex alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.config import ConfigError, RunConfig
from sarlearn.errors import DivergenceError, ShapeError
from sarlearn.motor import readout as readout_outputs

#: Rule name of the reflex-only agent (no network, y = 0).
REFLEX = "reflex"


def known_rules() -> list[str]:
    """Every accepted ``rule.name``: the learning rules plus ``"reflex"``."""
    from sarlearn.rules import RULE_NAMES

    return [REFLEX, *RULE_NAMES]


def check_rule_name(name: str) -> None:
    """Raise ConfigError naming the known rules when ``name`` is not one of them."""
    names = known_rules()
    if name not in names:
        raise ConfigError(f"unknown rule {name!r}; known rules: {', '.join(names)}")


def _dtype(cfg: RunConfig, dtype: Any) -> np.dtype:
    return np.dtype(dtype if dtype is not None else cfg.dtype)


class ClosedLoopAgent:
    """Filter bank + network + learning rule + readout for a population of ``P`` agents.

    Args:
        network: the learner network (``sarlearn.network.Network``), or None for reflex only.
        rule: its learning rule, already bound to ``network`` (None for reflex only).
        bank: the filter bank expanding each predictor in time (None for reflex only).
        readout: coefficients of ``y = sum_k readout[k] * output_k`` (one per output neuron).
        population: ``P``; taken from the network when there is one.
        learning: when False the network steers but its weights are frozen.
    """

    def __init__(
        self,
        network: Any | None,
        rule: Any | None,
        bank: Any | None,
        readout: Sequence[float] = (1.0, 2.0),
        population: int = 1,
        learning: bool = True,
    ) -> None:
        if network is not None and (rule is None or bank is None):
            raise ValueError("ClosedLoopAgent: a network needs both a rule and a filter bank")
        self.network = network
        self.rule = rule
        self.bank = bank
        self.population = int(network.population) if network is not None else int(population)
        self.dtype = network.weights[0].dtype if network is not None else np.dtype(np.float64)
        self.readout = np.asarray(readout, dtype=self.dtype)
        self.learning = learning
        if network is not None and self.readout.shape != (network.layers[-1],):
            raise ShapeError(
                f"ClosedLoopAgent: readout needs {network.layers[-1]} coefficients (one per "
                f"output neuron), got {self.readout.shape}"
            )
        self._zeros = np.zeros(self.population, dtype=self.dtype)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(
        cls,
        cfg: RunConfig,
        n_predictors: int,
        population: int = 1,
        rng: np.random.Generator | None = None,
        dtype: Any = None,
    ) -> ClosedLoopAgent:
        """Build the agent described by ``cfg`` (network, rule, filters, readout).

        ``rng`` seeds the network's initial weights and the rule's random matrices (fa, dfa);
        by default it is made from ``cfg.seed``.
        """
        check_rule_name(cfg.rule.name)
        if cfg.rule.name == REFLEX:
            return cls(None, None, None, population=population)
        from sarlearn.filters import make_filter_bank
        from sarlearn.network import Network
        from sarlearn.rules import make_rule_from_config

        dt = _dtype(cfg, dtype)
        rng = rng if rng is not None else np.random.default_rng(cfg.seed)
        net_rng, rule_rng = rng.spawn(2)
        bank = make_filter_bank(
            cfg.filters, n_predictors=n_predictors, population=population, dtype=dt
        )
        net = Network.from_config(
            cfg.network, bank.n_outputs, population=population, rng=net_rng, dtype=dt
        )
        rule = make_rule_from_config(cfg.rule, rng=rule_rng, readout=cfg.network.readout)
        rule.bind(net)
        return cls(net, rule, bank, readout=cfg.network.readout)

    # ------------------------------------------------------------------ the step
    def step(
        self,
        reflex_error: ArrayLike,
        predictors: ArrayLike,
        relevance: ArrayLike | None = None,
    ) -> NDArray[np.floating]:
        """One control cycle: returns the network's steering ``y`` ``(P,)``.

        Args:
            reflex_error: ``(P,)`` the closed-loop error e (teaching signal of this step).
            predictors: ``(P, n_predictors)`` raw predictor values (before the filter bank).
            relevance: optional external relevance ``(P,)`` replacing phi(|e|).

        Raises:
            NonFiniteError: a NaN/inf error (from the rule).
            DivergenceError: the weights or the steering became non-finite.
        """
        if self.network is None:
            return self._zeros.copy()
        e = np.asarray(reflex_error, dtype=self.dtype)
        if e.shape != (self.population,):
            raise ShapeError(
                f"ClosedLoopAgent.step: reflex_error must be ({self.population},), got {e.shape}"
            )
        x = self.bank.filter(np.asarray(predictors, dtype=self.dtype))
        out = self.network.forward(x)
        # The readout uses this step's forward pass: the update below acts from the next step.
        y = readout_outputs(out, self.readout)
        if not np.all(np.isfinite(y)):
            raise DivergenceError("the network's steering output became NaN or infinite")
        if self.learning:
            self.rule.step(self.network, e, relevance=relevance)
        return y

    # ------------------------------------------------------------------ read-outs
    @property
    def n_layers(self) -> int:
        """Number of weight layers (0 for the reflex alone)."""
        return 0 if self.network is None else len(self.network.weights)

    def weight_change(self) -> NDArray[np.floating]:
        """``(P, L)`` Frobenius distance of each layer from its initial weights."""
        if self.network is None:
            return np.zeros((self.population, 0))
        return np.asarray(self.network.weight_change())

    def reset(self) -> None:
        """Clear the filter bank's memory (the weights are kept)."""
        if self.bank is not None:
            self.bank.reset()


__all__ = ["REFLEX", "ClosedLoopAgent", "check_rule_name", "known_rules"]
