"""One source of truth for every default: the CLI flags, TOML files and the Python API.

Each section is a pydantic model, so a bad value (a negative size, an unknown activation, a
readout of the wrong length) is rejected with a message naming the field. The defaults are the
published ones of SPEC.md where they exist; where we changed one, the field says why.

Sections (and who reads them):

- ``NetworkConfig``   -> :mod:`sarlearn.stages.network.network`
- ``RuleConfig``      -> :mod:`sarlearn.stages.rules`
- ``FilterConfig``    -> :mod:`sarlearn.stages.filters.bank`
- ``WorldConfig``     -> :mod:`sarlearn.stages.world` (track, robot, sensors, camera)
- ``RunConfig``       -> :mod:`sarlearn.runs.run` (the whole closed-loop experiment)
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from sarlearn.errors import ConfigError
from sarlearn.recipes import RECIPES

Activation = Literal["logistic", "tanh", "linear"]
InitName = Literal["scaled", "uniform", "symmetric"]
RelevanceMode = Literal["global", "forward"]
FilterKind = Literal["resonator", "ico", "delay"]
InputKind = Literal["rows", "camera"]
PredictorMode = Literal["raw", "mirror"]
StepNorm = Literal["none", "fan-in", "sqrt-fan-in"]
HiddenBoundScaling = Literal["none", "fan-in"]
OutputShare = Literal["equal", "readout"]
DType = Literal["float64", "float32"]


class _Section(BaseModel):
    # NaN and infinity are refused everywhere (pydantic: "Input should be a finite number"):
    # a non-finite speed, start or readout would only show up as a run diverging at step 0.
    # The fields where infinity means "no bound" say so with Field(allow_inf_nan=True).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class NetworkConfig(_Section):
    """Layer sizes, activation and initialisation of the learner network."""

    layers: list[int] = Field(
        default_factory=lambda: [10] * 10 + [2],
        description="Neurons per layer after the inputs, the last entry is the output layer "
        "(SPEC: 10 hidden layers of 10, 2 outputs).",
    )
    activation: Activation = "logistic"
    init: InitName = Field(
        "scaled",
        description="'scaled': gain-corrected symmetric init that keeps activity alive through "
        "depth; 'uniform': the C++ library's uniform [0, 1) scaled by init_gain; 'symmetric': "
        "naive uniform [-init_gain, init_gain).",
    )
    init_gain: float | None = Field(None, gt=0, description="Override the init's scale.")
    init_align: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Turn each row of the hidden layers fed by hidden units (layers 2 .. L-1) "
        "towards the all-ones direction: unit(a / sqrt(n) * 1 + (1 - a) * unit(w)), its norm "
        "kept. With a hidden bound the untrained stack then still passes the line to its top "
        "layer, so it settles sooner; 0 = the init unchanged. None = tied to the rule: "
        "0.9 where the rule bounds its hidden rows (sar's default step), else 0.",
    )
    input_max_norm: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=True,  # inf: no cap (NaN fails gt=0)
        description="Scale the network's input vector (the filter bank's outputs) onto this L2 "
        "norm whenever it is longer, so that the first layer's sums do not grow with the line's "
        "width or darkness (a wide line lights more inputs: ||x|| about 13 for a 3-unit line, 19 "
        "for 6 units with raw rows). inf = no cap; None = tied to the rule "
        "(DEFAULT_INPUT_MAX_NORM).",
    )
    zero_output: bool = Field(
        True, description="Start the output layer at zero so the untrained network is silent."
    )
    bias: bool = False
    readout: list[float] = Field(
        default_factory=lambda: [1.0, 2.0],
        description="Steering y = sum_k readout[k] * output_k (SPEC default [1, 2]).",
    )

    @field_validator("layers")
    @classmethod
    def _positive_layers(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("layers must name at least the output layer, e.g. [2]")
        if any(n < 1 for n in v):
            raise ValueError(f"every layer needs at least one neuron, got {v}")
        return v

    @model_validator(mode="after")
    def _readout_matches_outputs(self) -> NetworkConfig:
        if len(self.readout) != self.layers[-1]:
            raise ValueError(
                f"readout has {len(self.readout)} coefficients but the output layer has "
                f"{self.layers[-1]} neurons"
            )
        return self


class RelevanceConfig(_Section):
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
#: default world: inside each rule's range of settled runs in the learning-rate sweep of
#: docs/results.md ("Rules on the built-in tracks"), towards its fast end. SaR's steps carry
#: |e| (5-50 here), gdm's carry the products of slopes and weights on the way back, hence the
#: different scales. Declared with each rule in :mod:`sarlearn.recipes`. sar's (1) is that of
#: its bounded step (DEFAULT_STEP_OPTIONS), chosen on the settling built-in tracks, 30,000
#: steps; the plain step's rate was 1e-2.
DEFAULT_LR: dict[str, float] = {name: r.default_lr for name, r in RECIPES.items()}


_NO_STEP_OPTIONS: dict[str, Any] = {
    "step_norm": "none",
    "slope_gate": False,
    "weight_bound": None,
    "hidden_bound": None,
    "hidden_bound_scaling": "none",
}

#: Step options of a rule when its config leaves them None. Only ``sar`` changed: chosen
#: from the screening sweeps on the built-in tracks (docs/results.md, "Rules on the built-in
#: tracks");
#: every other rule keeps the plain step its DEFAULT_LR was measured with.
DEFAULT_STEP_OPTIONS: dict[str, dict[str, Any]] = {
    # the hidden bound 1.5 keeps the hidden units of 10-wide layers graded (smooth steering;
    # docs/results.md, "Rules on the built-in tracks")
    "sar": {
        "step_norm": "sqrt-fan-in",
        "slope_gate": True,
        "weight_bound": 3.0,
        "hidden_bound": 1.5,
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


class RuleConfig(_Section):
    """Which learning rule, and how big its steps are."""

    name: str = "sar"
    lr: float | None = Field(
        None, gt=0, description="Learning rate eta; None = the rule's default (DEFAULT_LR)."
    )
    layer_lr_scale: list[float] | None = Field(
        None, description="Per-layer multipliers of lr, one per layer (first hidden .. output)."
    )
    relevance: RelevanceConfig = Field(default_factory=RelevanceConfig)
    # Options against saturation and bang-bang steering (docs/learning-rules.md).
    # None = the rule's default (DEFAULT_STEP_OPTIONS), like lr.
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
        "rows that grow past it are scaled back after each step. inf = unbounded; None = the "
        "rule's default.",
    )
    hidden_weight_bound: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=True,  # inf: no bound (NaN fails gt=0)
        description="Max L2 norm of each *hidden* neuron's incoming weights (every layer but the "
        "output layer), applied after weight_bound; keeps the hidden units graded (smooth "
        "steering). sar's default 1.5 is calibrated for hidden layers of 10 units; for "
        "layers of n units use about 1.5 * sqrt(10 / n) (20 -> 1.06). inf = no extra bound; "
        "None = the rule's default.",
    )
    hidden_bound_scaling: HiddenBoundScaling | None = Field(
        None,
        description="How the hidden bound scales with a layer's fan-in n: 'none' (the same "
        "bound everywhere) or 'fan-in': hidden layers fed by hidden units get "
        "hidden_weight_bound * sqrt(10 / n), so the worst-case pre-activation ||w|| sqrt(n) "
        "stays that of the 10-wide layers the bound was calibrated on (the first hidden layer, "
        "fed by the predictors, keeps hidden_weight_bound). None = the rule's default.",
    )
    output_share: OutputShare = Field(
        "equal",
        description="'equal': every output neuron gets the whole error (the paper); 'readout': "
        "output k's step is scaled by |readout_k| / max|readout| (its share of the steering).",
    )

    @property
    def learning_rate(self) -> float:
        """The learning rate in force: ``lr``, or the rule's default when ``lr`` is None."""
        if self.lr is not None:
            return self.lr
        return DEFAULT_LR.get(self.name, DEFAULT_LR["sar"])

    @property
    def step_options(self) -> dict[str, Any]:
        """``step_norm``, ``slope_gate``, ``weight_bound``, ``hidden_bound``,
        ``hidden_bound_scaling`` in force (the rule's defaults where None; an infinite bound is
        no bound, returned as None)."""
        defaults = {**_NO_STEP_OPTIONS, **DEFAULT_STEP_OPTIONS.get(self.name, {})}
        given = {"step_norm": self.step_norm, "slope_gate": self.slope_gate,
                 "weight_bound": self.weight_bound,
                 "hidden_bound": self.hidden_weight_bound,
                 "hidden_bound_scaling": self.hidden_bound_scaling}  # fmt: skip
        out = {k: defaults[k] if v is None else v for k, v in given.items()}
        for bound in ("weight_bound", "hidden_bound"):
            if out[bound] is not None and math.isinf(out[bound]):
                out[bound] = None
        return out

    @field_validator("layer_lr_scale")
    @classmethod
    def _non_negative(cls, v: list[float] | None) -> list[float] | None:
        if v is not None and any(s < 0 for s in v):
            raise ValueError(f"layer_lr_scale entries must be >= 0, got {v}")
        return v


