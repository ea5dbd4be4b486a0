"""Driving a robot in real time: ``sarlearn drive`` and ``sarlearn calibrate``.

The closed loop of :mod:`sarlearn.loop` runs unchanged; what this module adds is what real time
and real hardware need:

- :func:`connect_board`: the ``V`` handshake that waits for an Arduino to boot (opening its
  port resets it) and clears whatever it said before;
- :class:`PacedRobot`: keeps the control period (a steady grid of motor commands), records
  every cycle's interval and the time the cycle's work took (:class:`TimedLoop` puts both in
  the trace), and stops the motors on request;
- :func:`open_pi_robot`, :func:`open_twin_robot`: the Raspberry Pi's hardware, or the same
  classes pointed at a digital twin (:mod:`sarlearn.robots.twin`);
- :func:`run_drive`: :func:`~sarlearn.runs.run.run_follow` on that robot, so a drive
  writes the same folder as a simulated run (summary, trace, figures, report, network,
  checkpoints, resume), plus the cycle timing in the summary;
- :func:`spin_calibration`: the light and dark readings of the two sensors, recorded while
  the robot turns on the spot over the line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.config import RunConfig
from sarlearn.errors import ConfigError
from sarlearn.loop import ClosedLoop
from sarlearn.robots.raspberry_pi import (
    ArduinoGround,
    ArduinoMotors,
    HardwareError,
    RaspberryPiRobot,
    SerialLink,
)
from sarlearn.robots.twin import FIRMWARE_NAME, TwinCamera, read_twin_info

#: The default control period (s): the simulator's ``dt``, 20 Hz.
DEFAULT_PERIOD = 0.05

#: Standard deviations of the floor's readings added to the light level by calibration. The
#: settling criterion judges 5,000 cycles of two sensors, 10,000 readings: at 4 widths a
#: Gaussian blip above the margin (one reading in ~30,000) fails about one judged window in
#: four; at 5 (one in ~3.5 million) almost none. The price: the sensor ignores the first 5 %
#: of the line's darkness at 0.01 noise.
NOISE_MARGIN = 5.0

#: The file ``sarlearn calibrate`` writes and ``sarlearn drive --calibration`` reads.
CALIBRATION_FILE = "calibration.json"

#: The drive's own settings in its run folder (robot, period), read back by ``--resume``.
DRIVE_FILE = "drive.json"


# ---------------------------------------------------------------------- the board


def connect_board(link: SerialLink, timeout: float = 3.0) -> str:
    """Wait until the board answers ``V`` (an Arduino reboots when its port opens) and return
    its answer; lines it sent before are dropped.

    Raises:
        HardwareError: no ``V sarlearn-robot ...`` answer within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        link.send("V")
        try:
            raw = link.port.readline()
        except OSError as exc:
            raise HardwareError(f"the board's port failed during the handshake: {exc}") from None
        line = raw.decode("ascii", errors="replace").strip()
        if line.startswith(f"V {FIRMWARE_NAME}"):
            time.sleep(0.05)  # late answers to repeated V's, then nothing stale is left
            flush = getattr(link.port, "reset_input_buffer", None)
            if flush is not None:
                flush()
            return line
        if line:
            seen.append(line)
    heard = f"; it said {seen[-3:]!r}" if seen else ""
    raise HardwareError(
        f"no answer to V from the board within {timeout:g} s{heard}: is the sarlearn firmware "
        "(firmware/, `make -C firmware upload`) on it, at 115200 baud?"
    )


# ---------------------------------------------------------------------- calibration


def save_calibration(path: str | Path, light: ArrayLike, dark: ArrayLike, **info: Any) -> Path:
    """Write the raw (left, right) readings on the floor and on the line as JSON."""
    from sarlearn.atomic import atomic_write_bytes

    data = {
        "light": [float(v) for v in np.ravel(light)],
        "dark": [float(v) for v in np.ravel(dark)],
        **info,
    }
    return atomic_write_bytes(Path(path), json.dumps(data, indent=2).encode())


