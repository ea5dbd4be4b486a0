"""`sarlearn twin`, `sarlearn calibrate` and `sarlearn drive`: the real robot and its twin.

- ``twin`` serves a simulated robot on a pseudo-terminal (the Arduino's protocol) and a
  loopback HTTP port (the camera) until SIGTERM or Ctrl-C;
- ``calibrate`` turns the robot on the spot over the line and writes the light and dark
  readings of its two sensors;
- ``drive`` runs the closed loop on the Raspberry Pi's hardware (``--port``) or on a twin
  (``--twin``) at a fixed control period, and writes the same folder as ``sarlearn follow``.
"""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from sarlearn.cli.follow import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    build_config,
    loaded_defaults,
    parse_layers,
    summary_table,
)
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
from sarlearn.config import ConfigError
from sarlearn.errors import SarlearnError


def _fail(msg: str, code: int = EXIT_USAGE) -> typer.Exit:
    from rich.console import Console

    Console(stderr=True).print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def twin(
    dir_: Annotated[
        Path, typer.Option("--dir", help="Folder receiving twin.json (port and camera).")
    ],
    track: Annotated[str | None, typer.Option(help="Built-in track or a PNG file.")] = None,
    period: Annotated[
        float | None,
        typer.Option(help="Wall seconds per control cycle world.dt (default: real time).", min=0),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the start place and the noise.")] = 0,
    lag: Annotated[float, typer.Option(help="Motor time constant (simulated s).", min=0)] = 0.05,
    deadband: Annotated[int, typer.Option(help="PWM below which wheels stand.", min=0)] = 12,
    noise: Annotated[float, typer.Option(help="Sensor noise (ADC counts, s.d.).", min=0)] = 6.0,
    light: Annotated[float, typer.Option(help="Raw reading on the floor.")] = 150.0,
    dark: Annotated[float, typer.Option(help="Raw reading on the line.")] = 850.0,
    realism: Annotated[
        str | None,
        typer.Option(
            help="Take the motors and sensors from the world's realism options instead of "
            "--lag/--deadband/--noise: a preset ('realistic') or, with 'config', "
            "world.realism of --config/--set."
        ),
    ] = None,
    config: Annotated[Path | None, typer.Option(help="TOML config (its world is used).")] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a config field: a.b=value.")
    ] = None,
) -> None:
    """Serve a simulated robot as the Arduino (a pseudo-terminal) and camera (HTTP) until
    stopped (SIGTERM or Ctrl-C)."""
    from sarlearn.errors import TrackError
    from sarlearn.robots.twin import TWIN_FILE, Twin, TwinServer
    from sarlearn.robots.twin_physics import BoardPhysics

    try:
        flags = {"world.track": track}
        if realism not in (None, "config"):
            flags["world.realism.preset"] = realism
        cfg = build_config(config, flags, set_ or [])
        if realism is None:
            if cfg.world.realism.resolve().active:
                raise ConfigError(
                    "world.realism is set: give --realism config to build the twin's motors "
                    "and sensors from it (the board, not the simulated world, applies them)"
                )
            physics = BoardPhysics(
                tau=lag, deadband=deadband, noise=noise, light=light, dark=dark, seed=seed
            )
        else:
            physics = BoardPhysics.from_realism(
                cfg.world.realism.resolve(), light=light, dark=dark, seed=seed
            )
            # the board applies the motor and sensor effects; the world stays ideal
            cfg = cfg.with_overrides({"world.realism": {}})
        server = TwinServer(Twin(cfg.world, physics, period=period, seed=seed), dir_)
    except (ConfigError, TrackError) as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot start the twin: {exc}", EXIT_FAILED) from None

    def stop(signum: int, frame: Any) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    info = server.info
    typer.echo(
        f"twin of {info['track']}: serial {info['serial']}, camera {info['camera']}, "
        f"{info['period']:g} s per cycle; details in {dir_ / TWIN_FILE}",
    )
    server.run()
    typer.echo("twin stopped")


