"""`sarlearn follow`: one closed-loop run with progress bar, figures, trace and summary.

Options are layered: the defaults of :mod:`sarlearn.config` < ``--config FILE.toml`` <
explicit flags < ``--set a.b=value``. Bad options end with a one-line error and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sarlearn.cli.checks import check_output_path
from sarlearn.cli.options import (
    ConfigOption,
    FreezeOption,
    LayersOption,
    LoadOption,
    LrOption,
    OutOption,
    ProgressOption,
    ResumeOption,
    RuleOption,
    SeedOption,
    SetOption,
    StepsOption,
    StopAtSuccessOption,
    load_path,
    run_flags,
)
from sarlearn.cli.signals import terminated as sigterm_received
from sarlearn.config import ConfigError, RunConfig, parse_assignment, read_toml
from sarlearn.config import preset as preset_overrides
from sarlearn.errors import ShapeError, TrackError

if TYPE_CHECKING:  # rich is imported where it is used: the sweep needs none of it
    from rich.console import Console
    from rich.table import Table

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
    base: dict[str, Any] | None = None,
) -> RunConfig:
    """Layer defaults < ``base`` (dotted overrides, e.g. :func:`loaded_defaults`) < TOML file
    < explicit flags < ``--set`` into one validated RunConfig."""
    if base:
        cfg = RunConfig().with_overrides(base)
        if config is not None:
            cfg = cfg.with_overrides(_dotted(read_toml(config, "config file")))
    else:
        cfg = RunConfig.from_toml(config) if config is not None else RunConfig()
    overrides = {k: v for k, v in (flags or {}).items() if v is not None}
    overrides.update(parse_set(sets or []))
    from sarlearn.agent import check_rule_name

    cfg = cfg.with_overrides(overrides) if overrides else cfg
    check_rule_name(cfg.rule.name)
    return with_saved_step(cfg)


def preflight(cfg: RunConfig, out: Path | None, record_sensors: bool, err: Console) -> None:
    """Refuse a run too large to hold (ConfigError); warn about settings that cannot work and
    announce the cost of a very long run."""
    from sarlearn.runs.preflight import ANNOUNCE_STEPS, check_run_size, setting_warnings

    if out is not None:
        check_output_path(out, "--out", what="the run folder")  # too long, read-only, ...
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is an existing file; give a folder for the run")
    estimate = check_run_size(cfg, out, record_sensors)
    for line in setting_warnings(cfg):
        err.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    if cfg.steps > ANNOUNCE_STEPS:
        err.print(f"note: {cfg.steps:,} steps: {estimate.describe()}", highlight=False)


def _dotted(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"rule": {"lr": 1}}`` -> ``{"rule.lr": 1}`` (sections only; values stay whole)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and key in _SECTIONS.get(prefix.rstrip("."), ()):
            out.update(_dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


#: Config sections (by parent path) that TOML files give as tables.
_SECTIONS = {
    "": ("rule", "network", "filters", "world"),
    "rule": ("relevance",),
    "world": ("camera", "realism"),
}


def loaded_defaults(path: Path) -> dict[str, Any]:
    """The config a saved network implies, as dotted overrides: network shape and dtype, and
    for a file written by a run (``ClosedLoopAgent.save``) its rule and filter bank too. With
    ``--load`` these replace the defaults; a TOML file, flags and ``--set`` still win (and a
    network that then does not fit is an error naming both shapes)."""
    from sarlearn.agent import saved_network_config

    saved = saved_network_config(path)
    out: dict[str, Any] = {
        "network.layers": list(saved["layers"]),
        "network.activation": saved["activation"],
        "network.bias": bool(saved["bias"]),
        "dtype": saved["dtype"],
    }
    if "readout" in saved:
        out["network.readout"] = list(saved["readout"])
    if "filters" in saved:
        out.update({f"filters.{k}": v for k, v in saved["filters"].items()})
    cap = saved.get("input_max_norm")
    out["network.input_max_norm"] = float("inf") if cap is None else cap
    n_pred, rows = saved.get("n_predictors"), RunConfig().world
    full = len(rows.predictor_distances) * rows.predictors_per_row
    if n_pred in (full, full // 2):  # rows of the default world: raw or mirrored
        out["world.predictor_mode"] = "raw" if n_pred == full else "mirror"
    rule = saved.get("rule")
    if rule:
        out["rule.name"] = rule["name"]
        out["rule.lr"] = rule["lr"]
        out["rule.layer_lr_scale"] = rule["layer_lr_scale"]
        out.update({f"rule.relevance.{k}": v for k, v in rule["relevance"].items()})
    return out


#: The rule's step options a saved network brings back with ``--load`` (same rule only), and
#: those of them where a saved None means unbounded.
STEP_KEYS = (
    "step_norm",
    "slope_gate",
    "weight_bound",
    "hidden_weight_bound",
    "hidden_bound_scaling",
)
BOUND_KEYS = ("weight_bound", "hidden_weight_bound")


def with_saved_step(cfg: RunConfig) -> RunConfig:
    """``cfg`` with the step options of the network it loads (``cfg.load``) where it leaves
    them None and runs the rule that saved it: a network keeps learning with the bounds it
    learnt under, as it keeps its readout (the output bound and the readout go together,
    RunConfig.readout). A saved unbounded bound becomes inf (None would be the default)."""
    if cfg.load is None:
        return cfg
    from sarlearn.agent import saved_network_config

    rule = saved_network_config(cfg.load).get("rule")
    if not rule or rule["name"] != cfg.rule.name:
        return cfg
    update: dict[str, Any] = {}
    for key in STEP_KEYS:
        if key in rule and getattr(cfg.rule, key) is None:
            value = rule[key]
            update[f"rule.{key}"] = float("inf") if value is None and key in BOUND_KEYS else value
    return cfg.with_overrides(update) if update else cfg


def summary_table(summary: dict[str, Any]) -> Table:
    """A short rich table of a run's summary."""
    from rich.table import Table

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
        t.add_row("clean from step (to the end)", fmt(summary.get("settled_step")))
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
    loaded = summary.get("loaded")
    if loaded:
        frozen = " (frozen)" if summary.get("frozen") else ""
        t.add_row("loaded", f"{loaded['path']}{frozen} sha256 {loaded['sha256'][:12]}…")
    elif summary.get("frozen"):
        t.add_row("frozen", "yes (no learning)")
    return t


