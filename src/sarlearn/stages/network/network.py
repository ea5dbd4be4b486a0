"""A population of P independent layered networks that run in lockstep.

Layer l = 0 .. L-1 (l = 0 is the first hidden layer, l = L-1 the output layer) computes

    h_l = W_l x_{l-1} + b_l,    x_l = f(h_l),    x_{-1} = the network input,

for every agent at once: the weights are stored population-first, ``W_l`` as an array of
shape (P, n_out_l, n_in_l), and one batched matrix product per layer does the whole
population. ``forward`` caches what the learning rules need (inputs, h, f(h), f'(h) of every
layer); the rules (``sarlearn.stages.rules``) read those caches and write the weights in place.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.atomic import atomic_write_with
from sarlearn.config import ConfigError, NetworkConfig
from sarlearn.errors import DivergenceError, NonFiniteError, ShapeError
from sarlearn.numerics import loop_errstate
from sarlearn.stages.network.activations import get_activation
from sarlearn.stages.network.initialisation import (
    INIT_NAMES,
    RngLike,
    agent_generators,
    init_weights,
)

Array = NDArray[np.floating]

_FORMAT = "sarlearn.stages.network.network/1"


def as_dtype(dtype: Any) -> np.dtype:
    """float32 or float64 (also given as the strings "float32"/"float64"); else ConfigError."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt


