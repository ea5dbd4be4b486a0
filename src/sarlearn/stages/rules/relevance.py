"""Relevance: the rectified error broadcast as a neuromodulator, ``r = phi(|e|)``.

Per agent, per time step (``|e|`` is the agent's mean |e_k| over the output neurons, i.e.
just |e| for the usual scalar closed-loop error):

    m_t  = a m_{t-1} + (1 - a) |e_t|                  low-pass (a = cfg.lowpass; a = 0: m_t = |e_t|)
    n_t  = bias-corrected exponential mean of |e|     (decay cfg.norm_decay), only if normalise
    r_t  = gain * m_t                                 or  gain * m_t / max(n_t, eps)

The low-pass starts from m_0 = 0, as the recursion says. Both filter states are set to exactly
0 once they decay below ``sqrt(tiny)`` of their dtype (:mod:`sarlearn.numerics`). An external
relevance ``(P,)`` (e.g. the curvature of the road ahead) replaces ``r_t``; the filters keep
tracking |e| so that switching between the two is seamless.

Modes (``cfg.mode``):

- ``global``: ``r`` is one scalar per agent, the same for every neuron.
- ``forward``: ``r`` enters the first layer and travels forward,
  ``r_1 = |r f'(h_1)|``, ``r_l = |(W_l r_{l-1}) f'(h_l)|``, one value per neuron.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import RelevanceConfig
from sarlearn.errors import NonFiniteError, ShapeError
from sarlearn.numerics import flush_small
from sarlearn.stages.network.network import Network

Array = NDArray[np.floating]

NORM_EPS = 1e-12
"""Floor of the running mean in the normalisation (an error that was always 0 gives r = 0)."""


class Relevance:
    """The relevance signal of a population, with its per-agent filter state.

    Args:
        cfg: gain, low-pass, normalisation and mode; None = identity, global.
    """

    def __init__(self, cfg: RelevanceConfig | None = None) -> None:
        self.cfg = cfg if cfg is not None else RelevanceConfig()
        self.population = 0
        self.lowpassed: Array = np.zeros(0)  # m_t, (P,)
        self.mean_abs: Array = np.zeros(0)  # uncorrected exponential mean of |e|, (P,)
        self.count = 0  # steps seen (for the bias correction)

    @property
    def mode(self) -> str:
        """``"global"`` or ``"forward"``."""
        return self.cfg.mode

    def bind(self, population: int, dtype: Any = np.float64) -> None:
        """Allocate (and zero) the state of ``population`` agents."""
        self.population = population
        self.lowpassed = np.zeros(population, dtype=dtype)
        self.mean_abs = np.zeros(population, dtype=dtype)
        self.count = 0

    def reset(self) -> None:
        """Forget the error history."""
        self.lowpassed.fill(0.0)
        self.mean_abs.fill(0.0)
        self.count = 0

    def __call__(self, abs_error: Array, external: Array | None = None) -> Array:
        """Advance one time step and return r: (P,).

        Args:
            abs_error: |e| per agent, (P,), >= 0.
            external: optional (P,) relevance that replaces phi(|e|).
        """
        cfg = self.cfg
        a = cfg.lowpass
        self.lowpassed *= a
        self.lowpassed += (1.0 - a) * abs_error
        flush_small(self.lowpassed)  # decays while e = 0: no subnormals (sarlearn.numerics)
        if cfg.normalise:
            d = cfg.norm_decay
            self.mean_abs *= d
            self.mean_abs += (1.0 - d) * abs_error
            flush_small(self.mean_abs)
        self.count += 1
        if external is not None:
            r = self.check_external(external)
        else:
            r = cfg.gain * self.lowpassed
            if cfg.normalise:
                mean = self.mean_abs / (1.0 - cfg.norm_decay**self.count)
                r = r / np.maximum(mean, NORM_EPS)
        if cfg.cap is not None:
            r = np.minimum(r, r.dtype.type(cfg.cap))  # a bounded step
        return r

    def check_external(self, external: Array) -> Array:
        """Validate an external relevance: shape (P,), finite, >= 0."""
        r = np.asarray(external, dtype=self.lowpassed.dtype)
        if r.shape != (self.population,):
            raise ShapeError(
                f"relevance: expected shape ({self.population},) (one per agent), got {r.shape}"
            )
        if not np.all(np.isfinite(r)):
            raise NonFiniteError("relevance contains NaN or inf")
        if np.any(r < 0):
            raise ValueError("relevance must be >= 0 (it scales plasticity, the sign does not)")
        return r

    @staticmethod
    def forward(net: Network, r: Array) -> list[Array]:
        """Per-neuron relevance travelling forward from the first layer.

        Args:
            net: the network after ``forward()`` (reads weights and slopes).
            r: (P,) the relevance entering the first layer.

        Returns:
            list over layers of (P, n_out_l): ``r_1 = |r f'(h_1)|``,
            ``r_l = |(W_l r_{l-1}) f'(h_l)|``.
        """
        out = [np.abs(r[:, None] * net.slopes[0])]
        for i in range(1, net.n_layers):
            drive = np.matmul(net.weights[i], out[-1][:, :, None])[:, :, 0]
            out.append(np.abs(drive * net.slopes[i]))
        return out

    def state_dict(self) -> dict[str, Array]:
        """Config and filter state as named arrays (for checkpoints)."""
        return {
            "config": np.array(self.cfg.model_dump_json()),
            "lowpassed": self.lowpassed.copy(),
            "mean_abs": self.mean_abs.copy(),
            "count": np.array(self.count),
        }

    def load_state_dict(self, state: dict[str, Array]) -> None:
        """Restore config and state written by :meth:`state_dict`."""
        self.cfg = RelevanceConfig.model_validate(json.loads(str(state["config"])))
        self.lowpassed = np.array(state["lowpassed"])
        self.mean_abs = np.array(state["mean_abs"])
        self.population = self.lowpassed.shape[0]
        self.count = int(state["count"])


__all__ = ["NORM_EPS", "Relevance"]