class FilterConfig(_Section):
    """The filter bank that expands each predictor in time (SPEC section 3)."""

    kind: FilterKind = Field(
        "resonator",
        description="'resonator': the simulation's low-Q bank (near critically damped, unit DC "
        "gain); 'ico': higher-Q resonators peaking after T samples; 'delay': taps 0..n-1.",
    )
    n_filters: int = Field(5, ge=1)
    f_min: float = Field(0.1, gt=0, lt=0.5, description="Lowest natural frequency (cycles/sample).")
    f_max: float = Field(1 / 3, gt=0, lt=0.5, description="Highest natural frequency.")
    q: float = Field(0.51, gt=0, description="Quality factor of the resonators.")

    @model_validator(mode="after")
    def _ordered(self) -> FilterConfig:
        if self.f_min > self.f_max:
            raise ValueError(f"f_min ({self.f_min}) must not exceed f_max ({self.f_max})")
        return self


class CameraConfig(_Section):
    """A forward pinhole camera tilted at the floor, and its segment grid."""

    # Bounded at 10,000 units (40 arenas): far beyond any camera that sees the track, and
    # small enough that the ray geometry cannot overflow.
    height: float = Field(12.0, gt=0, le=1e4, description="Height above the floor (units).")
    forward: float = Field(
        5.0, ge=-1e4, le=1e4, description="Mount position ahead of the robot centre (units)."
    )
    tilt_deg: float = Field(50.0, gt=0, lt=90, description="Downward tilt from horizontal.")
    fov_deg: float = Field(60.0, gt=0, lt=170, description="Horizontal field of view.")
    width: int = Field(32, ge=2)
    height_px: int = Field(24, ge=2)
    supersample: int = Field(
        2, ge=1, description="Rays per pixel side in the simulated camera (anti-aliasing)."
    )
    grid_rows: int = Field(4, ge=1, description="Segment rows for the predictors.")
    grid_cols: int = Field(8, ge=2, description="Segment columns (even: mirrored in pairs).")

    @field_validator("grid_cols")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"grid_cols must be even (left/right mirror pairs), got {v}")
        return v


