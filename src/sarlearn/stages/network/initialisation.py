"""Weight initialisation, and the per-agent random generators of a population.

Three inits (``NetworkConfig.init``); ``gain`` is ``NetworkConfig.init_gain`` (None = default):

- ``scaled`` (default): ``W ~ U[-a, a)`` with ``a = sqrt(3) * gain / sqrt(fan_in)``, i.e. zero
  mean and standard deviation ``gain / sqrt(fan_in)``. The default gain is
  ``SCALED_KAPPA / f'(0)``: dividing by the slope at zero undoes the 4x shrink per layer of
  the shifted logistic (f'(0) = 1/4), and ``SCALED_KAPPA`` slightly above 1 gives the
  layer-to-layer map a non-zero fixed point, so activity neither dies out nor saturates with
  depth (measured numbers in docs/learning-rules.md). Linear nets use gain 1 (any more grows
  exponentially).
- ``uniform``: ``W = gain * U[0, 1)``, the authors' C++ library; default gain 1.
- ``symmetric``: naive ``W ~ U[-gain, gain)``; default gain 1.

``zero_output=True`` sets the output layer to zero after drawing it, so the untrained
network's output (and hence its steering) is exactly zero: learning starts from the reflex.

Population seeding: every agent draws its weights from its *own* generator, layer by layer,
agent after agent (see :func:`agent_generators`). Agent k of a population seeded with
``seeds=[..., s_k, ...]`` therefore has exactly the weights of a single-agent network seeded
with ``s_k``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import ConfigError
from sarlearn.stages.network.activations import get_activation

INIT_NAMES = ("scaled", "uniform", "symmetric")

SCALED_KAPPA = 1.2
"""Gain of the ``scaled`` init in units of 1/f'(0) (so 4.8 for the shifted logistic).

Chosen by measurement (docs/learning-rules.md): at 1.0 a 10x10 shifted-logistic net is
critical and its activity decays like 1/sqrt(depth); at 1.2 it settles at a depth-independent
level well inside the linear part of f.
"""

RngLike = np.random.Generator | int | None


def agent_generators(
    rng: RngLike | Sequence[np.random.Generator] = None,
    population: int = 1,
    seeds: Sequence[int] | None = None,
) -> list[np.random.Generator]:
    """One generator per agent: the population seeding rule of networks and rules.

    Args:
        rng: a Generator shared by all agents (they draw from it in turn, agent 0 first, so
            agent 0 matches a single-agent run with the same generator); an int seed for
            such a shared generator; a sequence of ``population`` Generators, one per agent;
            or None for a fresh, unseeded generator.
        population: number of agents P.
        seeds: alternatively one integer seed per agent: agent k uses
            ``np.random.default_rng(seeds[k])`` and is reproducible on its own.

    Returns:
        list of P generators (the same object repeated when one generator is shared).
    """
    if seeds is not None:
        if rng is not None:
            raise ConfigError("pass either rng or seeds, not both")
        seeds = list(seeds)
        if len(seeds) != population:
            raise ConfigError(f"seeds has {len(seeds)} entries but population is {population}")
        return [np.random.default_rng(s) for s in seeds]
    if rng is None or isinstance(rng, int | np.integer):
        rng = np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return [rng] * population
    rngs = list(rng)
    if len(rngs) != population or not all(isinstance(g, np.random.Generator) for g in rngs):
        raise ConfigError(
            f"rng must be a Generator, a seed or a sequence of {population} Generators "
            f"(one per agent), got {len(rngs)} items"
        )
    return rngs


def default_gain(init: str, activation: str = "logistic") -> float:
    """The gain used when ``init_gain`` is None (see the module docstring)."""
    _check_init(init)
    if init != "scaled":
        return 1.0
    if activation == "linear":
        return 1.0
    return SCALED_KAPPA / get_activation(activation).slope_at_zero


def init_layer(
    init: str,
    n_out: int,
    n_in: int,
    rng: np.random.Generator,
    gain: float | None = None,
    activation: str = "logistic",
) -> NDArray[np.float64]:
    """Draw one agent's weight matrix of one layer.

    Returns:
        (n_out, n_in) float64.
    """
    g = default_gain(init, activation) if gain is None else float(gain)
    if init == "scaled":
        a = np.sqrt(3.0) * g / np.sqrt(n_in)
        return rng.uniform(-a, a, size=(n_out, n_in))
    if init == "uniform":
        return g * rng.random((n_out, n_in))
    return rng.uniform(-g, g, size=(n_out, n_in))


def init_weights(
    init: str,
    n_inputs: int,
    layers: Sequence[int],
    rngs: Sequence[np.random.Generator],
    gain: float | None = None,
    activation: str = "logistic",
    zero_output: bool = True,
    dtype: type[np.floating] | np.dtype = np.float64,
    align: float = 0.0,
) -> list[NDArray[np.floating]]:
    """All weights of a population, agent after agent, layer after layer.

    Args:
        rngs: one generator per agent (see :func:`agent_generators`); P = len(rngs).
        align: a in [0, 1]: each row w of the hidden layers fed by hidden units (layers
            2 .. L-1) becomes ||w|| unit(a / sqrt(n) 1 + (1 - a) unit(w)) (n = fan-in): turned
            towards the all-ones direction, its norm kept, the random numbers drawn unchanged.
            A stack of such rows passes a common change of its inputs on (with sar's hidden
            bound a random stack passes ~1e-5 of the line to its top layer).

    Returns:
        list over layers l of (P, layers[l], n_in_l) arrays, n_in_0 = n_inputs.
    """
    _check_init(init)
    sizes = [n_inputs, *layers]
    weights = [np.empty((len(rngs), n, m), dtype=dtype) for m, n in itertools.pairwise(sizes)]
    for k, rng in enumerate(rngs):
        for w in weights:
            # Draw the output layer too, even if zeroed below: the stream of random numbers
            # (and so every other agent's weights with a shared generator) does not depend on
            # zero_output.
            w[k] = init_layer(init, w.shape[1], w.shape[2], rng, gain, activation)
    if align:
        for w in weights[1:-1]:
            norm = np.sqrt(np.einsum("pij,pij->pi", w, w))[:, :, None]
            unit = np.divide(w, norm, out=np.zeros_like(w), where=norm > 0)  # a zero row stays 0
            v = align / np.sqrt(w.shape[2]) + (1.0 - align) * unit
            w[...] = norm * v / np.sqrt(np.einsum("pij,pij->pi", v, v))[:, :, None]
    if zero_output:
        weights[-1].fill(0.0)
    return weights


def _check_init(init: str) -> None:
    if init not in INIT_NAMES:
        raise ConfigError(f"unknown init {init!r}; known: {', '.join(INIT_NAMES)}")


__all__ = [
    "INIT_NAMES",
    "SCALED_KAPPA",
    "agent_generators",
    "default_gain",
    "init_layer",
    "init_weights",
]
