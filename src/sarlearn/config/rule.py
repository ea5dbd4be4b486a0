"""The learning rule's section, and every default that is tied to the rule.

The rule's name, its default rate and its maths are declared in :mod:`sarlearn.recipes`; what
is tied to the rule beyond that (its step options, the aligned start and the row predictors
that go with them) is declared here, once. :func:`check_rule_options` validates what a rule is
built from through :class:`RuleConfig`'s own fields, so the numpy rules
(:mod:`sarlearn.stages.rules`) state no limit of their own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from pydantic import Field, ValidationError, field_validator, model_validator

from sarlearn.config.base import Section, describe_errors
from sarlearn.errors import ConfigError
from sarlearn.recipes import RECIPES, SignAt

RelevanceMode = Literal["global", "forward"]
StepNorm = Literal["none", "fan-in", "sqrt-fan-in"]
HiddenBoundScaling = Literal["none", "fan-in", "fan-in-all"]
OutputShare = Literal["equal", "readout"]


class RelevanceConfig(Section):
    """How the rectified error becomes the broadcast relevance r = phi(|e|)."""

    mode: RelevanceMode = Field(
        "global",
        description="'global': one scalar per agent; 'forward': per-neuron, "
        "travelling forward from the first layer (the C++ library's form).",
    )
    gain: float = Field(1.0, ge=0)
    lowpass: float = Field(
        0.0, ge=0, lt=1, description="Smoothing coefficient a of r_t = a r_{t-1} + (1-a) |e_t|."
    )
    normalise: bool = Field(
        False, description="Divide by a running mean of |e| so r is O(1) whatever the error gain."
    )
    norm_decay: float = Field(
        0.999,
        ge=0,
        lt=1,
        description="Decay of the running mean of |e| used by 'normalise' "
        "(exponential, bias-corrected; 0.999 = a memory of about 1000 steps).",
    )
    cap: float | None = Field(
        None,
        gt=0,
        description="Upper bound of r (a bounded step: |dW| <= lr * cap * |x| per synapse); "
        "None = unbounded.",
    )


#: Default learning rate of each rule for the default deep network (10 x 10 + 2) on the
#: default world, as :mod:`sarlearn.recipes` declares it (``Recipe.default_lr``, where the
#: reasons are given); a view of the recipes, not a second statement.
DEFAULT_LR: dict[str, float] = {name: r.default_lr for name, r in RECIPES.items()}


class StepOptions(TypedDict, total=False):
    """The step options, named as :class:`RuleConfig`'s fields; an unbounded bound is None.
    :attr:`RuleConfig.step_options` gives every key; the numpy rules take any of them under
    the same names (:class:`sarlearn.stages.rules.base.RuleOptions`), a key left out = off."""

    step_norm: StepNorm
    slope_gate: bool
    weight_bound: float | None
    hidden_weight_bound: float | None
    hidden_bound_scaling: HiddenBoundScaling


#: The plain step, every option off: what a rule built without options takes, and the config
#: default of every rule not in DEFAULT_STEP_OPTIONS (their DEFAULT_LR was measured with it).
PLAIN_STEP: StepOptions = {
    "step_norm": "none",
    "slope_gate": False,
    "weight_bound": None,
    "hidden_weight_bound": None,
    "hidden_bound_scaling": "none",
}

#: Step options of a rule when its config leaves them None. Only ``sar`` has its own: chosen
#: from the screening sweeps on the built-in tracks (docs/results.md, "Rules on the built-in
#: tracks"); the hidden bound 1.5 keeps the hidden units of 10-wide layers graded, so the
#: steering stays smooth.
DEFAULT_STEP_OPTIONS: dict[str, StepOptions] = {
    "sar": {
        "step_norm": "sqrt-fan-in",
        "slope_gate": True,
        "weight_bound": 3.0,
        "hidden_weight_bound": 1.5,
        "hidden_bound_scaling": "none",
    },
}


#: The aligned start that goes with a hidden-row bound, so that deep stacks settle: a random
#: stack of rows scaled onto sar's hidden bound passes about 1e-5 of the line to its top layer,
#: rows turned towards a common direction pass it on. Chosen on the seven settling built-in
#: tracks from a = 0.7, 0.8, 0.9, 0.95 (docs/results.md, "Depth").
ALIGN_WITH_HIDDEN_BOUND = 0.9


#: The input cap (``network.input_max_norm``) each rule gets when the config leaves it None.
#: None has one: on generated tuning tracks the cap 10 left sar's raw rows settling 33/60
#: (32/60 without), where mirror rows (DEFAULT_PREDICTOR_MODE) settled 43/60 with no dead
#: layer (docs/results.md, section 8). A rule that needs one declares it here.
DEFAULT_INPUT_MAX_NORM: dict[str, float] = {}

#: The row predictors each rule gets when ``world.predictor_mode`` is None: sar's default step
#: takes mirror differences, whose centred line gives 0 whatever its width or darkness, so its
#: first layer does not saturate on wide lines (docs/results.md, "Tracks it has never seen");
#: every other rule keeps the raw rows its defaults were measured with.
DEFAULT_PREDICTOR_MODE: dict[str, str] = {"sar": "mirror"}

#: Step options a rule takes on mirror differences (mirror rows, and camera input, whose
#: predictors are mirror differences too) where its config leaves them None
#: (RunConfig.rule_config), over DEFAULT_STEP_OPTIONS; docs/generalisation.md, "Why mirror rows
#: weave" and "Why wide lines chatter". sar's:
#:
#: - hidden_bound_scaling "fan-in-all": the first layer's rows bounded by its fan-in too (360
#:   mirror-row inputs: 1.4 -> 0.23). Without it the first layer turns a line offset of 0.05
#:   units into nearly full steering, so the robot chatters at full amplitude: on 64 tuning
#:   runs with rows 36 settled with median 496-530 flips per 1,000 steps, against 55 and 51;
#: - the hidden bound 1.4: an aligned stack of 10-wide layers bounded at 1.5 has a slope of
#:   0.25 x 1.5 x sqrt(10) = 1.19 per layer, so ten of them make a switch, and inside a line
#:   wider than the reflex's sensor spacing, where e = 0 and nothing is learnt, the camera
#:   robot chattered at full amplitude from its first step (24 of 120 tuning runs). At 1.4
#:   (1.11 per layer) none did. On 120 tuning runs rows settled 108 (110 at 1.5), median flips
#:   16 (24); the camera 101 (103 with neither option), flips 9 (48). On 8.5-unit tuning lines
#:   115 of 120 camera runs ended at most at the reflex's |e| (109 with the hidden bound 1.4
#:   alone, which settled 105 of the 120 ordinary runs; 1.3 settled 96).
#:
#: - weight_bound 2 with the readout scaled by 1.5 (DEFAULT_MIRROR_READOUT_SCALE): see there.
DEFAULT_MIRROR_STEP_OPTIONS: dict[str, StepOptions] = {
    "sar": {"hidden_bound_scaling": "fan-in-all", "hidden_weight_bound": 1.4, "weight_bound": 2.0}
}

#: The factor on SPEC's readout [1, 2] a rule takes on mirror differences where
#: ``network.readout`` is None (RunConfig.readout). sar's 1.5 goes with its output rows bounded
#: at 2 instead of 3 (DEFAULT_MIRROR_STEP_OPTIONS): the steering's slope at 0, readout x f'(0)
#: x bound, stays 1.5 x 0.25 x 2 = 0.25 x 3, but the steering a saturated hidden stack can give
#: rises from 1.27 to 1.52 (its top units sit near 0.26, so the output layer's sums reach only
#: 2 x 0.82 or 3 x 0.82, far from saturation): on tight bends the network steered at its
#: ceiling and the reflex had to add the rest (docs/generalisation.md, "The steering ceiling on
#: tight bends"). Chosen on tuning tracks: ordinary runs settled 385/400 with the camera (338
#: before) and 197/200 with rows (178), none above the reflex; on lines 8.5 units wide 237/360
#: camera runs settled (245) and 25 ended above the reflex (12), rows 112/120 (113) and 0 (2).
DEFAULT_MIRROR_READOUT_SCALE: dict[str, float] = {"sar": 1.5}


#: The learning rate a rule takes on camera input where ``rule.lr`` is None
#: (RunConfig.rule_config), over DEFAULT_LR. sar's 3, chosen on tuning tracks with the camera
#: (docs/generalisation.md, "The camera's rate"): on 2 x 200 ordinary runs it settled 171 and
#: 167 (at 1: 167, 166), on 3 x 120 runs on lines 8.5 units wide 245 (200), and 12 of all 754
#: runs ended above the reflex (23), 5 of them wide-line runs that drove off the image (0).
DEFAULT_CAMERA_LR: dict[str, float] = {"sar": 3.0}


class RuleConfig(Section):
    """Which learning rule, and how big its steps are."""

    name: str = "sar"
    lr: float | None = Field(
        None,
        gt=0,
        description="Learning rate eta; None = the rule's default (DEFAULT_LR; on camera "
        "input DEFAULT_CAMERA_LR where the rule has one).",
    )
    layer_lr_scale: list[float] | None = Field(
        None, description="Per-layer multipliers of lr, one per layer (first hidden .. output)."
    )
    relevance: RelevanceConfig = Field(default_factory=RelevanceConfig)
    # Options against saturation and bang-bang steering (docs/learning-rules.md).
    # None = the rule's default (DEFAULT_STEP_OPTIONS, else PLAIN_STEP), like lr.
    step_norm: StepNorm | None = Field(
        None,
        description="Per-layer step normalisation: lr_l /= fan-in ('fan-in') or sqrt(fan-in) "
        "('sqrt-fan-in') of layer l, or 'none'; None = the rule's default.",
    )
    slope_gate: bool | None = Field(
        None,
        description="Sign rules: scale each neuron's step by its own f'(h)/f'(0) (local); the "
        "sign still decides LTP/LTD and only signs travel back. None = the rule's default.",
    )
    weight_bound: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=True,  # inf: no bound (NaN fails gt=0)
        description="Max L2 norm of each neuron's incoming weights (a max-norm, Oja-like bound); "
        "rows that grow past it are scaled back after each step. sar's default, 3 (2 on "
        "mirror differences, with the readout [1.5, 3]). inf = unbounded; None = the rule's "
        "default.",
    )
    hidden_weight_bound: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=True,  # inf: no bound (NaN fails gt=0)
        description="Max L2 norm of each hidden neuron's incoming weights (every layer but the "
        "output layer), applied after weight_bound: it keeps the hidden units graded, so the "
        "steering stays smooth. sar's default, 1.5 (1.4 on mirror differences: mirror rows "
        "and camera), suits hidden layers of 10 units; wider layers want a smaller bound "
        "(about 1.5 * sqrt(10 / n) for n units, which hidden_bound_scaling='fan-in' "
        "applies). inf = no extra bound; None = the rule's default.",
    )
    hidden_bound_scaling: HiddenBoundScaling | None = Field(
        None,
        description="How the hidden bound scales with a layer's fan-in n: 'none' (the same "
        "bound everywhere) or 'fan-in': hidden layers fed by hidden units get "
        "hidden_weight_bound * sqrt(10 / n), so the worst-case pre-activation ||w|| sqrt(n) "
        "stays that of a 10-wide layer (the first hidden layer, fed by the predictors, keeps "
        "hidden_weight_bound); 'fan-in-all': the same for the first hidden layer too (360 "
        "mirror-row inputs: 1.4 -> 0.23), so a small offset of the line no longer drives it to "
        "saturation. None = the rule's default (DEFAULT_MIRROR_STEP_OPTIONS on mirror rows "
        "and camera).",
    )
    output_share: OutputShare = Field(
        "equal",
        description="'equal': every output neuron gets the whole error (the paper); 'readout': "
        "output k's step is scaled by |readout_k| / max|readout| (its share of the steering).",
    )

    @property
    def learning_rate(self) -> float:
        """The learning rate in force: ``lr``, or the rule's default when ``lr`` is None."""
        return self.lr if self.lr is not None else self.default_lr

    @property
    def default_lr(self) -> float:
        """The rule's default rate (:data:`DEFAULT_LR`), whatever ``lr`` is set to."""
        return DEFAULT_LR.get(self.name, DEFAULT_LR["sar"])

    @property
    def step_options(self) -> StepOptions:
        """The step options in force: each field, or the rule's default
        (:data:`DEFAULT_STEP_OPTIONS`, else :data:`PLAIN_STEP`) where it is None; an infinite
        bound is no bound, returned as None."""
        defaults = DEFAULT_STEP_OPTIONS.get(self.name, PLAIN_STEP)
        out: dict[str, Any] = {}
        for key, default in defaults.items():
            value = getattr(self, key)
            out[key] = default if value is None else value
        for bound in ("weight_bound", "hidden_weight_bound"):
            if out[bound] is not None and math.isinf(out[bound]):
                out[bound] = None
        return StepOptions(**out)

    @field_validator("layer_lr_scale")
    @classmethod
    def _non_negative(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(s < 0 for s in v):
            raise ValueError(f"layer_lr_scale entries must be >= 0, got {v}")
        return v

    @model_validator(mode="after")
    def _slope_gate_needs_a_sign_path(self) -> RuleConfig:
        recipe = RECIPES.get(self.name)
        if self.slope_gate and recipe is not None and recipe.sign_at is SignAt.NONE:
            signed = ", ".join(n for n, r in RECIPES.items() if r.sign_at is not SignAt.NONE)
            raise ValueError(
                f"slope_gate applies to rules with a sign path ({signed}); {self.name!r} "
                "already carries f'(h) in its teaching signal"
            )
        return self


#: The fields of :class:`RuleConfig` a numpy rule is built from (besides its name).
RULE_FIELDS: tuple[str, ...] = ("lr", "layer_lr_scale", "relevance", *PLAIN_STEP)


def check_rule_options(name: str, options: Mapping[str, Any]) -> None:
    """Validate what the rule ``name`` is built from (``lr``, ``layer_lr_scale``,
    ``relevance`` and the step options, any subset, None = not given) against
    :class:`RuleConfig`'s own fields: the one statement of their limits.

    Raises:
        ConfigError: one line naming every bad field.
    """
    given = {k: options[k] for k in RULE_FIELDS if options.get(k) is not None}
    if "layer_lr_scale" in given:  # any sequence of numbers, as the rules accept
        given["layer_lr_scale"] = [float(s) for s in given["layer_lr_scale"]]
    try:
        RuleConfig.model_validate({"name": name, **given})
    except ValidationError as exc:
        raise ConfigError(f"invalid options of rule {name!r}: {describe_errors(exc)}") from None


__all__ = [
    "ALIGN_WITH_HIDDEN_BOUND",
    "DEFAULT_CAMERA_LR",
    "DEFAULT_INPUT_MAX_NORM",
    "DEFAULT_LR",
    "DEFAULT_MIRROR_READOUT_SCALE",
    "DEFAULT_MIRROR_STEP_OPTIONS",
    "DEFAULT_PREDICTOR_MODE",
    "DEFAULT_STEP_OPTIONS",
    "PLAIN_STEP",
    "RULE_FIELDS",
    "HiddenBoundScaling",
    "OutputShare",
    "RelevanceConfig",
    "RelevanceMode",
    "RuleConfig",
    "StepNorm",
    "StepOptions",
    "check_rule_options",
]
