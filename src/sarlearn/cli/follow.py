"""`sarlearn follow`: one closed-loop run with progress bar, figures, trace and summary.

Options are layered: the defaults of :mod:`sarlearn.config` < ``--config FILE.toml`` <
explicit flags < ``--set a.b=value``. Bad options end with a one-line error and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from sarlearn.config import ConfigError, RunConfig, parse_assignment
from sarlearn.errors import TrackError

#: Exit codes: bad options, crash, Ctrl-C, SIGTERM.
EXIT_USAGE, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 1, 130, 143


def parse_layers(text: str) -> list[int]:
    """``"10,10,2"`` -> ``[10, 10, 2]``; anything else raises ConfigError."""
    parts = [p.strip() for p in text.split(",")]
    try:
        layers = [int(p) for p in parts]
    except ValueError:
        layers = []
    if not layers or any(n < 1 for n in layers):
        raise ConfigError(
            f"--layers must be comma-separated positive integers (hidden layers then outputs, "
            f"e.g. 10,10,2), got {text!r}"
        )
    return layers


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["rule.lr=1e-4", "world.track=oval"]`` -> dotted overrides; values are read as TOML
    (numbers, booleans, ``[10, 2]``), anything that is not valid TOML as a plain string."""
    return dict(parse_assignment(item, "--set") for item in items)