def follow(
    rule: RuleOption = None,
    track: Annotated[
        str | None, typer.Option(help="Built-in track (curvy, circle, ...) or a PNG file.")
    ] = None,
    steps: StepsOption = None,
    seed: SeedOption = None,
    lr: LrOption = None,
    layers: LayersOption = None,
    inputs: Annotated[str | None, typer.Option(help="Predictors: rows or camera.")] = None,
    realism: Annotated[
        str | None,
        typer.Option(help="World realism preset: off or realistic (noise, lag, ...; numpy loop)."),
    ] = None,
    out: OutOption = None,
    video: Annotated[bool, typer.Option(help="Also write run.mp4 (or run.gif).")] = False,
    config: ConfigOption = None,
    preset: Annotated[
        str | None,
        typer.Option(help="Named configuration under the file and flags: relevance-only-shallow."),
    ] = None,
    stop_at_success: StopAtSuccessOption = None,
    resume: ResumeOption = None,
    set_: SetOption = None,
    record_sensors: Annotated[
        bool, typer.Option(help="Log every ground sensor in the trace (for replay).")
    ] = False,
    trace_every: Annotated[
        int,
        typer.Option(help="Keep the trace row of every n-th step (0: no trace.parquet).", min=0),
    ] = 1,
    progress: ProgressOption = True,
    load: LoadOption = None,
    freeze: FreezeOption = False,
    live: Annotated[
        bool, typer.Option("--live", help="Serve a live view of the run on 127.0.0.1.")
    ] = False,
    live_port: Annotated[
        int, typer.Option(help="Port of the live view (0: any free port).", min=0, max=65535)
    ] = 0,
) -> None:
    """Run a robot that learns to follow a line; write figures, trace and summary to a folder."""
    from rich.console import Console

    from sarlearn.errors import OutputError
    from sarlearn.runs.run import (
        TERMINATED,
        RunInterrupted,
        default_out_dir,
        run_follow,
        terminate_as_interrupt,
    )

    console = Console()
    err = Console(stderr=True)

    def fail(msg: str, code: int = EXIT_USAGE) -> typer.Exit:
        err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
        return typer.Exit(code)

    flags = run_flags(rule, track, steps, seed, lr, inputs, stop_at_success, freeze)
    flags["world.realism.preset"] = realism
    base: dict[str, Any] | None = None
    try:
        if out is not None and not out.strip():
            raise ConfigError("--out is empty; give the run's output folder")
        if layers is not None:
            flags["network.layers"] = parse_layers(layers)
        if resume is not None:
            given = [k for k, v in flags.items() if v is not None]
            others = (config, out, load, preset)
            if given or set_ or any(o is not None for o in others):
                raise ConfigError(
                    "--resume continues the run with its saved config; do not combine it with "
                    "other run options"
                )
            cfg = None
            out_dir: Path | None = resume
        else:
            if inputs is not None and inputs not in ("rows", "camera"):
                raise ConfigError(f"--inputs must be 'rows' or 'camera', got {inputs!r}")
            if preset is not None:
                base = preset_overrides(preset)
            if load is not None:
                load = load_path(load)
                flags["load"] = str(load.resolve())
                base = {**(base or {}), **loaded_defaults(load)}
            cfg = build_config(config, flags, set_ or [], base=base)
            out_dir = Path(out) if out is not None else None
            preflight(cfg, out_dir, record_sensors, err)
    except (ConfigError, TrackError, ShapeError) as exc:
        raise fail(str(exc)) from None

    view = None
    if live:
        try:
            view = _start_live(cfg if cfg is not None else _saved_config(out_dir), live_port)
        except ConfigError as exc:
            raise fail(str(exc)) from None
        console.print(f"live view: [bold]{view.url}[/]", highlight=False, soft_wrap=True)

    if out_dir is None and cfg is not None:
        out_dir = default_out_dir(cfg)  # named now, so that an interrupt can name it
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
                on_records=view.observe if view is not None else None,
                trace_every=trace_every,
            )
    except (ConfigError, TrackError, OutputError, ShapeError) as exc:
        _end_live(view, "failed", str(exc))
        raise fail(str(exc)) from None
    except RunInterrupted as exc:
        _end_live(view, "interrupted", "")
        console.print(summary_table(exc.summary))
        err.print(
            f"[yellow]interrupted[/] — outputs in {exc.out_dir}; continue with "
            f"`sarlearn follow --resume {exc.out_dir}`",
            highlight=False,
            soft_wrap=True,
        )
        terminated = exc.summary.get("message") == TERMINATED
        raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
    except KeyboardInterrupt as exc:  # before the loop, or while the final outputs are written
        code = EXIT_TERMINATED if sigterm_received() or str(exc) == TERMINATED else EXIT_INTERRUPTED
        what = "terminated (SIGTERM)" if code == EXIT_TERMINATED else "interrupted"
        folder = out_dir
        if folder is not None and folder.is_dir() and any(folder.iterdir()):
            err.print(
                f"[yellow]{what}[/] before the run's outputs were complete; continue with "
                f"`sarlearn follow --resume {folder}`",
                highlight=False,
                soft_wrap=True,
            )
        else:
            err.print(f"[yellow]{what}[/] before the run started", highlight=False)
        raise typer.Exit(code) from None
    except OSError as exc:  # the disk filled up, the folder became read-only, ...
        notes = " ".join(getattr(exc, "__notes__", []))
        started = out_dir is not None and out_dir.is_dir() and any(out_dir.iterdir())
        hint = (
            f"free some space, then continue with `sarlearn follow --resume {out_dir}`"
            if started
            else "free some space, then run it again"
        )
        raise fail(
            f"cannot write the run's outputs: {exc.strerror or exc} ("
            + (f"{notes}; " if notes else "")
            + f"{hint})"
        ) from None
    except Exception as exc:
        _end_live(view, "failed", f"{type(exc).__name__}: {exc}")
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
    report = Path(summary["out_dir"]) / "report.html"
    _end_live(view, summary["status"], summary.get("message", ""))
    if report.is_file():
        console.print(f"report: {report.resolve().as_uri()}", highlight=False, soft_wrap=True)


