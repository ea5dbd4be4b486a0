"""The learner of the closed loop: filter bank -> network -> readout, trained by the error.

One object, one call per control cycle (like the lab's FCL library)::

    agent = ClosedLoopAgent.from_config(RunConfig(), n_predictors=144)
    steering = agent.step(reflex_error, predictors)      # (P,), (P, 144) -> (P,)

``step`` filters the raw predictors, runs the network forward, lets the learning rule update
the weights with the current closed-loop error (which is the teaching signal: whenever the
reflex has to act, the network was late), and returns the network's steering ``y`` computed
by that forward pass. The caller adds ``G * y`` to the reflex
(:func:`sarlearn.stages.motor.motor.wheel_speeds`).

The rule name ``"reflex"`` builds an agent without a network: it always returns ``y = 0``,
so the loop runs on the reflex alone.

Train, save, deploy::

    agent.save("agent.npz")                  # network + rule state + filter state, one .npz
    agent = ClosedLoopAgent.load("agent.npz")  # continues exactly where it stopped
    agent.learning = False                   # frozen: the rule computes nothing

A run started from a saved network (``RunConfig.load``, ``sarlearn follow --load``) goes
through :meth:`ClosedLoopAgent.load_state`, which checks that the saved network fits the one
the config describes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.config import ConfigError, FilterConfig, RunConfig
from sarlearn.errors import DivergenceError, ShapeError, npz_load_problem
from sarlearn.stages.motor.motor import readout as readout_outputs

#: Rule name of the reflex-only agent (no network, y = 0).
REFLEX = "reflex"

#: Format tag of the agent entries in a saved .npz (beside the network's own entries).
AGENT_FORMAT = "sarlearn-agent-1"


def known_rules() -> list[str]:
    """Every accepted ``rule.name``: the learning rules plus ``"reflex"``."""
    from sarlearn.stages.rules import RULE_NAMES

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
        network: the learner network (``sarlearn.stages.network.network.Network``), or None for
        reflex only.
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
        self.loaded: dict[str, Any] | None = None
        """What :meth:`load_state` read: ``{"path", "sha256", ...}``, else None."""

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
            if getattr(cfg, "load", None) is not None:
                raise ConfigError(
                    f"the reflex alone has no network to load {cfg.load} into (choose a rule)"
                )
            return cls(None, None, None, population=population)
        from sarlearn.stages.filters.bank import make_filter_bank
        from sarlearn.stages.network.network import Network
        from sarlearn.stages.rules import make_rule_from_config

        dt = _dtype(cfg, dtype)
        rng = rng if rng is not None else np.random.default_rng(cfg.seed)
        net_rng, rule_rng = rng.spawn(2)
        bank = make_filter_bank(
            cfg.filters, n_predictors=n_predictors, population=population, dtype=dt
        )
        net = Network.from_config(
            cfg.network, bank.n_outputs, population=population, rng=net_rng, dtype=dt,
            init_align=cfg.init_align, input_max_norm=cfg.input_max_norm,
        )  # fmt: skip
        rule = make_rule_from_config(cfg.rule_config, rng=rule_rng, readout=cfg.readout)
        rule.bind(net)
        agent = cls(net, rule, bank, readout=cfg.readout)
        load = getattr(cfg, "load", None)
        if load is not None:
            agent.load_state(load)
        if getattr(cfg, "freeze", False):
            agent.learning = False
        return agent

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

    # ------------------------------------------------------------------ save and load
    def save(self, path: str | Path) -> None:
        """Write network, rule state (relevance, feedback matrices) and filter state to one
        .npz at ``path``, atomically. The file is also a plain saved network
        (:meth:`sarlearn.stages.network.network.Network.load` reads it).

        Raises:
            ConfigError: the reflex-only agent has no network to save.
        """
        if self.network is None:
            raise ConfigError("the reflex-only agent has no network to save")
        from sarlearn.stages.network.network import save_npz

        save_npz(path, self.to_arrays())

    def to_arrays(self) -> dict[str, Any]:
        """The named arrays :meth:`save` writes (network entries, ``rule/*``, ``bank/*``,
        ``agent/*``)."""
        if self.network is None:
            raise ConfigError("the reflex-only agent has no network to save")
        arrays = self.network.to_arrays()
        arrays.update({f"rule/{k}": v for k, v in self.rule.state_dict().items()})
        arrays.update({f"bank/{k}": v for k, v in self.bank.state_dict().items()})
        meta = {
            "filters": _filter_config_of(self.bank).model_dump(mode="json"),
            "n_predictors": int(self.bank.n_predictors),
            "readout": [float(v) for v in self.readout],
            "learning": bool(self.learning),
        }
        arrays["agent/format"] = np.array(AGENT_FORMAT)
        arrays["agent/config"] = np.array(json.dumps(meta))
        return arrays

    @classmethod
    def load(cls, path: str | Path) -> ClosedLoopAgent:
        """Rebuild the agent :meth:`save` wrote; it continues exactly where it stopped
        (weights, initial weights, caches, relevance state, feedback matrices, filter state).

        A file written by ``Network.save`` alone (no rule or filter state) is rejected: build
        an agent from a config and call :meth:`load_state` instead.

        Raises:
            ConfigError: missing file, or not a saved agent.
        """
        from sarlearn.stages.filters.bank import make_filter_bank
        from sarlearn.stages.network.network import Network, load_npz
        from sarlearn.stages.rules.checkpoint import rule_from_state

        arrays = load_npz(path)
        if str(arrays.get("agent/format", "")) != AGENT_FORMAT:
            raise ConfigError(
                f"{path} is not a saved agent (written by Network.save?); build the agent from "
                "a config and use agent.load_state(path)"
            )
        meta = json.loads(str(arrays["agent/config"]))
        net = Network.from_arrays(_entries(arrays, ""))
        rule = rule_from_state(_entries(arrays, "rule/"))
        rule.bind(net)  # keeps the loaded state when the sizes match
        bank = make_filter_bank(
            FilterConfig.model_validate(meta["filters"]),
            n_predictors=int(meta["n_predictors"]),
            population=net.population,
            dtype=net.dtype,
        )
        bank.load_state_dict(_entries(arrays, "bank/"))
        agent = cls(net, rule, bank, readout=meta["readout"], learning=bool(meta["learning"]))
        agent.loaded = {"path": str(Path(path).resolve()), "sha256": file_sha256(path)}
        return agent

    def load_state(self, path: str | Path, *, filter_state: bool = False) -> None:
        """Start from the network saved at ``path`` (by :meth:`save` or ``Network.save``).

        The saved network must have this agent's shape: input count, layer sizes, dtype,
        activation and bias; its population must be this agent's or 1 (then every agent gets
        the same copy). The loaded weights become the initial weights, so
        :meth:`weight_change` measures what changed since loading (zero when frozen). The
        rule's relevance state and fixed feedback matrices are restored when the file holds
        them for the same rule (they matter when learning continues); the filter state only
        with ``filter_state=True`` (a new run starts at a new place with empty filters).

        Raises:
            ConfigError: missing or unreadable file, not a saved network, the reflex alone.
            ShapeError: the saved network does not fit (names both shapes).
        """
        if self.network is None:
            raise ConfigError("the reflex alone has no network to load into (choose a rule)")
        from sarlearn.stages.network.network import Network, load_npz

        try:
            arrays = load_npz(path)
        except ConfigError:
            raise
        except Exception as exc:  # not a zip, truncated, ...
            raise ConfigError(
                f"cannot read a saved network from {path}: {npz_load_problem(exc)}"
            ) from None
        saved = Network.from_arrays(_entries(arrays, ""))
        net = self.network
        mine, theirs = _shape_text(net), _shape_text(saved)
        if mine != theirs:
            raise ShapeError(
                f"the network in {path} does not fit this run: saved {theirs}, "
                f"this run needs {mine}"
            )
        P = net.population
        if saved.population not in (1, P):
            raise ShapeError(
                f"the network in {path} holds {saved.population} agents; this run has {P} "
                "(a saved population of 1 is copied to every agent)"
            )
        for i in range(net.n_layers):
            net.weights[i][...] = saved.weights[i]
            net.initial_weights[i][...] = saved.weights[i]
            if net.biases is not None and saved.biases is not None:
                net.biases[i][...] = saved.biases[i]
                net.initial_biases[i][...] = saved.biases[i]
        rule_state = _entries(arrays, "rule/")
        restored = []
        if rule_state and saved.population == P:
            saved_rule = json.loads(str(rule_state["config"]))
            if saved_rule["name"] == self.rule.name and "signature" in rule_state:
                rel = {
                    k.removeprefix("relevance/"): v
                    for k, v in rule_state.items()
                    if k.startswith("relevance/")
                }
                if rel and saved_rule["relevance"] == self.rule.relevance.cfg.model_dump():
                    self.rule.relevance.load_state_dict(rel)
                    restored.append("relevance")
                n_fb = sum(k.startswith("feedback/") for k in rule_state)
                fb = [np.array(rule_state[f"feedback/{i}"]) for i in range(n_fb)]
                if fb and [b.shape for b in fb] == [b.shape for b in self.rule.feedback]:
                    self.rule.feedback = fb
                    restored.append("feedback")
        bank_state = _entries(arrays, "bank/")
        if filter_state and bank_state and saved.population == P:
            self.bank.load_state_dict(bank_state)
            restored.append("filters")
        self.loaded = {
            "path": str(Path(path).resolve()),
            "sha256": file_sha256(path),
            "network": theirs,
            "population": int(saved.population),
            "restored": restored,
        }

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


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def saved_network_config(path: str | Path) -> dict[str, Any]:
    """The constructor arguments of the network saved at ``path`` (``n_inputs``, ``layers``,
    ``activation``, ``bias``, ``dtype``, ...), read without loading the weights; plus
    ``rule`` and ``filters`` (config dicts) when the file was written by
    :meth:`ClosedLoopAgent.save`.

    Raises:
        ConfigError: missing file or not a saved network.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"saved network not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "config" not in data.files:
                raise ConfigError(f"{path} is not a saved sarlearn network (no 'config' entry)")
            out = json.loads(str(data["config"]))
            if "agent/config" in data.files:
                out["filters"] = json.loads(str(data["agent/config"]))["filters"]
                out["readout"] = json.loads(str(data["agent/config"]))["readout"]
                out["n_predictors"] = json.loads(str(data["agent/config"]))["n_predictors"]
            if "rule/config" in data.files:
                out["rule"] = json.loads(str(data["rule/config"]))
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(
            f"cannot read a saved network from {path}: {npz_load_problem(exc)}"
        ) from None
    return out


def _entries(arrays: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The entries under ``prefix`` (prefix removed); ``""``: the network's own entries."""
    if prefix:
        return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
    return {k: v for k, v in arrays.items() if not k.startswith(("rule/", "bank/", "agent/"))}


def _shape_text(net: Any) -> str:
    """What must match between a saved network and a run, as one readable string."""
    bias = ", bias" if net.bias else ""
    return (
        f"{net.n_inputs} inputs -> layers {list(net.layers)} ({net.activation.name}{bias}, "
        f"{net.dtype.name})"
    )


def _filter_config_of(bank: Any) -> FilterConfig:
    """The FilterConfig that rebuilds ``bank`` (resonator/ico or delay line)."""
    if hasattr(bank, "frequencies"):
        return FilterConfig(
            kind=bank.kind,
            n_filters=bank.n_filters,
            f_min=float(bank.frequencies[0]),
            f_max=float(bank.frequencies[-1]),
            q=float(bank.q),
        )
    return FilterConfig(kind="delay", n_filters=bank.n_filters)


__all__ = [
    "AGENT_FORMAT",
    "REFLEX",
    "ClosedLoopAgent",
    "check_rule_name",
    "file_sha256",
    "known_rules",
    "saved_network_config",
]
