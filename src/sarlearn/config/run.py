"""The whole closed-loop experiment (:class:`RunConfig`), its named presets, and the parsing of
plain dicts into it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from sarlearn.config.base import Section, describe_errors
from sarlearn.config.files import read_toml, set_dotted
from sarlearn.config.filters import FilterConfig
from sarlearn.config.guard import DEFAULT_GUARD, GuardConfig
from sarlearn.config.network import SPEC_READOUT, NetworkConfig
from sarlearn.config.rule import (
    ALIGN_WITH_HIDDEN_BOUND,
    DEFAULT_CAMERA_LR,
    DEFAULT_INPUT_MAX_NORM,
    DEFAULT_MIRROR_READOUT_SCALE,
    DEFAULT_MIRROR_STEP_OPTIONS,
    DEFAULT_PREDICTOR_MODE,
    RuleConfig,
)
from sarlearn.config.world import WorldConfig
from sarlearn.errors import ConfigError

DType = Literal["float64", "float32"]


class RunConfig(Section):
    """A whole closed-loop experiment: world + filter bank + network + rule."""

    rule: RuleConfig = Field(default_factory=RuleConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    world: WorldConfig = Field(default_factory=WorldConfig)
    guard: GuardConfig = Field(default_factory=GuardConfig)
    seed: int = Field(0, ge=0, description="Seed of weights, world and rule (numpy needs >= 0).")
    steps: int = Field(
        10_000,
        ge=1,
        description="Control cycles to run (the default leaves the 5,000-step settling window "
        "after learning has had time to happen).",
    )
    warmup: int = Field(200, ge=0, description="Steps before the success criterion may start.")
    success_window: int = Field(200, ge=1, description="Moving-sum window of |e|.")
    success_threshold: float = Field(0.1, gt=0, description="Moving sum of |e| must stay below.")
    success_hold: int = Field(200, ge=1, description="...for this many consecutive steps.")
    stop_at_success: bool = False
    settle_window: int | None = Field(
        None,
        ge=1,
        description="Last steps judged by 'settled' (moving sum below threshold at every one); "
        "None = 5,000, clipped to the steps after warm-up; a set value must fit in 'steps'.",
    )
    dtype: DType = "float64"
    engine: Literal["auto", "fast", "numpy"] = Field(
        "auto",
        description="'fast': the compiled (numba) closed loop; 'numpy': the readable reference "
        "loop; 'auto': fast where the configuration is supported (all rules, ground-sensor "
        "rows), else numpy (camera inputs, the reflex alone, world.realism on). One step of "
        "the two agrees to ~1e-12; free runs separate after ~100s of steps (the loop is "
        "chaotic at the last bit), "
        "and each engine is reproducible on a given CPU (docs/architecture.md).",
    )
    checkpoint_every: int = Field(1000, ge=1, description="Steps between on-disk checkpoints.")
    load: str | None = Field(
        None,
        description="Start from the network saved at this path (a network.npz of an earlier "
        "run); it must fit the network described here (see ClosedLoopAgent.load_state).",
    )
    freeze: bool = Field(
        False, description="Drive without learning: the rule computes nothing, weights stay."
    )

    @model_validator(mode="after")
    def _realism_runs_on_numpy(self) -> RunConfig:
        if self.engine == "fast" and self.world.realism.active:
            raise ValueError(
                "world.realism is simulated by the numpy loop only; use engine 'auto' (which "
                "then runs the numpy loop) or 'numpy', or switch realism off"
            )
        return self

    @model_validator(mode="after")
    def _settle_window_fits(self) -> RunConfig:
        if self.settle_window is not None and self.settle_window > self.steps:
            raise ValueError(
                f"settle_window {self.settle_window} is longer than the run (steps "
                f"{self.steps}); leave it unset to judge min(5000, steps after warm-up)"
            )
        return self

    @property
    def init_align(self) -> float:
        """``network.init_align`` in force: the set value, else tied to the rule
        (:data:`ALIGN_WITH_HIDDEN_BOUND` where its hidden rows are bounded, else 0)."""
        if self.network.init_align is not None:
            return self.network.init_align
        bounded = self.rule.step_options["hidden_weight_bound"] is not None
        return ALIGN_WITH_HIDDEN_BOUND if bounded else 0.0

    @property
    def guard_enabled(self) -> bool:
        """``guard.enabled`` in force: the set value, else whether the rule is one of
        :data:`~sarlearn.config.guard.DEFAULT_GUARD`."""
        if self.guard.enabled is not None:
            return self.guard.enabled
        return self.rule.name in DEFAULT_GUARD

    @property
    def predictor_mode(self) -> str:
        """``world.predictor_mode`` in force: the set value, else the rule's default
        (:data:`DEFAULT_PREDICTOR_MODE`, 'raw' where it has none); always 'raw' for camera
        inputs, whose predictors are mirror differences already."""
        if self.world.predictor_mode is not None:
            return self.world.predictor_mode
        if self.world.inputs != "rows":
            return "raw"
        return DEFAULT_PREDICTOR_MODE.get(self.rule.name, "raw")

    @property
    def rule_config(self) -> RuleConfig:
        """``rule`` with the options tied to the inputs filled in: on mirror differences
        (mirror rows, :attr:`predictor_mode`, or camera input), each step option left None
        takes the rule's :data:`DEFAULT_MIRROR_STEP_OPTIONS` value; on camera input an unset
        ``lr`` takes the rule's :data:`DEFAULT_CAMERA_LR`, where it has one. What the run's
        rule is built from."""
        camera = self.world.inputs == "camera"
        update: dict[str, Any] = {}
        if self.mirror_inputs:
            tied = DEFAULT_MIRROR_STEP_OPTIONS.get(self.rule.name, {})
            update = {k: v for k, v in tied.items() if getattr(self.rule, k) is None}
        if camera and self.rule.lr is None and self.rule.name in DEFAULT_CAMERA_LR:
            update["lr"] = self.default_lr
        return self.rule.model_copy(update=update) if update else self.rule

    @property
    def mirror_inputs(self) -> bool:
        """Whether the predictors are mirror differences: mirror rows or camera input."""
        return self.world.inputs == "camera" or self.predictor_mode == "mirror"

    @property
    def readout(self) -> list[float]:
        """``network.readout`` in force: the set value, else SPEC's [1, 2] for 2 outputs (times
        the rule's :data:`DEFAULT_MIRROR_READOUT_SCALE` on mirror differences) and 1 per
        output for any other output layer."""
        if self.network.readout is not None:
            return list(self.network.readout)
        outputs = self.network.layers[-1]
        if outputs != len(SPEC_READOUT):
            return [1.0] * outputs
        scale = DEFAULT_MIRROR_READOUT_SCALE.get(self.rule.name, 1.0) if self.mirror_inputs else 1.0
        return [scale * c for c in SPEC_READOUT]

    @property
    def default_lr(self) -> float:
        """The rate the rule takes when ``rule.lr`` is None: its :data:`DEFAULT_CAMERA_LR`
        on camera input where it has one, else its :data:`DEFAULT_LR`."""
        if self.world.inputs == "camera" and self.rule.name in DEFAULT_CAMERA_LR:
            return DEFAULT_CAMERA_LR[self.rule.name]
        return self.rule.default_lr

    @property
    def world_config(self) -> WorldConfig:
        """``world`` with the predictor mode in force filled in: what a world built for this
        run is built from (``SimWorld(cfg.world_config)``)."""
        if self.world.predictor_mode is not None:
            return self.world
        return self.world.model_copy(update={"predictor_mode": self.predictor_mode})

    @property
    def input_max_norm(self) -> float | None:
        """``network.input_max_norm`` in force: the set value (inf = None), else the rule's
        default (:data:`DEFAULT_INPUT_MAX_NORM`, None where the rule has none)."""
        cap = self.network.input_max_norm
        if cap is None:
            return DEFAULT_INPUT_MAX_NORM.get(self.rule.name)
        return None if math.isinf(cap) else cap

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        """Load a config from a TOML file (sections as above; missing keys keep defaults)."""
        return parse_config(read_toml(path, "config file"), source=str(path))

    def with_overrides(self, overrides: dict[str, Any]) -> RunConfig:
        """Return a copy with dotted-path overrides applied, e.g. {"rule.lr": 1e-4}."""
        data = self.model_dump()
        for key, value in overrides.items():
            set_dotted(data, key, value)
        return parse_config(data, source="overrides")


#: Named configurations: dotted overrides applied over the defaults (``sarlearn follow
#: --preset NAME``, :func:`preset`). ``relevance-only-shallow`` is the shallow learner of the
#: results: the relevance-only rule (one global error, no backward path) on a network with no
#: hidden layer (the 720 filtered inputs straight to the 2 outputs). The rule alone keeps the
#: deep default network (10 x 10 + 2), where it is neither fast nor reliable.
PRESETS: dict[str, dict[str, Any]] = {
    "relevance-only-shallow": {"rule.name": "relevance-only", "network.layers": [2]},
}


def preset(name: str) -> dict[str, Any]:
    """The dotted overrides of the preset ``name``; an unknown name raises ConfigError."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}")
    return dict(PRESETS[name])


def parse_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a plain dict into a RunConfig; pydantic's errors become one clear line each."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid {source}: {describe_errors(exc)}") from None


__all__ = ["PRESETS", "DType", "RunConfig", "parse_config", "preset"]
