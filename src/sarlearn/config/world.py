"""The simulated world's sections: track, robot, sensors, camera and realism (SPEC section 4)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from sarlearn.config.base import Section

InputKind = Literal["rows", "camera"]
PredictorMode = Literal["raw", "mirror"]
RealismPreset = Literal["off", "realistic"]


class CameraConfig(Section):
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


class RealismConfig(Section):
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


class WorldConfig(Section):
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
        if v.startswith("random:"):  # a generated track: its name must parse
            from sarlearn.stages.world.family_parameters import parse_name

            parse_name(v)
        return v


__all__ = [
    "CameraConfig",
    "InputKind",
    "PredictorMode",
    "RealismConfig",
    "RealismPreset",
    "WorldConfig",
]