RealismPreset = Literal["off", "realistic"]


class RealismConfig(_Section):
    """What a real robot adds to the ideal world (sarlearn.stages.world.realism); off by default.

    Every effect left None takes the value of ``preset`` (``off``: the ideal world;
    ``realistic``: plausible values for the original robot, docs/world.md); a set value wins.
    :meth:`resolve` gives the effects in force.
    """

    preset: RealismPreset = Field(
        "off",
        description="'off' = the ideal world; 'realistic' = plausible values for the original "
        "Raspberry Pi robot (docs/world.md, 'Realism'); set fields override the preset's.",
    )
    sensor_noise: float | None = Field(
        None, ge=0, le=1, description="Std of Gaussian noise on every ground-sensor darkness."
    )
    adc_bits: int | None = Field(
        None,
        ge=0,
        le=16,
        description="Quantise readings to 2^bits - 1 steps (10 = Arduino); 0 = not.",
    )
    delay: int | None = Field(
        None, ge=0, le=3, description="Control cycles between a command and the motors (0-3)."
    )
    motor_tau: float | None = Field(
        None, ge=0, description="Time constant (s) of the motors' first-order lag; 0 = none."
    )
    deadband: float | None = Field(
        None, ge=0, description="Wheel speeds (units/s) below this magnitude are not driven."
    )
    wheel_mismatch: float | None = Field(
        None,
        gt=-1,
        lt=1,
        description="Relative wheel gain difference m: left x (1 + m/2), right x (1 - m/2).",
    )
    light_gradient: float | None = Field(
        None, ge=0, lt=1, description="Relative change of the floor's light across the arena."
    )
    light_angle_deg: float | None = Field(
        None, description="Direction of the light gradient (0 = brighter towards +x)."
    )
    light_drift: float | None = Field(
        None, ge=0, lt=1, description="Amplitude of a slow sinusoidal drift of the light."
    )
    light_drift_period: int | None = Field(
        None, ge=2, description="Period of the light drift in control cycles."
    )
    camera_blur: float | None = Field(
        None, ge=0, le=10, description="Std (pixels) of a Gaussian blur of the camera image."
    )
    camera_exposure: float | None = Field(
        None, gt=0, description="Camera brightness gain (>1 over-exposes, <1 under-exposes)."
    )
    camera_noise: float | None = Field(
        None, ge=0, le=1, description="Std of Gaussian noise on every camera pixel."
    )
    sensor_margin: float | None = Field(
        None,
        ge=0,
        le=20,
        description="The robot's calibration: a bare floor reads 0 up to this many noise widths "
        "(sensor_noise) above its level, as `sarlearn calibrate` sets the light level.",
    )
    floor_tracking: float | None = Field(
        None,
        ge=0,
        description="The robot's per-sensor normalisation: darkness relative to a running "
        "estimate of the floor's reading over about this many cycles (0 = off).",
    )

    def resolve(self) -> Any:
        """The effects in force, a :class:`sarlearn.stages.world.realism.RealismParams`."""
        from sarlearn.stages.world.realism import PRESETS

        base = PRESETS[self.preset]
        given = {
            name: getattr(self, name)
            for name in type(self).model_fields
            if name != "preset" and getattr(self, name) is not None
        }
        if given.get("adc_bits") == 0:
            given["adc_bits"] = None  # 0 = no quantisation (None already means "the preset's")
        return replace(base, **given)

    @property
    def active(self) -> bool:
        """Whether any effect differs from the ideal world."""
        return bool(self.resolve().active)

    @model_validator(mode="after")
    def _light_stays_positive(self) -> RealismConfig:
        p = self.resolve()
        if 0.5 * p.light_gradient + p.light_drift >= 1:
            raise ValueError(
                f"light_gradient / 2 + light_drift must stay below 1 (the darkest floor would "
                f"get no light), got {p.light_gradient} / 2 + {p.light_drift}"
            )
        return self


