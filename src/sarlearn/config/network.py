"""The learner network's section: layer sizes, activation, initialisation, readout."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sarlearn.config.base import Section

Activation = Literal["logistic", "tanh", "linear"]
InitName = Literal["scaled", "uniform", "symmetric"]


class NetworkConfig(Section):
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
    readout: list[float] | None = Field(
        None,
        description="Steering y = sum_k readout[k] * output_k. None = tied to the rule and "
        "the output layer (RunConfig.readout): SPEC's [1, 2] for 2 outputs, times the rule's "
        "DEFAULT_MIRROR_READOUT_SCALE on mirror differences; 1 per output for other sizes.",
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
        if self.readout is not None and len(self.readout) != self.layers[-1]:
            raise ValueError(
                f"readout has {len(self.readout)} coefficients but the output layer has "
                f"{self.layers[-1]} neurons"
            )
        return self


#: SPEC's readout of a 2-output network: y = output_1 + 2 output_2.
SPEC_READOUT: tuple[float, float] = (1.0, 2.0)


__all__ = ["SPEC_READOUT", "Activation", "InitName", "NetworkConfig"]
