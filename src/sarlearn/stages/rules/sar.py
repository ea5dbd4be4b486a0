"""Sign and Relevance learning and its ablations.

Sign pathways ``s_l`` (P, n_out_l), with sign(0) = 0 and ``f'`` the slopes of the last
forward pass:

- ``sar``:       s_L = sign(e f'(h_L)),  s_l = sign((W_{l+1}^T s_{l+1}) f'(h_l))
- ``sar-local``: the exact error travels as in gdm (d_l) and each neuron keeps its sign,
                 s_l = sign(d_l)  (what the authors' C++ library computes)
- ``sar-exact``: sign taken only at the output, the real-valued signal travels back,
                 s_L = sign(e f'(h_L)),  s_l = (W_{l+1}^T s_{l+1}) f'(h_l)
- ``sign-only``: ``sar`` with r = 1 (no relevance at all)

The update is ``dW_l = lr_l r s_l x_{l-1}^T`` with the global relevance r = phi(|e|) (one
scalar per agent), or ``dW_l = lr_l (r_l * s_l) x_{l-1}^T`` with the forward relevance r_l.

``relevance-only`` (global error, no backward path: the three-factor rule of shallow nets):
every neuron of every layer gets the same global error ebar (the agent's mean e over the
output neurons, i.e. just e for the usual scalar error), split into its sign and relevance
r = phi(|ebar|):

    d_l = sign(ebar) r f'(h_l)     (global mode; = ebar f'(h_l) with the default phi)
    d_l = sign(ebar) r_l           (forward mode: r_l already carries the slopes)
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sarlearn.recipes import RECIPES, Recipe
from sarlearn.stages.network.network import Network
from sarlearn.stages.rules.base import Array, LearningRule, sign


class SaR(LearningRule):
    """Sign and Relevance: pure signs travel back, |e| is broadcast (``sar``)."""

    recipe: ClassVar[Recipe] = RECIPES["sar"]

    def sign_path(self, net: Network, e: Array) -> list[Array]:
        """The sign signals s_l of every layer (P, n_out_l); e: (P, n_out)."""
        return self._backpropagate(
            net, sign(e * net.slopes[-1]), lambda i, v: sign(v * net.slopes[i])
        )

    def _signals(self, net: Network, e: Array, r: Array | None) -> list[Array]:
        return self._with_relevance(net, self.sign_path(net, e), r)


class SaRLocal(SaR):
    """The exact error backpropagates; each neuron keeps only its sign (``sar-local``)."""

    recipe: ClassVar[Recipe] = RECIPES["sar-local"]

    def sign_path(self, net: Network, e: Array) -> list[Array]:
        return [sign(d) for d in self._error_path(net, e)]


class SaRExact(SaR):
    """Sign only at the output; the real-valued sign signal travels back (``sar-exact``)."""

    recipe: ClassVar[Recipe] = RECIPES["sar-exact"]

    def sign_path(self, net: Network, e: Array) -> list[Array]:
        return self._backpropagate(net, sign(e * net.slopes[-1]), lambda i, v: v * net.slopes[i])


class SignOnly(SaR):
    """``sar`` without relevance, r = 1: the step size ignores |e| (``sign-only``)."""

    recipe: ClassVar[Recipe] = RECIPES["sign-only"]

    def _signals(self, net: Network, e: Array, r: Array | None) -> list[Array]:
        return self.sign_path(net, e)


class RelevanceOnly(LearningRule):
    """Global error broadcast to every neuron, no backward path (``relevance-only``)."""

    recipe: ClassVar[Recipe] = RECIPES["relevance-only"]

    @staticmethod
    def global_error(e: Array, e_agent: Array | None = None) -> Array:
        """ebar per agent (P,): the scalar error itself, or the mean over the output neurons."""
        return e_agent if e_agent is not None else e.mean(axis=1)

    def _error_magnitude(self, e: Array, e_agent: Array | None) -> Array:
        return np.abs(self.global_error(e, e_agent))

    def _signals(self, net: Network, e: Array, r: Array | None) -> list[Array]:
        assert r is not None
        # Only the sign of ebar is needed here (its size is in r), and the mean of a broadcast
        # scalar error has exactly that scalar's sign.
        global_sign = sign(self.global_error(e))[:, None]
        if self.relevance.mode == "forward":
            # r_l already carries the slopes; only their sign (0 where saturated) is left.
            return self._with_relevance(net, [global_sign * sign(f) for f in net.slopes], r)
        return [global_sign * r[:, None] * f for f in net.slopes]


__all__ = ["RelevanceOnly", "SaR", "SaRExact", "SaRLocal", "SignOnly"]
