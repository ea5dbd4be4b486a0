"""One source of truth for every default: the CLI flags, TOML files and the Python API.

Each section is a pydantic model, so a bad value (a negative size, an unknown activation, a
readout of the wrong length) is rejected with a message naming the field. The defaults are the
published ones of SPEC.md where they exist; where we changed one, the field says why. Each
default is stated once: here, or (a rule's name, maths and rate) in :mod:`sarlearn.recipes`.

Sections (their module here -> who reads them):

- ``NetworkConfig``  (:mod:`.network`) -> :mod:`sarlearn.stages.network.network`
- ``RuleConfig``     (:mod:`.rule`)    -> :mod:`sarlearn.stages.rules`
- ``FilterConfig``   (:mod:`.filters`) -> :mod:`sarlearn.stages.filters.bank`
- ``WorldConfig``    (:mod:`.world`)   -> :mod:`sarlearn.stages.world` (track, robot, sensors,
  camera, realism)
- ``GuardConfig``    (:mod:`.guard`)   -> :mod:`sarlearn.stages.motor.guard` (do no harm)
- ``RunConfig``      (:mod:`.run`)     -> :mod:`sarlearn.runs.run` (the whole experiment)

:mod:`.files` reads TOML files and ``--set KEY=VALUE`` assignments.
"""

from __future__ import annotations

from sarlearn.config.base import Section, describe_errors
from sarlearn.config.files import file_problem, parse_assignment, read_toml, set_dotted
from sarlearn.config.filters import FilterConfig, FilterKind
from sarlearn.config.guard import DEFAULT_GUARD, GuardConfig
from sarlearn.config.network import SPEC_READOUT, Activation, InitName, NetworkConfig
from sarlearn.config.rule import (
    ALIGN_WITH_HIDDEN_BOUND,
    DEFAULT_CAMERA_LR,
    DEFAULT_INPUT_MAX_NORM,
    DEFAULT_LR,
    DEFAULT_MIRROR_READOUT_SCALE,
    DEFAULT_MIRROR_STEP_OPTIONS,
    DEFAULT_PREDICTOR_MODE,
    DEFAULT_STEP_OPTIONS,
    PLAIN_STEP,
    RULE_FIELDS,
    HiddenBoundScaling,
    OutputShare,
    RelevanceConfig,
    RelevanceMode,
    RuleConfig,
    StepNorm,
    StepOptions,
    check_rule_options,
)
from sarlearn.config.run import PRESETS, DType, RunConfig, parse_config, preset
from sarlearn.config.world import (
    CameraConfig,
    InputKind,
    PredictorMode,
    RealismConfig,
    RealismPreset,
    WorldConfig,
)
from sarlearn.errors import ConfigError

__all__ = [
    "ALIGN_WITH_HIDDEN_BOUND",
    "DEFAULT_CAMERA_LR",
    "DEFAULT_GUARD",
    "DEFAULT_INPUT_MAX_NORM",
    "DEFAULT_LR",
    "DEFAULT_MIRROR_READOUT_SCALE",
    "DEFAULT_MIRROR_STEP_OPTIONS",
    "DEFAULT_PREDICTOR_MODE",
    "DEFAULT_STEP_OPTIONS",
    "PLAIN_STEP",
    "PRESETS",
    "RULE_FIELDS",
    "SPEC_READOUT",
    "Activation",
    "CameraConfig",
    "ConfigError",
    "DType",
    "FilterConfig",
    "FilterKind",
    "GuardConfig",
    "HiddenBoundScaling",
    "InitName",
    "InputKind",
    "NetworkConfig",
    "OutputShare",
    "PredictorMode",
    "RealismConfig",
    "RealismPreset",
    "RelevanceConfig",
    "RelevanceMode",
    "RuleConfig",
    "RunConfig",
    "Section",
    "StepNorm",
    "StepOptions",
    "WorldConfig",
    "check_rule_options",
    "describe_errors",
    "file_problem",
    "parse_assignment",
    "parse_config",
    "preset",
    "read_toml",
    "set_dotted",
]