def _robot_options(twin_dir: Path | None, port: str | None) -> None:
    if (twin_dir is None) == (port is None):
        raise ConfigError("give the robot: --port PORT (the Arduino) or --twin DIR (a twin)")


def calibrate(
    port: Annotated[str | None, typer.Option(help="The Arduino's serial port.")] = None,
    twin_dir: Annotated[Path | None, typer.Option("--twin", help="A twin's folder.")] = None,
    out: Annotated[Path, typer.Option(help="Calibration file to write.")] = Path(
        "calibration.json"
    ),
    cycles: Annotated[int, typer.Option(help="Readings taken while turning.", min=10)] = 120,
    period: Annotated[
        float | None, typer.Option(help="Seconds between readings (default 0.05 or the twin's).")
    ] = None,
    pwm: Annotated[int, typer.Option(help="PWM of the turn (slow enough to see the line).")] = 30,
) -> None:
    """Turn on the spot over the line and record the light and dark readings of both sensors.

    Put the robot on the line first; a twin's robot is put back at its start afterwards."""
    from sarlearn.robots.drive import DEFAULT_PERIOD, connect_board, save_calibration
    from sarlearn.robots.raspberry_pi import SerialLink
    from sarlearn.robots.twin import TwinCamera, read_twin_info

    try:
        _robot_options(twin_dir, port)
        info = read_twin_info(twin_dir, wait=5.0) if twin_dir is not None else None
        where = info["serial"] if info is not None else str(port)
        link = SerialLink(where, timeout=0.5)
    except SarlearnError as exc:
        raise _fail(str(exc)) from None
    if period is None:
        period = float(info["period"]) if info is not None else DEFAULT_PERIOD
    from sarlearn.robots.drive import spin_calibration

    cam = TwinCamera(info["camera"]) if info is not None else None
    try:
        connect_board(link)
        if cam is not None:
            cam.reset()  # a twin's robot is put on the line, as a user would
        result = spin_calibration(link, cycles=cycles, period=period, pwm=pwm)
        if cam is not None:
            cam.reset()
    except SarlearnError as exc:
        raise _fail(str(exc), EXIT_FAILED) from None
    except KeyboardInterrupt:
        raise _fail("interrupted; the motors were stopped", EXIT_INTERRUPTED) from None
    finally:
        with contextlib.suppress(Exception):
            link.send("S")
        link.close()
        if cam is not None:
            cam.close()
    save_calibration(
        out,
        result["light"],
        result["dark"],
        robot=f"twin {twin_dir}" if twin_dir is not None else f"port {port}",
        cycles=cycles,
        samples=result["samples"],
    )
    typer.echo(
        f"light {result['light'][0]:.0f} / {result['light'][1]:.0f}, dark "
        f"{result['dark'][0]:.0f} / {result['dark'][1]:.0f} (left / right); written to {out}"
    )


