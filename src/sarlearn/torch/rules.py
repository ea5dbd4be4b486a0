"""The learning rules of ``sarlearn.torch``, derived from the recipes of :mod:`sarlearn.recipes`.

The torch rules are the core's rules, under the same names: each is read off its recipe (where
the sign is taken, what carries the signal back, whether the relevance applies), never declared
a second time. ``bp`` is kept as an alias of ``gdm``.

For a layer's backward pass (torch's convention: ``g`` is the gradient of the loss with respect
to the layer's pre-activation ``h``, so the numpy rules' teaching signal is ``d = -g`` and
gradient descent ``W -= lr * grad`` is ``W += lr * d x^T``) the recipe becomes:

- ``update``: what enters the weight change: the arriving gradient ``g`` itself
  (``"gradient"``), only its sign ``sign(g)``, scaled per sample by the relevance r
  (``"sign"``), or the sign at the output layer and the arriving number, times r, below it
  (``"output-sign"``);
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
from sarlearn.recipes import RECIPES, Carrier, Recipe, SignAt

Update = Literal["gradient", "sign", "output-sign"]
Carries = Literal["gradient", "sign"]
Path = Literal["weights", "sign-weights", "feedback", "direct", "broadcast"]

#: Where the recipe takes the sign -> (update, carries) of a layer's backward pass.
_SIGN: dict[SignAt, tuple[Update, Carries]] = {
    SignAt.NONE: ("gradient", "gradient"),  # the real-valued error travels and is applied
    SignAt.OUTPUT: ("output-sign", "sign"),  # the output's sign then travels as a number
    SignAt.PATH: ("sign", "sign"),  # only signs travel (the sign path)
    SignAt.LOCAL: ("sign", "gradient"),  # the exact error travels, each neuron keeps its sign
}

#: What carries the signal back in the recipe -> the path of a layer's backward pass.
_PATH: dict[Carrier, Path] = {
    Carrier.WEIGHTS: "weights",
    Carrier.WEIGHT_SIGNS: "sign-weights",
    Carrier.FEEDBACK: "feedback",
    Carrier.DIRECT_FEEDBACK: "direct",
    Carrier.NONE: "broadcast",
}

ALIASES: dict[str, str] = {"bp": "gdm"}
"""Other names accepted for a rule: ``bp`` (backprop) is ``gdm``, the name of the core."""


@dataclass(frozen=True)
class TorchRule:
    """One rule as the converted layers run it: its recipe, read as the module docstring says."""

    recipe: Recipe

    @property
    def name(self) -> str:
        """The rule's name, as in :data:`sarlearn.recipes.RULE_NAMES`."""
        return self.recipe.name

    @property
    def update(self) -> Update:
        """What enters the weight change (see the module docstring)."""
        return _SIGN[self.recipe.sign_at][0]

    @property
    def carries(self) -> Carries:
        """What travels on to the layer below."""
        return _SIGN[self.recipe.sign_at][1]

    @property
    def path(self) -> Path:
        """Through what it travels."""
        return _PATH[self.recipe.carrier]

    @property
    def uses_relevance(self) -> bool:
        """Whether r = phi(|e|) scales the update (sign rules without it use r = 1/batch)."""
        return self.recipe.relevance

    @property
    def description(self) -> str:
        """The recipe's one-line summary."""
        return self.recipe.summary

    @property
    def needs_error(self) -> bool:
        """Whether the layers need the output error of the current backward pass."""
        return self.uses_relevance or self.path in ("direct", "broadcast")


def torch_rule(recipe: Recipe) -> TorchRule:
    """The torch rule of ``recipe``; ConfigError naming why if the layers cannot run it."""
    if recipe.sign_at not in _SIGN or recipe.carrier not in _PATH:
        raise ConfigError(
            f"rule {recipe.name!r} takes its sign {recipe.sign_at.name.lower()} and carries its "
            f"signal by {recipe.carrier.name.lower()}: sarlearn.torch has no backward pass for "
            "that"
        )
    return TorchRule(recipe)


RULES: dict[str, TorchRule] = {name: torch_rule(recipe) for name, recipe in RECIPES.items()}
"""Registry: name -> rule, one per recipe, in the recipes' order. ``gdm`` runs through the same
layers (a check of the machinery: it equals plain autograd)."""

RULE_NAMES: tuple[str, ...] = tuple(RULES)


def get_rule(name: str) -> TorchRule:
    """The rule ``name`` (or an alias, :data:`ALIASES`); ConfigError listing the known names
    otherwise."""
    try:
        return RULES[ALIASES.get(name, name)]
    except KeyError:
        aliases = ", ".join(f"{a} = {n}" for a, n in ALIASES.items())
        raise ConfigError(
            f"unknown rule {name!r} for sarlearn.torch; known rules: {', '.join(RULE_NAMES)} "
            f"(aliases: {aliases})"
        ) from None


__all__ = ["ALIASES", "RULES", "RULE_NAMES", "TorchRule", "get_rule", "torch_rule"]
