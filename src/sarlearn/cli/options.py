"""The options that `sarlearn follow` and `sarlearn drive` share, defined once.

Each is a typer ``Annotated`` alias: ``rule: RuleOption = None`` gives a command the same flag,
type, check and help as every other command that uses it. :func:`run_flags` turns the values
into the dotted config overrides both commands layer over the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

RuleOption = Annotated[str | None, typer.Option(help="Learning rule, or 'reflex' for none.")]
StepsOption = Annotated[int | None, typer.Option(help="Control cycles to run.", min=1)]
SeedOption = Annotated[int | None, typer.Option(help="Seed of weights, world and rule.")]
LrOption = Annotated[float | None, typer.Option(help="Learning rate (default: the rule's).")]
LayersOption = Annotated[
    str | None, typer.Option(help="Neurons per layer, outputs last, e.g. 10,10,2.")
]
OutOption = Annotated[
    str | None, typer.Option(help="Output folder (default: a new folder under runs/).")
]
ConfigOption = Annotated[Path | None, typer.Option(help="TOML config file.")]
StopAtSuccessOption = Annotated[
    bool | None, typer.Option("--stop-at-success", help="End the run once learned.")
]
ResumeOption = Annotated[
    Path | None, typer.Option(help="Continue the interrupted run in this folder.")
]
SetOption = Annotated[
    list[str] | None, typer.Option("--set", help="Override any config field: a.b=value.")
]
LoadOption = Annotated[
    Path | None,
    typer.Option(
        help="Start from a saved network (a run's network.npz, or its folder); its shape, "
        "rule and filters become the defaults."
    ),
]
FreezeOption = Annotated[
    bool, typer.Option("--freeze", help="Drive without learning: weights stay unchanged.")
]
ProgressOption = Annotated[bool, typer.Option(help="Show the progress bar.")]


def run_flags(
    rule: str | None,
    track: str | None,
    steps: int | None,
    seed: int | None,
    lr: float | None,
    inputs: str | None,
    stop_at_success: bool | None,
    freeze: bool,
) -> dict[str, Any]:
    """The shared flags as dotted config overrides (None = not given, so the layer below
    keeps its value; ``--freeze`` only ever switches learning off)."""
    return {
        "rule.name": rule,
        "world.track": track,
        "steps": steps,
        "seed": seed,
        "rule.lr": lr,
        "world.inputs": inputs,
        "stop_at_success": stop_at_success,
        "freeze": True if freeze else None,
    }


def load_path(load: Path) -> Path:
    """``--load``'s network file: the path itself, or a run folder's network.npz."""
    return load / "network.npz" if load.is_dir() else load


__all__ = [
    "ConfigOption",
    "FreezeOption",
    "LayersOption",
    "LoadOption",
    "LrOption",
    "OutOption",
    "ProgressOption",
    "ResumeOption",
    "RuleOption",
    "SeedOption",
    "SetOption",
    "StepsOption",
    "StopAtSuccessOption",
    "load_path",
    "run_flags",
]
