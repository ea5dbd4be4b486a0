"""The one interface of every learning rule.

A rule only says how the teaching signal travels back through the network; the weight update
is the same for all of them and lives here:

    dW_l = lr_l * d_l x_{l-1}^T,    db_l = lr_l * d_l,    lr_l = lr * layer_lr_scale[l],

where ``d_l`` (P, n_out_l) is the rule's teaching signal of layer l with any relevance already
folded in, and ``x_{l-1}`` the layer's input from the last forward pass. The maths counts the
layers l = 1 .. L; the code indexes the lists by i = l - 1 = 0 .. L-1 (0 = first hidden layer,
L-1 = output layer).

The error ``e`` plays the role of (target - output): ``gdm``'s step is ``-lr * d(e^2/2)/dW``.

Options against saturation and bang-bang steering (:class:`RuleOptions`, named as the
config's fields; every one is off unless given, the config's defaults per rule are in
:mod:`sarlearn.config.rule`):

- ``step_norm``: ``lr_l = lr * layer_lr_scale[l] / fan_in_l`` (``"fan-in"``) or
  ``/ sqrt(fan_in_l)`` (``"sqrt-fan-in"``);
- ``slope_gate`` (rules with a sign path): ``d_l <- d_l * f'(h_l) / f'(0)``, a local,
  per-neuron factor applied after the sign path (only signs travel back);
- ``output_scale``: the output layer's ``d_L`` times a fixed factor per output neuron (its
  readout share), applied after the backward path;
- ``weight_bound``: after each step every row of ``W_l`` (a neuron's incoming weights) whose L2
  norm exceeds the bound is scaled back onto it (a max-norm / Oja-style bound);
- ``hidden_weight_bound``: the rows of the hidden layers (all but the output layer) are
  bounded the same way by this norm, so hidden units stay graded (with both bounds a hidden
  row is scaled onto the smaller one: the same as one bound after the other);
- ``hidden_bound_scaling``: ``"fan-in"`` makes the hidden bound of a layer fed by hidden
  units ``hidden_weight_bound * sqrt(10 / fan_in)`` (:meth:`LearningRule.hidden_bound_of`),
  which keeps the worst-case pre-activation ``||w|| sqrt(fan_in)`` of a 10-wide layer; the
  first hidden layer keeps ``hidden_weight_bound``; ``"fan-in-all"`` scales the first hidden
  layer (fed by the predictors) the same way.

An infinite bound is no bound (None), as in the config. The limits of every option are
checked once, by :func:`sarlearn.config.check_rule_options` (the config's own fields).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Unpack, get_args

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import (
    PLAIN_STEP,
    ConfigError,
    HiddenBoundScaling,
    RelevanceConfig,
    StepNorm,
    StepOptions,
    check_rule_options,
)
from sarlearn.errors import DivergenceError, NonFiniteError, ShapeError
from sarlearn.numerics import loop_errstate
from sarlearn.recipes import Recipe, SignAt
from sarlearn.stages.network.initialisation import RngLike, agent_generators
from sarlearn.stages.network.network import Network
from sarlearn.stages.rules.relevance import Relevance

Array = NDArray[np.floating]


class RuleOptions(StepOptions, total=False):
    """What a rule is built from besides its rate: the step options (:class:`StepOptions`,
    the config's names), and:

    - ``layer_lr_scale``: one multiplier of lr per layer (first hidden .. output), or None;
    - ``relevance``: how phi(|e|) is formed (rules that use a relevance; others ignore it);
    - ``rng``: random source of the fixed feedback matrices (fa, dfa): a Generator shared by
      the agents (drawn from agent after agent), an int seed, or one Generator per agent;
    - ``seeds``: instead of rng, one int seed per agent;
    - ``output_scale``: one factor (>= 0) per output neuron for the output layer's step
      (:func:`sarlearn.stages.rules.readout_share`), or None.

    A key left out, or None, is off (:data:`sarlearn.config.PLAIN_STEP`).
    """

    layer_lr_scale: Sequence[float] | None
    relevance: RelevanceConfig | None
    rng: RngLike | Sequence[np.random.Generator]
    seeds: Sequence[int] | None
    output_scale: Sequence[float] | None


RULE_OPTIONS: frozenset[str] = RuleOptions.__required_keys__ | RuleOptions.__optional_keys__
"""The keys of :class:`RuleOptions`."""


class LearningRule:
    """Base class: per-layer rates, error checks, relevance, the update and its application.

    Subclasses implement :meth:`_signals` (and, for random feedback, :meth:`_draw_feedback`
    and :meth:`_transmit`).

    Args:
        lr: learning rate eta (> 0); None = the recipe's default rate (``Recipe.default_lr``,
            measured with the config's default step options of the rule, which
            :func:`sarlearn.stages.rules.make_rule_from_config` applies).
        options: see :class:`RuleOptions`.
    """

    name: ClassVar[str] = "base"
    uses_relevance: ClassVar[bool] = False
    """Whether phi(|e|) (or an external relevance) scales the update; if False it is ignored."""
    recipe: ClassVar[Recipe | None] = None
    """The rule's declaration (:mod:`sarlearn.recipes`): name, relevance flag, sign path and
    default rate come from it."""

    has_sign_path: ClassVar[bool] = False
    """Whether the teaching signal is a sign (so ``slope_gate`` can give it a size)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("recipe") is not None:
            cls.name = cls.recipe.name
            cls.uses_relevance = cls.recipe.relevance
            cls.has_sign_path = cls.recipe.sign_at is not SignAt.NONE

    def __init__(self, lr: float | None = None, **options: Unpack[RuleOptions]) -> None:
        unknown = set(options) - RULE_OPTIONS
        if unknown:
            raise ConfigError(
                f"unknown option(s) {', '.join(sorted(unknown))} of rule {self.name!r}; "
                f"known: lr, {', '.join(sorted(RULE_OPTIONS))}"
            )
        if lr is None:
            if self.recipe is None:
                raise ConfigError(f"rule {self.name!r} has no recipe, so no default rate: give lr")
            lr = self.recipe.default_lr
        check_rule_options(self.name, {"lr": lr, **options})
        step: dict[str, Any] = dict(PLAIN_STEP)
        step.update((k, options[k]) for k in PLAIN_STEP if options.get(k) is not None)
        self.lr = float(lr)
        self.step_norm: str = step["step_norm"]
        self.slope_gate = bool(step["slope_gate"])
        self.weight_bound = _finite_or_none(step["weight_bound"])
        self.hidden_weight_bound = _finite_or_none(step["hidden_weight_bound"])
        self.hidden_bound_scaling: str = step["hidden_bound_scaling"]
        scale = options.get("layer_lr_scale")
        self.layer_lr_scale = None if scale is None else [float(s) for s in scale]
        output_scale = options.get("output_scale")
        if output_scale is not None:
            # not a config field (it is derived from the readout), so checked here
            output_scale = [float(c) for c in output_scale]
            if any(not (np.isfinite(c) and c >= 0) for c in output_scale):
                raise ConfigError(f"output_scale entries must be >= 0, got {output_scale}")
        self.output_scale = output_scale
        self.relevance = Relevance(options.get("relevance"))
        self._rng = options.get("rng")
        seeds = options.get("seeds")
        self._seeds = None if seeds is None else list(seeds)
        self._signature: tuple[Any, ...] | None = None
        self.lr_per_layer: list[float] = []
        self.feedback: list[Array] = []  # fixed random feedback matrices (fa, dfa)
        self._deltas: list[Array] = []

    @property
    def hidden_bound(self) -> float | None:
        """``hidden_weight_bound`` under the name the compiled engine reads it by."""
        return self.hidden_weight_bound

    def __setstate__(self, state: dict[str, Any]) -> None:
        # a checkpoint pickled before the rule took the config's names keeps "hidden_bound"
        if "hidden_bound" in state:
            state["hidden_weight_bound"] = state.pop("hidden_bound")
        self.__dict__.update(state)

    # -- binding --------------------------------------------------------------------------

    @staticmethod
    def _signature_of(net: Network) -> tuple[Any, ...]:
        return (net.population, net.n_inputs, tuple(net.layers), net.dtype.name)

    def bind(self, net: Network) -> None:
        """Allocate the per-network state (rates, relevance state, feedback matrices).

        Binding again to a network of the same sizes keeps the state; a network of other
        sizes gets fresh state (new feedback matrices are drawn from the rng).
        """
        signature = self._signature_of(net)
        if signature == self._signature:
            return
        if self.uses_relevance and self.relevance.mode == "forward":
            silent = ~np.any(net.weights[-1] != 0, axis=(1, 2))
            if silent.any():
                raise ConfigError(
                    "forward relevance cannot start from a zero output layer (agents "
                    f"{np.flatnonzero(silent).tolist()}): r_L = |W_L r_(L-1)| f'(h_L) = 0, so no "
                    "layer would ever learn; use zero_output=False or relevance mode 'global'"
                )
        self._allocate(signature)
        self.feedback = self._draw_feedback(net)

    def _allocate(self, signature: tuple[Any, ...]) -> None:
        population, n_inputs, layers, dtype = signature
        scale = self.layer_lr_scale
        if scale is not None and len(scale) != len(layers):
            raise ConfigError(
                f"layer_lr_scale has {len(scale)} entries but the network has {len(layers)} "
                f"layers (one per hidden layer plus the output layer)"
            )
        if self.output_scale is not None and len(self.output_scale) != layers[-1]:
            raise ConfigError(
                f"output_scale has {len(self.output_scale)} entries but the output layer has "
                f"{layers[-1]} neurons"
            )
        sizes = [n_inputs, *layers]
        rates = [self.lr * s for s in scale] if scale else [self.lr] * len(layers)
        self.lr_per_layer = [
            rate * norm
            for rate, norm in zip(rates, step_norm_scale(self.step_norm, sizes), strict=True)
        ]
        self.relevance.bind(population, dtype)
        self._deltas = [np.zeros((population, n, m), dtype) for m, n in itertools.pairwise(sizes)]
        self._signature = signature

    def _draw_feedback(self, net: Network) -> list[Array]:
        """Fixed random feedback matrices, drawn once per network (rules that need them)."""
        return []

    def _generators(self, population: int) -> list[np.random.Generator]:
        return agent_generators(self._rng, population, self._seeds)

    def _ensure_bound(self, net: Network) -> None:
        if self._signature is None:
            self.bind(net)
        elif self._signature != self._signature_of(net):
            raise ShapeError(
                f"rule {self.name!r} is bound to a network with (population, n_inputs, layers, "
                f"dtype) = {self._signature}, got {self._signature_of(net)}; call rule.bind(net)"
            )

    # -- the public steps -------------------------------------------------------------------

    def teaching_signals(
        self, net: Network, error: Array, relevance: Array | None = None
    ) -> list[Array]:
        """The teaching signal of every layer, relevance folded in.

        Call after ``net.forward()``; one call is one time step of the relevance filters.

        Args:
            net: the network (reads its caches and weights, changes nothing).
            error: (P,) injected into every output neuron, or (P, n_out).
            relevance: optional external relevance (P,) replacing phi(|e|).

        Returns:
            list over layers of d_l, (P, n_out_l), such that ``dW_l = lr_l d_l x_{l-1}^T``.
        """
        self._ensure_bound(net)
        e, e_agent = self._check_error(net, error)
        r = None
        if self.uses_relevance:
            r = self.relevance(self._error_magnitude(e, e_agent), relevance)
        signals = self._signals(net, e, r)
        if self.slope_gate:
            # local size of each neuron's step: its own slope, relative to the slope at 0
            inv0 = 1.0 / net.activation.slope_at_zero
            signals = [d * (f * inv0) for d, f in zip(signals, net.slopes, strict=True)]
        if self.output_scale is not None:
            # after the backward path: only the output layer's own step is scaled
            scale = np.asarray(self.output_scale, dtype=net.dtype)
            signals[-1] = signals[-1] * scale
        return signals

    def updates(self, net: Network, error: Array, relevance: Array | None = None) -> list[Array]:
        """The weight changes this step would make, without applying them.

        Returns:
            list over layers of dW_l, (P, n_out_l, n_in_l) (new arrays).
        """
        signals = self.teaching_signals(net, error, relevance)
        deltas = [
            lr * d[:, :, None] * x[:, None, :]
            for lr, d, x in zip(self.lr_per_layer, signals, net.layer_inputs, strict=True)
        ]
        if self.weight_bound is not None or self.hidden_weight_bound is not None:
            # the change the bounds make of it: bounded(W + dW) - W
            deltas = [
                self._bounded_layer(i, w + dw) - w
                for i, (w, dw) in enumerate(zip(net.weights, deltas, strict=True))
            ]
        return deltas

    def step(self, net: Network, error: Array, relevance: Array | None = None) -> list[Array]:
        """Apply one update in place, after ``net.forward()``.

        All teaching signals are computed from the current weights before any layer changes.

        Returns:
            the teaching signals d_l (as :meth:`teaching_signals`).

        Raises:
            NonFiniteError: NaN or inf in ``error``.
            DivergenceError: a layer's weights became non-finite (the message names it).
        """
        signals = self.teaching_signals(net, error, relevance)
        layers = zip(self.lr_per_layer, signals, net.layer_inputs, strict=True)
        # Overflow is reported below as a DivergenceError naming the layer, not as a warning.
        with loop_errstate():
            for i, (lr, d, x) in enumerate(layers):
                dw = self._deltas[i]
                # outer product per agent, evaluated as (lr d) x^T exactly like updates()
                np.multiply((lr * d)[:, :, None], x[:, None, :], out=dw)
                net.weights[i] += dw
                if net.biases is not None:
                    net.biases[i] += lr * d
                self._bounded_layer(i, net.weights[i], out=net.weights[i])
        self._check_finite(net)
        return signals

    def _bounded_layer(self, i: int, w: Array, out: Array | None = None) -> Array:
        """Layer i's rows under ``weight_bound`` and (hidden layers) ``hidden_weight_bound``:
        scaling onto one and then onto the other is scaling onto the smaller, in one pass."""
        bounds = [self.weight_bound]
        if self.hidden_weight_bound is not None and i < len(self.lr_per_layer) - 1:
            bounds.append(self.hidden_bound_of(i, w))
        given = [b for b in bounds if b is not None]
        return self._bounded(w, out=out, bound=min(given)) if given else w

    def hidden_bound_of(self, i: int, w: Array) -> float:
        """The hidden bound of hidden layer i (weights ``w``, (P, n_out, fan_in)):
        ``hidden_weight_bound``, or with ``hidden_bound_scaling = "fan-in"`` and i >= 1 (a layer
        fed by hidden units), or with ``"fan-in-all"`` and any i,
        ``hidden_weight_bound * sqrt(HIDDEN_BOUND_FAN_IN / fan_in)``, the bound taken in the
        weights' dtype first (as the engine's constant is)."""
        assert self.hidden_weight_bound is not None
        scaling = self.hidden_bound_scaling
        if scaling == "none" or (i == 0 and scaling == "fan-in"):
            return self.hidden_weight_bound
        b = float(w.dtype.type(self.hidden_weight_bound))
        return b * math.sqrt(HIDDEN_BOUND_FAN_IN / w.shape[-1])

    def _bounded(self, w: Array, out: Array | None = None, bound: float | None = None) -> Array:
        """Rows of ``w`` (P, n_out, n_in) with L2 norm above ``bound`` (default
        ``weight_bound``) scaled onto it."""
        bound = self.weight_bound if bound is None else bound
        assert bound is not None
        norm2 = np.einsum("pij,pij->pi", w, w)
        b = w.dtype.type(bound)
        over = norm2 > b * b
        factor = np.where(over, b / np.sqrt(np.where(over, norm2, 1)), 1).astype(w.dtype)
        return np.multiply(w, factor[:, :, None], out=out)

    # -- what a rule defines ------------------------------------------------------------------

    def _signals(self, net: Network, e: Array, r: Array | None) -> list[Array]:
        """Teaching signals from the error e (P, n_out) and relevance r (P,) or None."""
        raise NotImplementedError

    def _error_magnitude(self, e: Array, e_agent: Array | None) -> Array:
        """|e| per agent (P,), the input of the relevance: the scalar error's |e|, or the mean
        |e_k| over the output neurons."""
        return np.abs(e_agent) if e_agent is not None else np.abs(e).mean(axis=1)

    def _transmit(self, net: Network, i: int, d: Array) -> Array:
        """Carry layer i's signal d (P, n_out_i) back to its input: ``W_i^T d``, (P, n_in_i)."""
        return np.matmul(d[:, None, :], net.weights[i])[:, 0, :]

    def _backpropagate(
        self, net: Network, top: Array, combine: Callable[[int, Array], Array]
    ) -> list[Array]:
        """``d_{L-1} = top``; ``d_i = combine(i, transmit(i + 1, d_{i+1}))`` downwards."""
        signals = [top]
        for i in range(net.n_layers - 2, -1, -1):
            signals.append(combine(i, self._transmit(net, i + 1, signals[-1])))
        return signals[::-1]

    def _error_path(self, net: Network, e: Array) -> list[Array]:
        """The error travelling back: ``d_L = e f'(h_L)``, ``d_l = transmit(d_{l+1}) f'(h_l)``."""
        return self._backpropagate(net, e * net.slopes[-1], lambda i, v: v * net.slopes[i])

    def _with_relevance(self, net: Network, s: list[Array], r: Array | None) -> list[Array]:
        """Fold the relevance into sign signals: ``r s_l`` (global) or ``r_l * s_l`` (forward)."""
        if r is None:
            return s
        if self.relevance.mode == "forward":
            return [r_l * s_l for r_l, s_l in zip(Relevance.forward(net, r), s, strict=True)]
        return [r[:, None] * s_l for s_l in s]

    # -- checks -------------------------------------------------------------------------------

    @staticmethod
    def _check_error(net: Network, error: Array) -> tuple[Array, Array | None]:
        """The error as (P, n_out) in the network's dtype, and the (P,) error if one was given."""
        e = np.asarray(error)
        P, n_out = net.population, net.n_outputs
        if e.shape not in ((P,), (P, n_out)):
            raise ShapeError(
                f"error: expected shape ({P},) (one per agent) or ({P}, {n_out}) (one per "
                f"output neuron), got {e.shape}"
            )
        if not np.all(np.isfinite(e)):
            raise NonFiniteError("error contains NaN or inf")
        e = e.astype(net.dtype, copy=False)
        if e.ndim == 1:
            return np.broadcast_to(e[:, None], (P, n_out)), e
        return e, None

    def _check_finite(self, net: Network) -> None:
        for i, w in enumerate(net.weights):
            bad = ~np.all(np.isfinite(w), axis=(1, 2))
            if net.biases is not None:
                bad |= ~np.all(np.isfinite(net.biases[i]), axis=1)
            if bad.any():
                raise DivergenceError(
                    f"layer {i} (0 = first hidden layer, {net.n_layers - 1} = output) became "
                    f"non-finite after a {self.name!r} step with lr={self.lr_per_layer[i]:g} "
                    f"for agents {np.flatnonzero(bad).tolist()}"
                )

    # -- persistence ----------------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        """Name, lr, per-layer scale and relevance config."""
        return {
            "name": self.name,
            "lr": self.lr,
            "layer_lr_scale": self.layer_lr_scale,
            "relevance": self.relevance.cfg.model_dump(),
            "step_norm": self.step_norm,
            "slope_gate": self.slope_gate,
            "weight_bound": self.weight_bound,
            "output_scale": self.output_scale,
            "hidden_weight_bound": self.hidden_weight_bound,
            "hidden_bound_scaling": self.hidden_bound_scaling,
        }

    def state_dict(self) -> dict[str, Array]:
        """Everything needed to continue exactly: config, relevance state, feedback matrices."""
        state = {"config": np.array(json.dumps(self.config_dict()))}
        if self._signature is not None:
            state["signature"] = np.array(json.dumps(self._signature))
            for k, v in self.relevance.state_dict().items():
                state[f"relevance/{k}"] = v
            for i, b in enumerate(self.feedback):
                state[f"feedback/{i}"] = b.copy()
        return state

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Restore a state written by :meth:`state_dict` of a rule of the same name."""
        cfg = json.loads(str(state["config"]))
        if cfg["name"] != self.name:
            raise ConfigError(f"state of rule {cfg['name']!r} cannot be loaded into {self.name!r}")
        self.lr = float(cfg["lr"])
        self.layer_lr_scale = cfg["layer_lr_scale"]
        self.step_norm = cfg.get("step_norm", "none")
        self.slope_gate = bool(cfg.get("slope_gate", False))
        self.weight_bound = cfg.get("weight_bound")
        self.output_scale = cfg.get("output_scale")
        # states saved before the config's name was used here call it "hidden_bound"
        self.hidden_weight_bound = cfg.get("hidden_weight_bound", cfg.get("hidden_bound"))
        self.hidden_bound_scaling = cfg.get("hidden_bound_scaling", "none")
        self.relevance = Relevance(RelevanceConfig.model_validate(cfg["relevance"]))
        self._signature = None
        if "signature" not in state:
            return
        P, n_inputs, layers, dtype = json.loads(str(state["signature"]))
        self._allocate((P, n_inputs, tuple(layers), dtype))
        self.relevance.load_state_dict(
            {
                k.removeprefix("relevance/"): v
                for k, v in state.items()
                if k.startswith("relevance/")
            }
        )
        n_feedback = sum(k.startswith("feedback/") for k in state)
        self.feedback = [np.array(state[f"feedback/{i}"]) for i in range(n_feedback)]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, lr={self.lr:g}, "
            f"layer_lr_scale={self.layer_lr_scale}, relevance={self.relevance.cfg!r}, "
            f"step_norm={self.step_norm!r}, slope_gate={self.slope_gate}, "
            f"weight_bound={self.weight_bound}, output_scale={self.output_scale}, "
            f"hidden_weight_bound={self.hidden_weight_bound}, "
            f"hidden_bound_scaling={self.hidden_bound_scaling!r})"
        )


def _finite_or_none(bound: float | None) -> float | None:
    """A bound as the rule keeps it: None for no bound (None or infinity), else a float."""
    return None if bound is None or math.isinf(bound) else float(bound)


def sign(x: Array) -> Array:
    """Elementwise sign with sign(0) = 0 (numpy's convention)."""
    return np.sign(x)


STEP_NORMS: tuple[str, ...] = get_args(StepNorm)
"""Known per-layer step normalisations (``step_norm``)."""
HIDDEN_BOUND_SCALINGS: tuple[str, ...] = get_args(HiddenBoundScaling)
"""Known scalings of the hidden bound (``hidden_bound_scaling``)."""
HIDDEN_BOUND_FAN_IN = 10
"""The fan-in the hidden bound is calibrated for (sar's default 10-wide hidden layers)."""


def step_norm_scale(step_norm: str, sizes: Sequence[int]) -> list[float]:
    """Multiplier of each layer's rate for ``step_norm``; sizes = [n_inputs, *layers]."""
    fan_in = [float(m) for m in sizes[:-1]]
    if step_norm == "fan-in":
        return [1.0 / m for m in fan_in]
    if step_norm == "sqrt-fan-in":
        return [1.0 / float(np.sqrt(m)) for m in fan_in]
    if step_norm == "none":
        return [1.0] * len(fan_in)
    raise ConfigError(f"unknown step normalisation {step_norm!r}; known: {', '.join(STEP_NORMS)}")


def fan_in_lr_scale(n_inputs: int, layers: Sequence[int]) -> list[float]:
    """``layer_lr_scale`` of 1 / fan-in per layer (the inputs each layer's neurons sum over)."""
    sizes = [n_inputs, *layers]
    return [1.0 / m for m in sizes[:-1]]


__all__ = [
    "HIDDEN_BOUND_FAN_IN",
    "HIDDEN_BOUND_SCALINGS",
    "RULE_OPTIONS",
    "STEP_NORMS",
    "LearningRule",
    "RuleOptions",
    "fan_in_lr_scale",
    "sign",
    "step_norm_scale",
]