def load_calibration(path: str | Path) -> tuple[list[float], list[float]]:
    """The ``(light, dark)`` readings of a calibration file (each ``[left, right]``)."""
    try:
        data = json.loads(Path(path).read_text())
        light = [float(v) for v in data["light"]]
        dark = [float(v) for v in data["dark"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"cannot read the calibration {path}: {exc} (write one with `sarlearn calibrate`)"
        ) from None
    if (
        len(light) != 2
        or len(dark) != 2
        or any(lo == hi for lo, hi in zip(light, dark, strict=True))
    ):
        raise ConfigError(f"calibration {path}: need two different light and dark readings")
    return light, dark


def split_levels(raw: NDArray[np.floating]) -> tuple[float, float]:
    """The (low, high) levels of one sensor's readings: the medians of the readings in the
    lowest and the highest quarter of their range (robust to noise, unlike the extremes, and
    to the readings half on the line's edge that a turn passes through, unlike the halves:
    a fast turn over a thin line gives few readings of its middle)."""
    r = np.asarray(raw, dtype=np.float64)
    lo, span = r.min(), r.max() - r.min()
    return float(np.median(r[r <= lo + 0.25 * span])), float(np.median(r[r >= lo + 0.75 * span]))


def spin_calibration(
    link: SerialLink, cycles: int = 120, period: float = DEFAULT_PERIOD, pwm: int = 30
) -> dict[str, Any]:
    """Turn on the spot over the line for ``cycles`` control periods reading both sensors,
    then stop; return ``light``, ``dark`` (per sensor) and the raw ``samples``.

    The line must cross the sensors' circle (start with the robot on the line). Which level
    is light is decided by the majority: a thin line covers the smaller part of a turn.

    Raises:
        HardwareError: the readings show no contrast (not over the line, sensor unplugged).
    """
    motors = ArduinoMotors(link)
    ground = ArduinoGround(link)
    samples = []
    try:
        for _ in range(int(cycles)):
            link.send(f"M {int(pwm)} {-int(pwm)}")
            answer = link.query("G").split()
            if len(answer) != 3 or answer[0] != "G":
                raise HardwareError(f"the board answered {' '.join(answer)!r} to G")
            samples.append([int(answer[1]), int(answer[2])])
            time.sleep(period)
    finally:
        motors.stop()
    del ground
    raw = np.asarray(samples, dtype=np.float64)
    light, dark = [], []
    for k, side in enumerate(("left", "right")):
        lo, hi = split_levels(raw[:, k])
        if hi - lo < 40:
            raise HardwareError(
                f"the {side} sensor saw no contrast while turning (readings {lo:.0f}..{hi:.0f}): "
                "start with the robot on the line, check the sensor's wiring"
            )
        # The floor is what the sensor sees most of the turn.
        floor_low = float(np.mean(raw[:, k] <= 0.5 * (lo + hi))) >= 0.5
        floor = (
            raw[:, k][raw[:, k] <= 0.5 * (lo + hi)]
            if floor_low
            else raw[:, k][raw[:, k] > 0.5 * (lo + hi)]
        )
        # The light level sits NOISE_MARGIN standard deviations of the floor's readings into
        # the dark side: a bare floor then reads exactly 0, as in the simulator, instead of
        # a noisy reflex error that a sign-based rule would learn from at every step.
        # (A robust spread, the MAD: readings at the line's edge must not widen it.)
        spread = 1.4826 * float(np.median(np.abs(floor - np.median(floor))))
        margin = NOISE_MARGIN * spread
        light.append(lo + margin if floor_low else hi - margin)
        dark.append(hi if floor_low else lo)
    return {"light": light, "dark": dark, "samples": raw.astype(int).tolist()}


# ---------------------------------------------------------------------- pacing and timing


class PacedRobot:
    """A robot whose control cycles start on a steady grid, with every cycle timed.

    Wraps any :class:`~sarlearn.robots.interface.Robot` (built without pacing of its own).
    A cycle starts in :meth:`read_ground`, which waits for the next tick of a grid of
    ``period`` seconds (a late cycle restarts the grid, it never bursts to catch up); the
    sensors are read right after the wait and the motors commanded as soon as the cycle's
    work is done, so the command acts on fresh readings. Each cycle records ``interval``
    (seconds since the previous cycle started) and ``busy`` (seconds from its start to its
    motor command: sensing, camera, learning) and ``latency`` (seconds from its sensor reading
    to its motor command). A busy time above the period is an overrun.

    ``twin`` (a :class:`~sarlearn.robots.twin.TwinCamera`) lets the robot know its pose and
    whether it lost the line, as the simulator does; real hardware has neither. With a twin
    every cycle also logs the **true** reflex error, ``error_gain`` times the difference of
    the ideal darkness under the two sensors at the reading's pose (:attr:`true_errors`).
    """

    population = 1

    def __init__(
        self,
        robot: Any,
        period: float,
        twin: TwinCamera | None = None,
        off_track_after: int = 200,
        clock: Callable[[], float] = time.perf_counter,
        error_gain: float = 50.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not period > 0:
            raise ConfigError(f"the control period must be > 0 s, got {period}")
        self.robot = robot
        self.period = float(period)
        self.twin = twin
        self.off_track_after = int(off_track_after)
        self.clock = clock
        self.sleep = sleep
        self.interval = float("nan")
        """Seconds between the starts of the last two cycles."""
        self.busy = float("nan")
        """Seconds from the last cycle's start to its motor command."""
        self.latency = float("nan")
        """Seconds from the last cycle's sensor reading to its motor command."""
        self._start: float | None = None
        self._read = 0.0
        self._next: float | None = None
        self._state: dict[str, Any] | None = None
        self._lost = 0
        self.error_gain = float(error_gain)
        self.true_errors: list[float] = []
        """The true reflex error of every cycle of this session (with a twin only)."""

    @property
    def track(self) -> Any:
        """The robot's track when it has one (never: the figures draw the path alone)."""
        return getattr(self.robot, "track", None)

    def _tick(self) -> None:
        """Wait for the next tick of the grid and start a cycle."""
        now = self.clock()
        if self._next is not None and now < self._next:
            self.sleep(self._next - now)
            now = self.clock()
        self.interval = float("nan") if self._start is None else now - self._start
        nxt = (self._next if self._next is not None else now) + self.period
        self._next = nxt if nxt > now else now + self.period
        self._start = now

    def read_ground(self) -> NDArray[np.floating]:
        """Start a cycle on the next tick, then read the reflex pair ``(1, 2)``; with a twin,
        first fetch its pose for this cycle (before the reading, so that this extra round trip
        does not delay the command computed from the reading)."""
        self._tick()
        if self.twin is not None:
            self._state = self.twin.state()
            self._lost = 0 if self._state["on_line"] else self._lost + 1
            ideal = self._state.get("reflex_darkness")
            if ideal is not None:
                self.true_errors.append(self.error_gain * (ideal[0] - ideal[1]))
        self._read = self.clock()
        return self.robot.read_ground()

    def grab_frame(self) -> NDArray[np.floating] | None:
        """The camera frame ``(1, H, W)``."""
        return self.robot.grab_frame()

    @property
    def pose(self) -> NDArray[np.float64] | None:
        """``(1, 3)`` the twin's pose at the last reading (None on real hardware)."""
        return None if self._state is None else np.asarray([self._state["pose"]])

    @property
    def off_track(self) -> NDArray[np.bool_] | None:
        """``(1,)`` the twin's robot left the arena or its sensors lost the line for
        ``off_track_after`` cycles (None on real hardware)."""
        if self._state is None:
            return None
        lost = not self._state["inside"] or self._lost >= self.off_track_after
        return np.array([lost])

    def set_wheel_speeds(self, left: ArrayLike, right: ArrayLike) -> None:
        """Command the wheels now; the cycle's work ends here."""
        self.robot.set_wheel_speeds(left, right)
        if self._start is not None:
            now = self.clock()
            self.busy = now - self._start
            self.latency = now - self._read

    def stop(self) -> None:
        """Stop the motors now."""
        self.robot.motors.stop()

    def close(self) -> None:
        """Stop the motors, close the camera and the port."""
        try:
            self.robot.close()
        finally:
            if self.twin is not None:
                self.twin.close()


class TimedLoop(ClosedLoop):
    """The closed loop, plus each cycle's ``cycle_seconds`` (interval between the starts of
    cycles), ``busy_seconds`` (the cycle's work) and ``latency_seconds`` (from the sensor
    reading to the motor command) from its :class:`PacedRobot` in the records.

    Arguments as :class:`~sarlearn.loop.ClosedLoop`; its robot must be a :class:`PacedRobot`.
    """

    #: The times of a cycle, as keys of the records and of :attr:`cycle_log`.
    CYCLE_TIMES: tuple[str, ...] = ("cycle_seconds", "busy_seconds", "latency_seconds")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The run keeps a bounded trace, so the summary's timing reads this log (a few
        # numbers per cycle; it travels with the loop's checkpoints).
        self.cycle_log: dict[str, list[float]] = {key: [] for key in self.CYCLE_TIMES}
        """Every cycle's times so far, one list per key of :attr:`CYCLE_TIMES`."""

    def step(self) -> dict[str, NDArray[Any]]:
        """One control cycle, timed."""
        rec = super().step()
        robot: PacedRobot = self.robot  # type: ignore[assignment]
        times = (robot.interval, robot.busy, robot.latency)
        for key, value in zip(self.CYCLE_TIMES, times, strict=True):
            rec[key] = np.array([value])
            self.cycle_log[key].append(float(value))
        return rec


#: Cycles per chunk of a drive. The run looks for a lost line between chunks, so a robot that
#: has lost it drives on for at most this many cycles (half a second at 20 Hz), not the
#: simulator's 250.
DRIVE_CHUNK = 10


def timing_summary(
    cycle: ArrayLike, busy: ArrayLike, period: float, latency: ArrayLike | None = None
) -> dict[str, Any]:
    """Statistics of a drive's cycles: intervals, jitter (interval - period), the work's time,
    overruns (work longer than the period), the budget left in a period and the latency from
    reading to command; ``warning`` is a sentence when cycles overran, else None."""
    iv = np.asarray(cycle, dtype=np.float64)
    iv = iv[np.isfinite(iv)]
    work = np.asarray(busy, dtype=np.float64)
    work = work[np.isfinite(work)]
    out: dict[str, Any] = {"period": period, "cycles": int(iv.size), "warning": None}
    if not iv.size or not work.size:
        return out
    jitter = iv - period
    overruns = int(np.sum(work > period))
    out.update(
        interval_median=float(np.median(iv)),
        interval_p99=float(np.percentile(iv, 99)),
        interval_max=float(iv.max()),
        jitter_std=float(jitter.std()),
        jitter_abs_p99=float(np.percentile(np.abs(jitter), 99)),
        busy_median=float(np.median(work)),
        busy_p99=float(np.percentile(work, 99)),
        budget_left_median=float(period - np.median(work)),
        overruns=overruns,
        overrun_fraction=overruns / work.size,
    )
    lat = np.asarray([] if latency is None else latency, dtype=np.float64)
    lat = lat[np.isfinite(lat)]
    if lat.size:
        out.update(latency_median=float(np.median(lat)), latency_p99=float(np.percentile(lat, 99)))
    if overruns:
        out["warning"] = (
            f"{overruns} of {work.size} cycles overran the {period:g} s period (work up to "
            f"{work.max():.4f} s): the loop ran slower than asked; use a longer --period or a "
            "smaller network"
        )
    return out


def true_error_summary(errors: ArrayLike, cfg: RunConfig) -> dict[str, Any]:
    """The success criterion judged on the **true** reflex error (a twin's ground truth)
    of one drive session's cycles: ``steps``, ``steps_to_success``, ``settled_step``,
    ``settled`` and the mean |e| of the last 1,000 cycles. Beside the sensed error's, it
    says whether the robot really kept the line between its sensors, whatever the noise."""
    from sarlearn.metrics import SuccessCriterion, settled, settled_step, steps_to_success

    e = np.asarray(errors, dtype=np.float64)
    crit = SuccessCriterion.from_config(cfg)
    return {
        "steps": int(e.size),
        "steps_to_success": steps_to_success(e, crit),
        "settled_step": settled_step(e, crit),
        "settled": bool(settled(e, crit)),
        "mean_abs_error_last_1000": float(np.abs(e[-1000:]).mean()) if e.size else None,
    }


# ---------------------------------------------------------------------- opening a robot


def frame_size(cfg: RunConfig) -> tuple[int, int]:
    """``(H, W)`` of the config's camera."""
    return cfg.world.camera.height_px, cfg.world.camera.width


def open_twin_robot(
    folder: str | Path,
    cfg: RunConfig,
    period: float | None = None,
    calibration: tuple[ArrayLike, ArrayLike] | None = None,
    wait: float = 5.0,
    max_speed: float = 120.0,
    trim: float = 0.0,
) -> PacedRobot:
    """The Pi's robot classes connected to the twin serving from ``folder`` (``trim``: the
    motors' gain correction, :class:`~sarlearn.robots.raspberry_pi.ArduinoMotors`).

    ``period`` defaults to the twin's own (a host faster or slower than the twin sees a world
    that moves more or less per cycle than the simulator's ``dt``).

    Raises:
        ConfigError: no twin there, or its camera's frames do not fit ``cfg``.
        HardwareError: the twin does not answer.
    """
    info = read_twin_info(folder, wait=wait)
    if tuple(info["frame_size"]) != frame_size(cfg):
        raise ConfigError(
            f"the twin renders {tuple(info['frame_size'])} frames but the run's camera is "
            f"{frame_size(cfg)}: start the twin with the same world.camera settings"
        )
    link = SerialLink(info["serial"], timeout=0.5)
    camera: TwinCamera | None = None
    try:
        connect_board(link)
        light, dark = calibration if calibration is not None else ((0, 0), (1023, 1023))
        camera = TwinCamera(info["camera"])
        camera.reset()
        pi = RaspberryPiRobot(
            ArduinoGround(link, light, dark),
            ArduinoMotors(link, max_speed=max_speed, trim=trim),
            camera if cfg.world.inputs == "camera" else None,
            period=None,
        )
    except BaseException:
        link.close()
        if camera is not None:
            camera.close()
        raise
    p = float(info["period"]) if period is None else period
    return PacedRobot(
        pi,
        p,
        twin=camera,
        off_track_after=cfg.world.off_track_after,
        error_gain=cfg.world.error_gain,
    )


def open_pi_robot(
    port: str,
    cfg: RunConfig,
    period: float = DEFAULT_PERIOD,
    camera: str = "pi",
    calibration: tuple[ArrayLike, ArrayLike] | None = None,
    max_speed: float = 120.0,
    trim: float = 0.0,
) -> PacedRobot:
    """The Raspberry Pi's hardware: the Arduino on ``port``, the Pi camera (``camera='pi'``)
    or none (``'none'``, the reflex and ground sensors only). ``max_speed`` is the wheel
    speed (units/s) at full PWM, ``trim`` the motors' gain correction."""
    if camera not in ("pi", "none"):
        raise ConfigError(f"--camera must be 'pi' or 'none', got {camera!r}")
    robot = RaspberryPiRobot.open(
        port, camera=camera == "pi", frame_size=frame_size(cfg), max_speed=max_speed, period=None
    )
    try:
        robot.motors.trim = float(trim)
        connect_board(robot.motors.link)
        if calibration is not None:
            robot.ground.light, robot.ground.dark = calibration
    except BaseException:
        robot.close()
        raise
    return PacedRobot(robot, period)


def check_drivable(cfg: RunConfig, has_camera: bool) -> None:
    """A robot has two ground sensors and perhaps a camera: refuse what it cannot give."""
    if cfg.world.inputs == "rows" and cfg.rule.name != "reflex":
        raise ConfigError(
            "a robot has no rows of ground sensors: drive with --inputs camera (the default) "
            "or --rule reflex"
        )
    if cfg.world.inputs == "camera" and not has_camera:
        raise ConfigError(
            "camera inputs need a camera: give --camera pi (the reflex alone drives without "
            "one: --rule reflex --inputs rows)"
        )


# ---------------------------------------------------------------------- the drive


def run_drive(
    cfg: RunConfig | None,
    robot: PacedRobot,
    out_dir: str | Path | None = None,
    *,
    resume: bool = False,
    progress: bool = False,
    console: Any = None,
    figures: bool = True,
) -> dict[str, Any]:
    """Run the closed loop on ``robot`` at its period and write the run folder.

    The same as :func:`~sarlearn.runs.run.run_follow` (and with its outputs), with the
    motors stopped as soon as the loop ends for any reason, and the summary's ``timing``
    (:func:`timing_summary`). The caller closes the robot.
    """
    from sarlearn.runs.run import run_follow

    used: dict[str, RunConfig] = {}

    def make_loop(c: RunConfig) -> ClosedLoop:
        used["cfg"] = c
        return TimedLoop.from_config(c, robot=robot)

    def extra(loop: Any) -> dict[str, Any]:
        log = loop.cycle_log
        out: dict[str, Any] = {
            "timing": timing_summary(
                log["cycle_seconds"], log["busy_seconds"], robot.period, log["latency_seconds"]
            )
        }
        if robot.true_errors and "cfg" in used:
            out["true_error"] = true_error_summary(robot.true_errors, used["cfg"])
        return out

    def before_checkpoint(records: dict[str, Any], loop: Any) -> None:
        # The run writes its checkpoint and a provisional summary after this chunk: a pause
        # of up to a second or more with no control cycle. A robot left running on its last
        # command drives blind meanwhile (measured against the twin: 1.25 s at step 1,000,
        # off the line), so it stands still while the files are written and starts again
        # with the next cycle.
        c = used.get("cfg")
        if c is not None and loop.t % c.checkpoint_every == 0 and loop.t < c.steps:
            robot.stop()

    return run_follow(
        cfg,
        out_dir,
        progress=progress,
        resume=resume,
        console=console,
        figures=figures,
        make_loop=make_loop,
        chunk=DRIVE_CHUNK,
        on_end=robot.stop,
        extra_summary=extra,
        on_records=before_checkpoint,
    )


__all__ = [
    "CALIBRATION_FILE",
    "DEFAULT_PERIOD",
    "DRIVE_CHUNK",
    "DRIVE_FILE",
    "PacedRobot",
    "TimedLoop",
    "check_drivable",
    "connect_board",
    "load_calibration",
    "open_pi_robot",
    "open_twin_robot",
    "run_drive",
    "save_calibration",
    "spin_calibration",
    "split_levels",
    "timing_summary",
    "true_error_summary",
]
