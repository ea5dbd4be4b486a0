"""Peers from the literature that avoid symmetric backward weights.

- ``fa`` (feedback alignment): a fixed random B_{l+1}, shaped like W_{l+1}^T, replaces it:
  ``d_L = e f'(h_L)``, ``d_l = (B_{l+1} d_{l+1}) * f'(h_l)``.
- ``dfa`` (direct feedback alignment): the output error is projected straight to every
  hidden layer by a fixed random B_l (n_l, n_out): ``d_l = (B_l e) * f'(h_l)``; the output
  layer is as in gdm.
- ``sign-symmetry``: the backward path uses only the signs of the forward weights,
  ``d_l = (sign(W_{l+1})^T d_{l+1}) * f'(h_l)``.

The random matrices are drawn once, at ``bind``, per agent from the rule's generators (see
:func:`sarlearn.stages.network.initialisation.agent_generators`), with the distribution of the
``scaled``
init: B_{l+1}^T is distributed like W_{l+1} would be, and dfa's B_l like the weights of a
layer with n_out inputs and n_l outputs.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sarlearn.recipes import RECIPES, Recipe
from sarlearn.stages.network.initialisation import init_layer
from sarlearn.stages.network.network import Network
from sarlearn.stages.rules.base import Array, LearningRule


class FeedbackAlignment(LearningRule):
    """Backprop through fixed random matrices instead of W^T (``fa``).

    ``feedback[l]`` is B_{l+1}: (P, n_in_{l+1}, n_out_{l+1}) for l = 0 .. L-2.
    """

    recipe: ClassVar[Recipe] = RECIPES["fa"]

    def _draw_feedback(self, net: Network) -> list[Array]:
        shapes = [w.shape[1:] for w in net.weights[1:]]  # (n_out, n_in) of W_{l+1}
        B = [np.empty((net.population, m, n), dtype=net.dtype) for n, m in shapes]
        for k, rng in enumerate(self._generators(net.population)):
            for b, (n, m) in zip(B, shapes, strict=True):
                b[k] = init_layer("scaled", n, m, rng, activation=net.activation.name).T
        return B

    def _transmit(self, net: Network, i: int, d: Array) -> Array:
        return np.matmul(self.feedback[i - 1], d[:, :, None])[:, :, 0]

    def _signals(self, net: Network, e: Array, r: Array | None) -> list[Array]:
        return self._error_path(net, e)


class DirectFeedbackAlignment(LearningRule):
    """The error projected to every hidden layer by fixed random matrices (``dfa``).

    ``feedback[l]`` is B_l: (P, n_out_l, n_outputs) for the hidden layers l = 0 .. L-2.
    """

    recipe: ClassVar[Recipe] = RECIPES["dfa"]

    def _draw_feedback(self, net: Network) -> list[Array]:
        n_out = net.n_outputs
        B = [np.empty((net.population, n, n_out), dtype=net.dtype) for n in net.layers[:-1]]
        for k, rng in enumerate(self._generators(net.population)):
            for b in B:
                b[k] = init_layer("scaled", b.shape[1], n_out, rng, activation=net.activation.name)
        return B

    def _signals(self, net: Network, e: Array, r: Array | None) -> list[Array]:
        hidden = [
            np.matmul(b, e[:, :, None])[:, :, 0] * slope
            for b, slope in zip(self.feedback, net.slopes[:-1], strict=True)
        ]
        return [*hidden, e * net.slopes[-1]]


class SignSymmetry(LearningRule):
    """Backprop through sign(W)^T: only the forward weights' signs travel back."""

    recipe: ClassVar[Recipe] = RECIPES["sign-symmetry"]

    def _transmit(self, net: Network, i: int, d: Array) -> Array:
        return np.matmul(d[:, None, :], np.sign(net.weights[i]))[:, 0, :]

    def _signals(self, net: Network, e: Array, r: Array | None) -> list[Array]:
        return self._error_path(net, e)


__all__ = ["DirectFeedbackAlignment", "FeedbackAlignment", "SignSymmetry"]
