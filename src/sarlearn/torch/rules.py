"""The learning rules of ``sarlearn.torch``, each declared once as data.

A rule says three things about a layer's backward pass (torch's convention: ``g`` is the
gradient of the loss with respect to the layer's pre-activation ``h``, so the numpy rules'
teaching signal is ``d = -g`` and gradient descent ``W -= lr * grad`` is ``W += lr * d x^T``):

- ``update``: what enters the weight change: the arriving gradient ``g`` itself (``"gradient"``)
  or only its sign ``sign(g)``, scaled per sample by the relevance r (``"sign"``);
- ``carries``: what travels on to the layer below: ``"gradient"`` (``g``) or ``"sign"``
  (``sign(g)``, unscaled);
- ``path``: through what it travels: the forward weights ``W^T`` (``"weights"``), their signs
  (``"sign-weights"``), a fixed random matrix shaped like ``W`` (``"feedback"``), the output
  error projected by a fixed random matrix straight to the layer's input (``"direct"``), or
  the global error broadcast to every neuron (``"broadcast"``).

The activation between two layers multiplies what travels by ``f'(h)`` in its own (ordinary)
backward pass, so the layer below receives ``(M^T carried) * f'(h)``: exactly the numpy rules'
recursion (docs/learning-rules.md), with the sign convention flipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sarlearn.errors import ConfigError


@dataclass(frozen=True)
class TorchRule:
    """The declaration of one rule (see the module docstring)."""

    name: str
    update: Literal["gradient", "sign"]
    carries: Literal["gradient", "sign"]
    path: Literal["weights", "sign-weights", "feedback", "direct", "broadcast"]
    uses_relevance: bool
    """Whether r = phi(|e|) scales the update (sign rules without it use r = 1/batch)."""
    description: str

    @property
    def needs_error(self) -> bool:
        """Whether the layers need the output error of the current backward pass."""
        return self.uses_relevance or self.path in ("direct", "broadcast")


RULES: dict[str, TorchRule] = {
    r.name: r
    for r in (
        TorchRule("bp", "gradient", "gradient", "weights", False, "backprop, through autograd"),
        TorchRule("sar", "sign", "sign", "weights", True, "Sign and Relevance: signs travel back"),
        TorchRule(
            "sar-local",
            "sign",
            "gradient",
            "weights",
            True,
            "the exact error travels, each neuron keeps its sign",
        ),
        TorchRule("sign-only", "sign", "sign", "weights", False, "sar with r = 1"),
        TorchRule(
            "relevance-only",
            "gradient",
            "gradient",
            "broadcast",
            True,
            "one global error sign times r, broadcast to every neuron",
        ),
        TorchRule("fa", "gradient", "gradient", "feedback", False, "feedback alignment"),
        TorchRule("dfa", "gradient", "gradient", "direct", False, "direct feedback alignment"),
        TorchRule(
            "sign-symmetry",
            "gradient",
            "gradient",
            "sign-weights",
            False,
            "backprop through sign(W)^T (BioTorch's uSF)",
        ),
    )
}
"""Registry: name -> declaration. ``bp`` runs through the same layers (a check of the
machinery: it equals plain autograd)."""

RULE_NAMES: tuple[str, ...] = tuple(RULES)


def get_rule(name: str) -> TorchRule:
    """The declaration of ``name``; ConfigError listing the known names otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise ConfigError(
            f"unknown rule {name!r} for sarlearn.torch; known rules: {', '.join(RULE_NAMES)}"
        ) from None


__all__ = ["RULES", "RULE_NAMES", "TorchRule", "get_rule"]
