"""``gdm``: the gradient descent method, i.e. exact error backpropagation (the baseline).

    d_L = e * f'(h_L)
    d_l = (W_{l+1}^T d_{l+1}) * f'(h_l)
    dW_l = lr_l d_l x_{l-1}^T          (= -lr_l d(1/2 sum_k e_k^2)/dW_l  with e = t - y)

No relevance: the error's magnitude is already in d_l.
"""

from __future__ import annotations

from typing import ClassVar

from sarlearn.recipes import RECIPES, Recipe
from sarlearn.stages.network.network import Network
from sarlearn.stages.rules.base import Array, LearningRule


class GDM(LearningRule):
    """Exact backpropagation of the error through the forward weights (``gdm``)."""

    recipe: ClassVar[Recipe] = RECIPES["gdm"]

    def _signals(self, net: Network, e: Array, r: Array | None) -> list[Array]:
        return self._error_path(net, e)


__all__ = ["GDM"]
