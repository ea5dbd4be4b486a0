"""The filter bank's section (SPEC section 3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sarlearn.config.base import Section

FilterKind = Literal["resonator", "ico", "delay"]


class FilterConfig(Section):
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


__all__ = ["FilterConfig", "FilterKind"]