def build_config(
    config: Path | None = None,
    flags: dict[str, Any] | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """Layer defaults < TOML file < explicit flags < ``--set`` into one validated RunConfig."""
    cfg = RunConfig.from_toml(config) if config is not None else RunConfig()
    overrides = {k: v for k, v in (flags or {}).items() if v is not None}
    overrides.update(parse_set(sets or []))
    layers = overrides.get("network.layers")
    # A new output size with the default readout: one coefficient per output ([1, 2] for 2).
    if layers and "network.readout" not in overrides and len(cfg.network.readout) != layers[-1]:
        overrides["network.readout"] = [1.0, 2.0] if layers[-1] == 2 else [1.0] * layers[-1]
    from sarlearn.agent import check_rule_name

    cfg = cfg.with_overrides(overrides) if overrides else cfg
    check_rule_name(cfg.rule.name)
    return cfg


def preflight(cfg: RunConfig, out: Path | None, record_sensors: bool, err: Console) -> None:
    """Refuse a run too large to hold (ConfigError); warn about settings that cannot work and
    announce the cost of a very long run."""
    from sarlearn.experiments.preflight import ANNOUNCE_STEPS, check_run_size, setting_warnings

    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file; give a folder for the run")
    estimate = check_run_size(cfg, out, record_sensors)
    for line in setting_warnings(cfg):
        err.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    if cfg.steps > ANNOUNCE_STEPS:
        err.print(f"note: {cfg.steps:,} steps: {estimate.describe()}", highlight=False)


def summary_table(summary: dict[str, Any]) -> Table:
    """A short rich table of a run's summary."""

    def fmt(v: Any, spec: str = "") -> str:
        return "–" if v is None else format(v, spec)

    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row(
        "status",
        f"{summary['status']}" + (f" — {summary['message']}" if summary.get("message") else ""),
    )
    t.add_row("rule / track / seed", f"{summary['rule']} / {summary['track']} / {summary['seed']}")
    t.add_row("steps", f"{summary['steps']} of {summary['steps_requested']}")
    t.add_row("steps to success (first passage)", fmt(summary["steps_to_success"]))
    if "settled" in summary:  # summaries written before the settling measures lack them
        window = summary.get("settle_window")
        frac = summary.get("above_threshold_fraction")
        t.add_row(
            "settled (last steps clean)",
            ("yes" if summary["settled"] else "no")
            + (
                f", {frac:.1%} of the last {window} steps above threshold"
                if frac is not None
                else ""
            ),
        )
        t.add_row("settled from step", fmt(summary.get("settled_step")))
        t.add_row("relapses after success", fmt(summary.get("relapses")))
        flips, sat = (
            summary.get("steering_flips_per_1000"),
            summary.get("saturated_steering_fraction"),
        )
        t.add_row(
            "steering flips/1000, saturated",
            f"{fmt(flips, '.0f')}, {fmt(sat, '.1%')}",
        )
        dead = summary.get("dead_units")
        if dead:
            t.add_row(
                "dead units per layer", " ".join(f"{v:.0%}" for v in dead)
                + f" ({summary.get('dead_layers')} wholly saturated)",
            )  # fmt: skip
    t.add_row("mean |e| first 1000", fmt(summary["mean_abs_error_first_1000"], ".3f"))
    t.add_row("mean |e| last 1000", fmt(summary["mean_abs_error_last_1000"], ".3f"))
    t.add_row("off-track steps", fmt(summary["off_track_steps"]))
    t.add_row("steps/s", fmt(summary["steps_per_second"], ",.0f"))
    wc = summary.get("weight_change") or []
    if wc:
        t.add_row("weight change per layer", " ".join(f"{v:.2g}" for v in wc))
    return t


def follow(
    rule: Annotated[str | None, typer.Option(help="Learning rule, or 'reflex' for none.")] = None,
    track: Annotated[
        str | None, typer.Option(help="Built-in track (curvy, circle, ...) or a PNG file.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Control cycles to run.", min=1)] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of weights, world and rule.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    layers: Annotated[
        str | None, typer.Option(help="Neurons per layer, outputs last, e.g. 10,10,2.")
    ] = None,
    inputs: Annotated[str | None, typer.Option(help="Predictors: rows or camera.")] = None,
    out: Annotated[str | None, typer.Option(help="Output folder (default: runs/follow-…).")] = None,
    video: Annotated[bool, typer.Option(help="Also write run.mp4 (or run.gif).")] = False,
    config: Annotated[Path | None, typer.Option(help="TOML config file.")] = None,
    stop_at_success: Annotated[
        bool | None, typer.Option("--stop-at-success", help="End the run once learned.")
    ] = None,
    resume: Annotated[
        Path | None, typer.Option(help="Continue the interrupted run in this folder.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override any config field: a.b=value.")
    ] = None,
    record_sensors: Annotated[
        bool, typer.Option(help="Log every ground sensor in the trace (for replay).")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show the progress bar.")] = True,
) -> None:
    """Run a robot that learns to follow a line; write figures, trace and summary to a folder."""
    from sarlearn.errors import OutputError
    from sarlearn.experiments.run import (
        TERMINATED,
        RunInterrupted,
        run_follow,
        terminate_as_interrupt,
    )

    console = Console()
    err = Console(stderr=True)

    def fail(msg: str, code: int = EXIT_USAGE) -> typer.Exit:
        err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
        return typer.Exit(code)

    flags = {
        "rule.name": rule,
        "world.track": track,
        "steps": steps,
        "seed": seed,
        "rule.lr": lr,
        "world.inputs": inputs,
        "stop_at_success": stop_at_success,
    }
    try:
        if out is not None and not out.strip():
            raise ConfigError("--out is empty; give the run's output folder")
        if layers is not None:
            flags["network.layers"] = parse_layers(layers)
        if resume is not None:
            given = [k for k, v in flags.items() if v is not None]
            if given or config is not None or set_ or out is not None:
                raise ConfigError(
                    "--resume continues the run with its saved config; do not combine it with "
                    "other run options"
                )
            cfg = None
            out_dir: Path | None = resume
        else:
            if inputs is not None and inputs not in ("rows", "camera"):
                raise ConfigError(f"--inputs must be 'rows' or 'camera', got {inputs!r}")
            cfg = build_config(config, flags, set_ or [])
            out_dir = Path(out) if out is not None else None
            preflight(cfg, out_dir, record_sensors, err)
    except (ConfigError, TrackError) as exc:
        raise fail(str(exc)) from None

    try:
        with terminate_as_interrupt():
            summary = run_follow(
                cfg,
                out_dir,
                progress=progress,
                resume=resume is not None,
                video=video,
                record_ground=record_sensors,
                console=console,
            )
    except (ConfigError, TrackError, OutputError) as exc:
        raise fail(str(exc)) from None
    except RunInterrupted as exc:
        console.print(summary_table(exc.summary))
        err.print(
            f"[yellow]interrupted[/] — outputs in {exc.out_dir}; continue with "
            f"`sarlearn follow --resume {exc.out_dir}`",
            highlight=False,
            soft_wrap=True,
        )
        terminated = exc.summary.get("message") == TERMINATED
        raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:  # before the run had started: nothing written
        err.print("[yellow]interrupted[/] before the run started", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OSError as exc:  # the disk filled up, the folder became read-only, ...
        notes = " ".join(getattr(exc, "__notes__", []))
        raise fail(
            f"cannot write the run's outputs: {exc.strerror or exc}"
            + (f" ({notes}; free some space, then continue with --resume)" if notes else "")
        ) from None
    except Exception as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        raise fail(
            f"the run crashed: {type(exc).__name__}: {exc}" + (f" ({notes})" if notes else ""),
            EXIT_FAILED,
        ) from None

    console.print(summary_table(summary))
    if summary["status"] in ("diverged", "off_track"):
        err.print(
            f"[yellow]{summary['status']}:[/] {summary['message']}", highlight=False, soft_wrap=True
        )
    console.print(f"outputs in [bold]{summary['out_dir']}[/]", highlight=False, soft_wrap=True)