class WorldConfig(_Section):
    """The simulated line-following world (SPEC section 4)."""

    track: str = Field(
        "curvy",
        description="Built-in track name, a generated track 'random:SEED[,KEY=VALUE...]' "
        "(docs/world.md) or path to a PNG/JPEG image.",
    )
    track_seed: int = Field(
        0, ge=0, description="Seed of the 'random' track and the 'photo' floor."
    )
    arena: float = Field(
        250.0,
        gt=0,
        description="Side of the square arena (units); an image's longer side. Generated "
        "tracks scale with it ('wide' is 1.4 x 0.8 arena).",
    )
    resolution: float = Field(4.0, gt=0, description="Pixels per unit of generated tracks.")
    line_width: float = Field(
        3.0,
        gt=0,
        description="Width of generated lines (units); narrower than the reflex sensors' "
        "spacing (10), so e is exactly 0 while the line runs between them.",
    )
    speed: float = Field(30.0, ge=0, description="Base wheel speed v (units/s).")
    dt: float = Field(
        0.05,
        gt=0,
        description="Control cycle (s): 1.5 units per step at speed 30, so the 200-step success "
        "window spans 300 units, including bends, not just a straight.",
    )
    error_gain: float = Field(50.0, description="Reflex error e = gain * (left - right).")
    net_gain: float = Field(5.0, description="Network steering gain G.")
    axle: float = Field(10.0, gt=0, description="Distance between the wheels (body width).")
    reflex_sensors: list[tuple[float, float]] = Field(
        default_factory=lambda: [(10.0, 5.0), (10.0, -5.0)],
        description="Left and right ground sensors (x forward, y left) in the robot frame.",
    )
    predictor_distances: list[float] = Field(
        default_factory=lambda: [11.0, 12.0, 13.0], min_length=1
    )
    predictors_per_row: int = Field(48, ge=1)
    predictor_spacing: float = Field(0.25, gt=0)
    inputs: InputKind = "rows"
    predictor_mode: PredictorMode | None = Field(
        None,
        description="Row predictors: 'raw' = the darkness of every row sensor (SPEC, "
        "n_rows * per_row); 'mirror' = per row, each left sensor minus its mirror image on the "
        "right, as the camera pipeline does (n_rows * per_row / 2; a centred line of any width "
        "gives 0). Applies to inputs='rows' only. None = tied to the rule in a RunConfig "
        "(RunConfig.predictor_mode: 'mirror' for sar, 'raw' for the others); a world built "
        "from this section alone reads None as 'raw'.",
    )
    camera: CameraConfig = Field(default_factory=CameraConfig)
    realism: RealismConfig = Field(
        default_factory=RealismConfig,
        description="Sensor noise, control delay, motor lag and deadband, wheel mismatch, "
        "uneven light, camera blur and exposure (docs/world.md, 'Realism'); off by default.",
    )
    off_track_after: int = Field(
        200, ge=1, description="Steps without any sensor seeing the line before 'off track'."
    )
    start: tuple[float, float, float] | None = Field(
        None, description="(x, y, heading in rad); None = on the line, heading along it."
    )
    random_start: bool = Field(
        True,
        description="With no start given, start each robot at a random place on the line "
        "drawn from the run's seed (else the same automatic start every time), so that seeds "
        "differ even for a zero-initialised shallow network.",
    )

    @model_validator(mode="after")
    def _mirror_fits(self) -> WorldConfig:
        if self.predictor_mode == "mirror":
            if self.inputs != "rows":
                raise ValueError(
                    "predictor_mode 'mirror' applies to inputs='rows' (camera predictors are "
                    "already mirror differences); leave it 'raw' with inputs='camera'"
                )
            if self.predictors_per_row % 2:
                raise ValueError(
                    f"predictor_mode 'mirror' needs an even predictors_per_row (left/right "
                    f"pairs), got {self.predictors_per_row}"
                )
        return self

    @field_validator("track")
    @classmethod
    def _track_name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the track is empty; give a built-in track's name or an image path")
        if v.startswith("random:"):  # a generated track: its name must parse (world.family)
            from sarlearn.stages.world.family import parse_name

            parse_name(v)
        return v

    @field_validator("reflex_sensors")
    @classmethod
    def _pair(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        if len(v) != 2:
            raise ValueError(f"reflex_sensors needs exactly two (left, right) points, got {len(v)}")
        return v


class RunConfig(_Section):
    """A whole closed-loop experiment: world + filter bank + network + rule."""

    rule: RuleConfig = Field(default_factory=RuleConfig)
    network: NetworkConfig = Field(default_factory=NetworkConfig)
    filters: FilterConfig = Field(default_factory=FilterConfig)
    world: WorldConfig = Field(default_factory=WorldConfig)
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
        bounded = self.rule.step_options["hidden_bound"] is not None
        return ALIGN_WITH_HIDDEN_BOUND if bounded else 0.0

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


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file raises ConfigError naming ``what``."""
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise ConfigError(f"{what} {problem}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 TOML"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file ("not found: x", "x is a folder, not a file",
    ...), or None. A fifo or device is refused without opening it (reading one would block)."""
    import stat

    if not str(path).strip():
        return "is an empty path"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"not found: {path}"
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return f"{path} is a folder, not a file"
    if not stat.S_ISREG(mode):
        return f"{path} is not a regular file (a fifo, socket or device)"
    return None


def parse_assignment(text: str, flag: str = "--set") -> tuple[str, Any]:
    """``"rule.relevance.gain=2"`` -> ``("rule.relevance.gain", 2)``; the value is read as TOML
    (numbers, booleans, ``[10, 2]``, ``{logspace = [-6, -3, 4]}``), else taken as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{flag} {text!r}: expected KEY=VALUE, e.g. rule.lr=1e-5")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words such as curvy or sar
    return key, value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``key='a.b'``; unknown paths raise ConfigError."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
            raise ConfigError(f"unknown config field {key!r}")
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise ConfigError(f"unknown config field {key!r}")
    node[parts[-1]] = value


def parse_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a plain dict into a RunConfig; pydantic's errors become one clear line each."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(root)"
            got = f" (got {err['input']!r})" if err["type"] == "finite_number" else ""
            msg = err["msg"].removeprefix("Value error, ")  # our own validators' messages
            problems.append(f"{where}: {msg}{got}")
        # One line, so the CLI's error stays one clear line whatever the number of problems.
        raise ConfigError(f"invalid {source}: " + "; ".join(problems)) from None
