"""Activation functions f(h) with their slopes f'(h) computed from the output f(h).

The learning rules only ever need the slope at the current operating point, and every
activation here has a slope that is a simple function of its output, so the network computes
``x = f(h)`` once and ``f'(h)`` from ``x`` (no second transcendental call):

============  ================================  ============================  ========
name          f(h)                              f'(h) from f                   f'(0)
============  ================================  ============================  ========
``logistic``  1 / (1 + exp(-h)) - 0.5           (0.5 + f)(0.5 - f)            1/4
``tanh``      tanh(h)                           (1 + f)(1 - f)                1
``linear``    h                                 1                             1
============  ================================  ============================  ========

The shifted logistic is evaluated as ``0.5 * tanh(h / 2)`` (an exact identity), which never
overflows, unlike ``exp(-h)`` for large negative h.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import ConfigError

Array = NDArray[np.floating]


def _logistic(h: Array, out: Array) -> Array:
    # 1/(1+exp(-h)) - 1/2 == tanh(h/2)/2, and tanh saturates instead of overflowing.
    np.multiply(h, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    return out


def _logistic_slope(f: Array, out: Array) -> Array:
    # (0.5 + f)(0.5 - f) rather than 0.25 - f**2: exact zero when f saturates at +-0.5.
    np.subtract(0.5, f, out=out)
    out *= 0.5 + f
    return out


def _tanh(h: Array, out: Array) -> Array:
    return np.tanh(h, out=out)


def _tanh_slope(f: Array, out: Array) -> Array:
    np.subtract(1.0, f, out=out)
    out *= 1.0 + f
    return out


def _linear(h: Array, out: Array) -> Array:
    np.copyto(out, h)
    return out


def _linear_slope(f: Array, out: Array) -> Array:
    out.fill(1.0)
    return out


@dataclass(frozen=True)
class Activation:
    """A named activation: ``f(h, out)`` and ``slope(f, out)`` write into ``out`` and return it.

    Both accept arrays of any shape; ``out`` must have the same shape and dtype as the input
    (it may be the input itself for ``f``).
    """

    name: str
    _f: Callable[[Array, Array], Array]
    _slope: Callable[[Array, Array], Array]
    slope_at_zero: float
    """f'(0): the small-signal gain of one layer, used by the gain-corrected init."""

    def f(self, h: Array, out: Array | None = None) -> Array:
        """``f(h)``, elementwise; h: any shape."""
        return self._f(h, np.empty_like(h) if out is None else out)

    def slope(self, f: Array, out: Array | None = None) -> Array:
        """``f'(h)`` computed from ``f = f(h)``, elementwise; f: any shape."""
        return self._slope(f, np.empty_like(f) if out is None else out)

    def __call__(self, h: Array) -> Array:
        return self.f(h)


ACTIVATIONS: dict[str, Activation] = {
    "logistic": Activation("logistic", _logistic, _logistic_slope, 0.25),
    "tanh": Activation("tanh", _tanh, _tanh_slope, 1.0),
    "linear": Activation("linear", _linear, _linear_slope, 1.0),
}
"""Registry of the activations by name (the names ``NetworkConfig.activation`` accepts)."""


def get_activation(name: str | Activation) -> Activation:
    """Look an activation up by name; an :class:`Activation` is returned unchanged.

    Raises:
        ConfigError: unknown name (the message lists the known ones).
    """
    if isinstance(name, Activation):
        return name
    try:
        return ACTIVATIONS[name]
    except KeyError:
        known = ", ".join(sorted(ACTIVATIONS))
        raise ConfigError(f"unknown activation {name!r}; known: {known}") from None


__all__ = ["ACTIVATIONS", "Activation", "get_activation"]