class Network:
    """P layered networks with the same sizes and their own weights.

    Args:
        n_inputs: inputs per agent (720 with the simulation's filter bank).
        layers: neurons per layer after the inputs; the last entry is the output layer.
        population: number of agents P.
        activation: ``"logistic"`` (shifted to (-0.5, 0.5)), ``"tanh"`` or ``"linear"``.
        init: ``"scaled"``, ``"uniform"`` or ``"symmetric"`` (see
        :mod:`sarlearn.stages.network.initialisation`).
        init_gain: the init's scale; None takes the init's default.
        zero_output: start the output layer at zero (the untrained network outputs exactly 0).
        init_align: in [0, 1]; turn the rows of the hidden layers fed by hidden units towards
            the all-ones direction (see
            :func:`sarlearn.stages.network.initialisation.init_weights`).
        bias: give every neuron a bias (initialised to zero).
        input_max_norm: if set, an input vector whose L2 norm exceeds it is scaled onto that
            norm before the first layer (:func:`cap_input_norm`), or None.
        dtype: float64 (default) or float32.
        rng: a Generator (shared by the agents, drawn from agent after agent), an int seed, or
            a sequence of P Generators, one per agent.
        seeds: instead of rng, one int seed per agent; agent k then has exactly the weights
            of ``Network(..., population=1, seeds=[seeds[k]])``.

    Attributes (shapes):
        weights[l]: (P, n_out_l, n_in_l); biases: list of (P, n_out_l), or None.
        initial_weights, initial_biases: copies taken at construction.
        layer_inputs[l]: x_{l-1}, (P, n_in_l); pre[l], post[l], slopes[l]: h_l, f(h_l),
        f'(h_l), each (P, n_out_l), as seen by the last :meth:`forward`.
    """

    def __init__(
        self,
        n_inputs: int,
        layers: Sequence[int],
        population: int = 1,
        activation: str = "logistic",
        init: str = "scaled",
        init_gain: float | None = None,
        zero_output: bool = True,
        bias: bool = False,
        dtype: Any = np.float64,
        rng: RngLike | Sequence[np.random.Generator] = None,
        seeds: Sequence[int] | None = None,
        init_align: float = 0.0,
        input_max_norm: float | None = None,
    ) -> None:
        layers = _check_sizes(n_inputs, layers, population)
        if input_max_norm is not None and not (np.isfinite(input_max_norm) and input_max_norm > 0):
            raise ConfigError(
                f"input_max_norm must be a finite number > 0 or None, got {input_max_norm}"
            )
        self.input_max_norm = None if input_max_norm is None else float(input_max_norm)
        if init not in INIT_NAMES:
            raise ConfigError(f"unknown init {init!r}; known: {', '.join(INIT_NAMES)}")
        if init_gain is not None and not init_gain > 0:
            raise ConfigError(f"init_gain must be > 0, got {init_gain}")
        if not 0.0 <= init_align <= 1.0:
            raise ConfigError(f"init_align must be in [0, 1], got {init_align}")
        self.init_align = float(init_align)
        self.n_inputs = int(n_inputs)
        self.layers = layers
        self.population = int(population)
        self.activation = get_activation(activation)
        self.init = init
        self.init_gain = init_gain
        self.zero_output = bool(zero_output)
        self.dtype = as_dtype(dtype)

        rngs = agent_generators(rng, self.population, seeds)
        self.weights: list[Array] = init_weights(
            init, self.n_inputs, layers, rngs, init_gain, self.activation.name,
            zero_output, self.dtype, align=self.init_align,
        )  # fmt: skip
        self.biases: list[Array] | None = (
            [np.zeros((self.population, n), dtype=self.dtype) for n in layers] if bias else None
        )
        self.initial_weights = [w.copy() for w in self.weights]
        self.initial_biases = None if self.biases is None else [b.copy() for b in self.biases]
        self._allocate_caches()

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        cfg: NetworkConfig,
        n_inputs: int,
        population: int = 1,
        rng: RngLike | Sequence[np.random.Generator] = None,
        seeds: Sequence[int] | None = None,
        dtype: Any = np.float64,
        init_align: float | None = None,
        input_max_norm: float | None = None,
    ) -> Network:
        """Build the network ``cfg`` describes (the readout belongs to the motor stage:
        ``RunConfig.readout``).

        ``init_align`` overrides ``cfg.init_align``; where both are None the rows are not
        turned (a whole :class:`~sarlearn.config.RunConfig` resolves it from its rule:
        ``RunConfig.init_align``). ``input_max_norm`` likewise overrides
        ``cfg.input_max_norm`` (``RunConfig.input_max_norm`` resolves it from the rule)."""
        cap = input_max_norm if input_max_norm is not None else cfg.input_max_norm
        if cap is not None and np.isinf(cap):
            cap = None
        return cls(
            n_inputs,
            cfg.layers,
            population=population,
            activation=cfg.activation,
            init=cfg.init,
            init_gain=cfg.init_gain,
            zero_output=cfg.zero_output,
            bias=cfg.bias,
            dtype=dtype,
            rng=rng,
            seeds=seeds,
            init_align=init_align if init_align is not None else (cfg.init_align or 0.0),
            input_max_norm=cap,
        )

    def _allocate_caches(self) -> None:
        P, dt = self.population, self.dtype
        self.pre: list[Array] = [np.zeros((P, n), dtype=dt) for n in self.layers]
        self.post: list[Array] = [np.zeros((P, n), dtype=dt) for n in self.layers]
        self.slopes: list[Array] = [np.zeros((P, n), dtype=dt) for n in self.layers]
        # x_{l-1} of layer l: the input buffer, then the previous layer's output (shared).
        self.layer_inputs: list[Array] = [np.zeros((P, self.n_inputs), dtype=dt), *self.post[:-1]]

    # -- sizes ----------------------------------------------------------------------------

    @property
    def n_layers(self) -> int:
        """L, the number of weight layers (hidden layers + output layer)."""
        return len(self.layers)

    @property
    def n_outputs(self) -> int:
        """Neurons of the output layer."""
        return self.layers[-1]

    @property
    def bias(self) -> bool:
        """Whether the neurons have biases."""
        return self.biases is not None

    @property
    def outputs(self) -> Array:
        """Output-layer activity of the last forward pass: (P, n_outputs) (the cache itself)."""
        return self.post[-1]

    # -- the forward pass -------------------------------------------------------------------

    def forward(self, x: Array) -> Array:
        """Run every agent's network on its input.

        Args:
            x: (P, n_inputs), finite.

        Returns:
            (P, n_outputs): a copy of the output layer's activity ``post[-1]``.
        """
        x = np.asarray(x)
        expected = (self.population, self.n_inputs)
        if x.shape != expected:
            raise ShapeError(f"network input x: expected shape {expected}, got {x.shape}")
        if not np.all(np.isfinite(x)):
            raise NonFiniteError("network input x contains NaN or inf")
        self.layer_inputs[0][...] = x
        if self.input_max_norm is not None:
            cap_input_norm(self.layer_inputs[0], self.input_max_norm)
        f = self.activation
        # Overflow (only possible with huge weights) is reported below as a DivergenceError.
        with loop_errstate():
            for i, w in enumerate(self.weights):
                h = self.pre[i]
                # (P, n_out, n_in) @ (P, n_in, 1) -> (P, n_out, 1): one matmul for all agents.
                np.matmul(w, self.layer_inputs[i][:, :, None], out=h[:, :, None])
                if self.biases is not None:
                    h += self.biases[i]
                f.f(h, out=self.post[i])
                f.slope(self.post[i], out=self.slopes[i])
        out = self.post[-1]
        if not np.all(np.isfinite(out)):
            raise DivergenceError("network output became non-finite (weights blew up?)")
        return out.copy()

    __call__ = forward

    # -- readouts -------------------------------------------------------------------------

    def weight_change(self) -> Array:
        """Frobenius distance of each layer's weights from their initial values: (P, L).

        Weights near overflow (a diverging run) give ``inf`` here, without a warning."""
        with loop_errstate():
            return np.stack(
                [
                    np.sqrt(np.sum((w - w0) ** 2, axis=(1, 2)))
                    for w, w0 in zip(self.weights, self.initial_weights, strict=True)
                ],
                axis=1,
            )

    # -- persistence -------------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        """The constructor arguments (without rng) that rebuild a network of this shape."""
        return {
            "n_inputs": self.n_inputs,
            "layers": list(self.layers),
            "population": self.population,
            "activation": self.activation.name,
            "init": self.init,
            "init_gain": self.init_gain,
            "zero_output": self.zero_output,
            "init_align": self.init_align,
            "input_max_norm": self.input_max_norm,
            "bias": self.bias,
            "dtype": self.dtype.name,
        }

    def to_arrays(self) -> dict[str, Array]:
        """Everything that defines the network's state, as named arrays (see :meth:`save`)."""
        arrays: dict[str, Array] = {
            "format": np.array(_FORMAT),
            "config": np.array(json.dumps(self.config_dict())),
        }
        for i in range(self.n_layers):
            arrays[f"weights/{i}"] = self.weights[i]
            arrays[f"initial_weights/{i}"] = self.initial_weights[i]
            if self.biases is not None and self.initial_biases is not None:
                arrays[f"biases/{i}"] = self.biases[i]
                arrays[f"initial_biases/{i}"] = self.initial_biases[i]
            # The caches too, so that a rule step right after loading matches exactly.
            arrays[f"pre/{i}"] = self.pre[i]
            arrays[f"post/{i}"] = self.post[i]
            arrays[f"slopes/{i}"] = self.slopes[i]
        arrays["layer_inputs/0"] = self.layer_inputs[0]
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, Array]) -> Network:
        """Rebuild a network from :meth:`to_arrays` output (weights, caches, config)."""
        if "config" not in arrays or str(arrays.get("format", "")) != _FORMAT:
            raise ConfigError(f"not a saved sarlearn network (expected format {_FORMAT!r})")
        cfg = json.loads(str(arrays["config"]))
        # Build with a throwaway generator, then overwrite every array.
        net = cls(**cfg, rng=np.random.default_rng(0))
        for i in range(net.n_layers):
            _copy_into(net.weights[i], arrays[f"weights/{i}"], f"weights[{i}]")
            _copy_into(net.initial_weights[i], arrays[f"initial_weights/{i}"], f"weights[{i}]")
            if net.biases is not None and net.initial_biases is not None:
                _copy_into(net.biases[i], arrays[f"biases/{i}"], f"biases[{i}]")
                _copy_into(net.initial_biases[i], arrays[f"initial_biases/{i}"], f"biases[{i}]")
            _copy_into(net.pre[i], arrays[f"pre/{i}"], f"pre[{i}]")
            _copy_into(net.post[i], arrays[f"post/{i}"], f"post[{i}]")
            _copy_into(net.slopes[i], arrays[f"slopes/{i}"], f"slopes[{i}]")
        _copy_into(net.layer_inputs[0], arrays["layer_inputs/0"], "layer_inputs[0]")
        return net

    def save(self, path: str | Path) -> None:
        """Write the network to ``path`` as .npz (config, weights, initial weights, caches)."""
        save_npz(path, self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> Network:
        """Read a network written by :meth:`save`; it continues exactly where it stopped."""
        return cls.from_arrays(load_npz(path))

    def __repr__(self) -> str:
        return (
            f"Network(n_inputs={self.n_inputs}, layers={list(self.layers)}, "
            f"population={self.population}, activation={self.activation.name!r}, "
            f"bias={self.bias}, dtype={self.dtype.name})"
        )


def cap_input_norm(x: Array, max_norm: float) -> None:
    """Scale, in place, each agent's input vector whose L2 norm exceeds ``max_norm`` onto it.

    ``x`` (P, n_inputs). A wider or darker line lights more inputs and lengthens x; with rows
    of bounded norm the first layer's sums grow with ||x|| until the layer saturates. Capped,
    the sums stay within ``weight bound * max_norm`` whatever the line (the learning step,
    which is proportional to x, shrinks with it: an NLMS-like step for long inputs). Per
    agent: ``n2 = sum x^2``; if ``n2 > c^2``: ``x *= c / sqrt(n2)`` (c in x's dtype)."""
    c = x.dtype.type(max_norm)
    n2 = np.einsum("pi,pi->p", x, x)
    over = n2 > c * c
    if over.any():
        x[over] *= (c / np.sqrt(n2[over]))[:, None]


def save_npz(path: str | Path, arrays: dict[str, Array]) -> None:
    """Write named arrays to ``path`` (exactly that name) atomically: temp file, then rename."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a name
            np.savez(fh, **arrays)  # type: ignore[arg-type]

    atomic_write_with(path, write)


def load_npz(path: str | Path) -> dict[str, Array]:
    """Read all arrays of an .npz file into memory (no pickles)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"file not found: {path}")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _check_sizes(n_inputs: int, layers: Sequence[int], population: int) -> tuple[int, ...]:
    def is_int(v: object) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    if not is_int(n_inputs) or n_inputs < 1:
        raise ConfigError(f"n_inputs must be a positive integer, got {n_inputs!r}")
    if not is_int(population) or population < 1:
        raise ConfigError(f"population must be a positive integer, got {population!r}")
    layers = tuple(layers)
    if not layers:
        raise ConfigError("layers must name at least the output layer, e.g. [2]")
    if not all(is_int(n) and n >= 1 for n in layers):
        raise ConfigError(f"every layer needs a positive integer number of neurons, got {layers}")
    return tuple(int(n) for n in layers)


def _copy_into(dst: Array, src: Array, name: str) -> None:
    if src.shape != dst.shape:
        raise ShapeError(f"saved {name}: expected shape {dst.shape}, got {src.shape}")
    dst[...] = src


__all__ = ["Network", "as_dtype", "cap_input_norm", "load_npz", "save_npz"]