def _saved_config(out: Path | None) -> RunConfig:
    from sarlearn.runs.run import load_run_config

    return load_run_config(out) if out is not None else RunConfig()


def _start_live(cfg: RunConfig, port: int) -> Any:
    """Build the live view of ``cfg``'s run and start serving it."""
    from sarlearn.runs.live import LiveView
    from sarlearn.runs.run import track_label
    from sarlearn.stages.world.tracks import load_track

    w = cfg.world
    track = load_track(
        w.track, arena=w.arena, seed=w.track_seed, resolution=w.resolution, line_width=w.line_width
    )
    uses = cfg.rule.name != "reflex"
    if uses:
        from sarlearn.stages.rules import RULES

        uses = bool(getattr(RULES.get(cfg.rule.name), "uses_relevance", True))
    view = LiveView(
        track,
        cfg.steps,
        rule=cfg.rule.name,
        track_name=track_label(w.track),
        seed=cfg.seed,
        threshold=cfg.success_threshold,
        window=cfg.success_window,
        relevance=cfg.rule.relevance if cfg.rule.name != "reflex" else None,
        uses_relevance=uses,
        frozen=cfg.freeze,
        port=port,
    )
    view.start()
    return view


def _end_live(view: Any, status: str, message: str) -> None:
    """Show the end on the live page; stop serving once a page has seen it (or soon)."""
    if view is not None:
        view.finish(status, message)
        view.close()