def drive(
    port: Annotated[str | None, typer.Option(help="The Arduino's serial port (on the Pi).")] = None,
    camera: Annotated[str, typer.Option(help="With --port: 'pi' (picamera2) or 'none'.")] = "pi",
    twin_dir: Annotated[
        Path | None, typer.Option("--twin", help="Drive the twin serving from this folder.")
    ] = None,
    period: Annotated[
        float | None,
        typer.Option(help="Control period in s (default 0.05, or the twin's own).", min=0),
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option(help="The file of `sarlearn calibrate`.")
    ] = None,
    max_speed: Annotated[
        float, typer.Option(help="Wheel speed (units/s) at full PWM (255).", min=0)
    ] = 120.0,
    trim: Annotated[
        float | None,
        typer.Option(
            help="Motors' gain difference to undo (left 1 + m/2, right 1 - m/2; "
            "docs/robot.md, 'Trim'). Default 0, or the resumed drive's."
        ),
    ] = None,
    rule: RuleOption = None,
    track: Annotated[str | None, typer.Option(help="Track name (a label; a twin's own).")] = None,
    steps: StepsOption = None,
    seed: SeedOption = None,
    lr: LrOption = None,
    layers: LayersOption = None,
    inputs: Annotated[str | None, typer.Option(help="camera (default) or rows.")] = None,
    out: OutOption = None,
    config: ConfigOption = None,
    stop_at_success: StopAtSuccessOption = None,
    resume: ResumeOption = None,
    set_: SetOption = None,
    load: LoadOption = None,
    freeze: FreezeOption = False,
    progress: ProgressOption = True,
) -> None:
    """Drive a robot (the Pi's hardware, or a twin) in real time: the closed loop of
    `sarlearn follow` at a fixed control period, with the same outputs and the cycle timing."""
    from rich.console import Console

    from sarlearn.errors import OutputError, ShapeError, TrackError
    from sarlearn.robots import drive as drv
    from sarlearn.robots.twin import read_twin_info
    from sarlearn.runs.run import (
        TERMINATED,
        RunInterrupted,
        default_out_dir,
        load_run_config,
        terminate_as_interrupt,
    )

    console, err = Console(), Console(stderr=True)
    flags = run_flags(rule, track, steps, seed, lr, inputs, stop_at_success, freeze)
    try:
        _robot_options(twin_dir, port)
        info = read_twin_info(twin_dir, wait=5.0) if twin_dir is not None else None
        if resume is not None:
            given = [k for k, v in flags.items() if v is not None]
            if given or config is not None or set_ or out is not None or load is not None:
                raise ConfigError(
                    "--resume continues the drive with its saved config; give only the robot "
                    "(--port/--twin, --calibration, --period)"
                )
            cfg = load_run_config(resume)
            out_dir = resume
            saved = _read_drive_file(resume)
            if period is None:
                period = saved.get("period")
            if calibration is None and saved.get("calibration"):
                calibration = Path(saved["calibration"])
            if trim is None:
                trim = saved.get("trim")
        else:
            if layers is not None:
                flags["network.layers"] = parse_layers(layers)
            if flags["world.inputs"] is None:
                flags["world.inputs"] = "camera"
            if flags["world.track"] is None and info is not None:
                flags["world.track"] = info["track"]
            base = None
            if load is not None:
                load = load_path(load)
                flags["load"] = str(load.resolve())
                base = loaded_defaults(load)
            cfg = build_config(config, flags, set_ or [], base=base)
            if out is not None:
                out_dir = Path(out)
            else:
                auto = default_out_dir(cfg)
                out_dir = auto.with_name(auto.name.replace("follow-", "drive-", 1))
        has_camera = twin_dir is not None or camera == "pi"
        drv.check_drivable(cfg, has_camera)
        cal = drv.load_calibration(calibration) if calibration is not None else None
        trim = 0.0 if trim is None else float(trim)
        if not -1 < trim < 1:
            raise ConfigError(f"--trim must be in (-1, 1), got {trim}")
    except (ConfigError, TrackError, ShapeError) as exc:
        raise _fail(str(exc)) from None
    if cal is None:
        err.print(
            "[yellow]warning:[/] no --calibration: raw readings 0 (light) .. 1023 (dark) "
            "assumed; run `sarlearn calibrate` first",
            highlight=False,
            soft_wrap=True,
        )

    def hang_up(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt("hang-up (SIGHUP): the terminal or the ssh session closed")

    # A closed ssh session must stop the robot too, not leave it to the firmware's watchdog.
    signal.signal(signal.SIGHUP, hang_up)
    # So must Ctrl-C or `kill -INT`, even when the drive was started from a shell that
    # ignores SIGINT (a script's background job): Python then installs no handler of its own.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    robot = None
    try:
        with terminate_as_interrupt():
            if twin_dir is not None:
                robot = drv.open_twin_robot(
                    twin_dir, cfg, period, cal, max_speed=max_speed, trim=trim
                )
            else:
                p = period if period is not None else drv.DEFAULT_PERIOD
                robot = drv.open_pi_robot(str(port), cfg, p, camera, cal, max_speed, trim)
            if info is not None and abs(robot.period - float(info["period"])) > 1e-12:
                err.print(
                    f"[yellow]warning:[/] driving at {robot.period:g} s per cycle but the twin "
                    f"runs {info['period']:g} s per world step: the world moves "
                    f"{robot.period / float(info['period']):.2g}x as far per cycle",
                    highlight=False,
                    soft_wrap=True,
                )
            _write_drive_file(out_dir, robot.period, port, twin_dir, calibration, trim)
            summary = drv.run_drive(
                None if resume is not None else cfg,
                robot,
                out_dir,
                resume=resume is not None,
                progress=progress,
                console=console,
            )
    except RunInterrupted as exc:
        console.print(summary_table(exc.summary))
        _print_timing(exc.summary, console, err)
        err.print(
            f"[yellow]interrupted[/] — motors stopped, outputs in {exc.out_dir}; continue with "
            f"`sarlearn drive --resume {exc.out_dir}` and the robot's options",
            highlight=False,
            soft_wrap=True,
        )
        terminated = exc.summary.get("message") == TERMINATED
        raise typer.Exit(EXIT_TERMINATED if terminated else EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        raise _fail("interrupted before the drive started", EXIT_INTERRUPTED) from None
    except (ConfigError, TrackError, OutputError, ShapeError) as exc:
        raise _fail(str(exc)) from None
    except SarlearnError as exc:  # HardwareError: the board or the twin failed
        raise _fail(str(exc), EXIT_FAILED) from None
    except Exception as exc:
        notes = " ".join(getattr(exc, "__notes__", []))
        raise _fail(
            f"the drive crashed: {type(exc).__name__}: {exc}" + (f" ({notes})" if notes else ""),
            EXIT_FAILED,
        ) from None
    finally:
        if robot is not None:
            with contextlib.suppress(Exception):
                robot.close()  # stops the motors (again) on every way out

    console.print(summary_table(summary))
    _print_timing(summary, console, err)
    if summary["status"] in ("diverged", "off_track"):
        err.print(f"[yellow]{summary['status']}:[/] {summary['message']}", highlight=False)
    console.print(f"outputs in [bold]{summary['out_dir']}[/]", highlight=False, soft_wrap=True)


def _print_timing(summary: dict[str, Any], console: Any, err: Any) -> None:
    t = summary.get("timing") or {}
    if t.get("cycles"):
        console.print(
            f"cycles: period {t['period']:g} s, interval median {t['interval_median']:.4f} s "
            f"(p99 {t['interval_p99']:.4f}), work median {t['busy_median']:.4f} s, "
            f"overruns {t['overruns']}",
            highlight=False,
        )
    if t.get("warning"):
        err.print(f"[yellow]warning:[/] {t['warning']}", highlight=False, soft_wrap=True)
    true = summary.get("true_error")
    if true:  # a twin's ground truth: where the robot really was
        console.print(
            f"true error (the twin's ground truth, {true['steps']} cycles): success at step "
            f"{true['steps_to_success']}, settled {true['settled']} (from step "
            f"{true['settled_step']}), mean |e| of the last 1000 "
            f"{true['mean_abs_error_last_1000']:.3f}",
            highlight=False,
        )


def _write_drive_file(
    out: Path,
    period: float,
    port: str | None,
    twin_dir: Path | None,
    calibration: Path | None,
    trim: float = 0.0,
) -> None:
    from sarlearn.robots.drive import DRIVE_FILE

    out.mkdir(parents=True, exist_ok=True)
    data = {
        "period": period,
        "robot": f"port {port}" if port is not None else f"twin {twin_dir}",
        "calibration": str(calibration.resolve()) if calibration is not None else None,
        "trim": trim,
    }
    (out / DRIVE_FILE).write_text(json.dumps(data, indent=2))


def _read_drive_file(out: Path) -> dict[str, Any]:
    from sarlearn.robots.drive import DRIVE_FILE

    path = out / DRIVE_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}
