"""Learning rules as recipes: what each rule is, declared once.

A rule is defined by four choices (docs/learning-rules.md has the maths):

- **where the sign is taken** (:class:`SignAt`): nowhere (the real-valued error travels), at
  the output only, at every layer on the way back (the sign path), or at each neuron after the
  exact error has travelled back;
- **what carries the signal back** (:class:`Carrier`): the forward weights, the signs of the
  forward weights, fixed random matrices layer to layer (feedback alignment), fixed random
  matrices straight from the output (direct feedback alignment), or nothing (the global error
  is broadcast to every neuron);
- **whether the relevance** ``r = phi(|e|)`` scales the step;
- **its default learning rate** for the default deep network on the default world.

The numpy rules (:mod:`sarlearn.stages.rules`, the readable statement of each rule's maths) take
their name, relevance flag and default rate from here, and the compiled engine reads the sign and
carrier codes of the recipe: it knows no rule names. This is the one list of rule names; adding a
rule means writing its recipe here and its numpy class (tests check that the numpy class computes
what its recipe declares). The module imports nothing from sarlearn, so the configuration can read
the default rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class SignAt(IntEnum):
    """Where the sign of the teaching signal is taken."""

    NONE = 0  #: nowhere: the real-valued signal travels and is applied
    OUTPUT = 1  #: at the output neurons only; the signed signal then travels as a number
    PATH = 2  #: at every layer on the way back: only signs travel (the sign path)
    LOCAL = 3  #: each neuron keeps the sign of the exact error that reached it


class Carrier(IntEnum):
    """What carries layer l+1's signal back to layer l."""

    WEIGHTS = 0  #: the transposed forward weights W_{l+1}^T (backpropagation)
    WEIGHT_SIGNS = 1  #: sign(W_{l+1})^T (sign symmetry)
    FEEDBACK = 2  #: fixed random matrices B_{l+1}, layer to layer (feedback alignment)
    DIRECT_FEEDBACK = 3  #: fixed random matrices B_l from the output error (direct FA)
    NONE = 4  #: nothing travels: the global error is broadcast to every neuron


@dataclass(frozen=True)
class Recipe:
    """One learning rule's declaration (see the module docstring)."""

    name: str
    sign_at: SignAt
    carrier: Carrier
    relevance: bool
    default_lr: float
    summary: str


#: Every rule, in the order the docs list them. Default rates: inside each rule's range of
#: settled runs in the learning-rate sweep of docs/results.md ("Rules on the built-in
#: tracks"), towards its fast end. SaR's steps carry |e| (5-50 here), gdm's the products of
#: slopes and weights on the way back, hence the different scales.
RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("gdm", SignAt.NONE, Carrier.WEIGHTS, False, 1e-1, "gradient descent"),
        # sar's rate is that of its bounded step (config.DEFAULT_STEP_OPTIONS: sqrt-fan-in,
        # slope gate, bound 3, hidden bound 1.5): of 0.1, 1 and 10 on the eight settling
        # built-in tracks (30,000 steps), 1 settled 159/160 runs with the smoothest steering
        # (10: 160/160, later and less smooth); the plain step's was 1e-2.
        Recipe("sar", SignAt.PATH, Carrier.WEIGHTS, True, 1.0, "sign and relevance"),
        Recipe("sar-local", SignAt.LOCAL, Carrier.WEIGHTS, True, 1e-2, "local signs"),
        Recipe("sar-exact", SignAt.OUTPUT, Carrier.WEIGHTS, True, 1e-2, "sign at the output"),
        Recipe("sign-only", SignAt.PATH, Carrier.WEIGHTS, False, 1e-1, "sar without relevance"),
        Recipe("relevance-only", SignAt.NONE, Carrier.NONE, True, 1e-1, "global error"),
        Recipe("fa", SignAt.NONE, Carrier.FEEDBACK, False, 1e-1, "feedback alignment"),
        Recipe("dfa", SignAt.NONE, Carrier.DIRECT_FEEDBACK, False, 1e-1, "direct FA"),
        Recipe("sign-symmetry", SignAt.NONE, Carrier.WEIGHT_SIGNS, False, 1e-1, "sign symmetry"),
    )
}

#: The rule names, in order.
RULE_NAMES: tuple[str, ...] = tuple(RECIPES)

__all__ = ["RECIPES", "RULE_NAMES", "Carrier", "Recipe", "SignAt"]
