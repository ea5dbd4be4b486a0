"""A digital twin of the real robot: the simulator behind the Arduino's serial protocol.

``sarlearn twin`` (:func:`serve_twin`) runs one simulated robot in real time and makes it look
like the hardware to the host:

- the Arduino: the protocol of :mod:`sarlearn.robots.raspberry_pi` (``M``, ``S``, ``G``,
  ``V``), spoken on a new pseudo-terminal, with the firmware's watchdog;
- the camera: frames rendered from the simulator, served over HTTP on 127.0.0.1
  (``/frame`` a float64 ``.npy`` of darkness, ``/frame.png`` for a browser, ``/state`` the
  twin's pose and motors as JSON).

The folder given to it receives ``twin.json`` with the serial port's path and the camera's
address; :func:`open_twin_robot` reads it and builds the same
:class:`~sarlearn.robots.raspberry_pi.RaspberryPiRobot` the Pi uses, with a camera that fetches
the twin's frames. The twin's physics (motor lag and deadband, sensor noise and 10-bit
readings) is :class:`~sarlearn.robots.twin_physics.BoardPhysics`, or any
:class:`~sarlearn.robots.twin_physics.Physics`.

Time: the twin advances the simulation by the wall-clock time elapsed, times
``world.dt / period``: with the default ``period = world.dt`` it runs in real time; a shorter
period runs the world faster, so a host driving at that period sees the same world per cycle.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import math
import os
import select
import socket
import threading
import time
import tty
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from numpy.typing import NDArray

from sarlearn.config import WorldConfig
from sarlearn.errors import ConfigError
from sarlearn.robots.twin_physics import BoardPhysics, Physics
from sarlearn.stages.world.robot import advance
from sarlearn.stages.world.sim import LINE_SEEN, SimWorld

#: The file the twin writes into its folder: serial port, camera address, period.
TWIN_FILE = "twin.json"

#: The firmware's watchdog: motors stop this long (wall seconds) after the last ``M``.
WATCHDOG_S = 0.5

#: The answer to ``V`` of the firmware (``firmware/sarlearn_robot``) and of the twin.
FIRMWARE_NAME = "sarlearn-robot"

#: Longest simulated step of the twin's integration (s): the wheel speeds change within a
#: control cycle (the lag), so a cycle is integrated in a few arcs.
MAX_SUBSTEP = 0.005


class Twin:
    """The simulated robot and its board, without any I/O (the server wraps it).

    Args:
        world: the world's configuration (track, sensors, camera, ``dt``).
        physics: motors and sensors of the board (default :class:`BoardPhysics`).
        period: wall seconds per control cycle ``world.dt`` (default ``world.dt``: real time).
        seed: seed of the start place on the line (``world.random_start``).
        clock: the wall clock (monotonic seconds), replaceable in tests.
    """

    def __init__(
        self,
        world: WorldConfig,
        physics: Physics | None = None,
        period: float | None = None,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        period = world.dt if period is None else float(period)
        if not period > 0:
            raise ConfigError(f"twin: the period must be > 0 s, got {period}")
        self.world = SimWorld(world, population=1, rng=np.random.default_rng(seed), camera=True)
        self.physics: Physics = physics if physics is not None else BoardPhysics()
        self.period = period
        self.scale = world.dt / period
        """Simulated seconds per wall second."""
        self.pose = self.world.start.copy()
        self.speeds = np.zeros(2)
        self.pwm = np.zeros(2, dtype=np.int64)
        self.sim_time = 0.0
        self.clock = clock
        self._wall = clock()
        self._deadline: float | None = None  # wall time the watchdog stops the motors
        self.stopped_by: str | None = None
        """What stopped the motors last: ``"S"``, ``"watchdog"`` or None (never driven)."""
        self.counts: dict[str, int] = {}
        """Commands received, by letter (``"?"`` for unknown ones)."""
        self.lock = threading.Lock()
        """Held by the server around every call (the serial and camera threads share it)."""

    # ------------------------------------------------------------------ physics
    def advance(self, now: float | None = None) -> None:
        """Integrate up to wall time ``now``; the watchdog stops the motors on time."""
        now = self.clock() if now is None else now
        if self._deadline is not None and now >= self._deadline:
            self._integrate(self._deadline - self._wall)
            self._wall = self._deadline
            self._stop("watchdog")
        self._integrate(now - self._wall)
        self._wall = max(self._wall, now)

    def _integrate(self, wall_seconds: float) -> None:
        total = max(0.0, wall_seconds) * self.scale
        if total == 0.0:
            return
        if not self.pwm.any() and not np.abs(self.speeds).max() > 1e-9:
            self.sim_time += total  # at rest
            return
        n = max(1, math.ceil(total / MAX_SUBSTEP))
        h = total / n
        pose = self.pose[None]
        for _ in range(n):
            # Each substep drives the arc of the speeds reached at its end (exact without a
            # lag; with one, substeps are short against its time constant).
            self.speeds = np.asarray(
                self.physics.wheel_speeds(self.pwm, self.speeds, h), dtype=np.float64
            )
            advance(pose, self.speeds[:1], self.speeds[1:], self.world.axle, h, out=pose)
        self.pose = pose[0]
        self.sim_time += total

    def reset(self) -> None:
        """Put the robot back at its start, motors stopped (a user placing it on the line)."""
        self.advance()
        self.pose = self.world.start.copy()
        self.speeds[:] = 0.0
        self._stop("S")

    def _stop(self, by: str) -> None:
        self.pwm[:] = 0
        self._deadline = None
        self.stopped_by = by

    # ------------------------------------------------------------------ the protocol
    def handle(self, line: str) -> str | None:
        """Answer one command line as the firmware does (None: no answer)."""
        parts = line.split()
        if not parts:
            return None
        cmd = parts[0]
        self.counts[cmd if cmd in "MSGV" else "?"] = self.counts.get(cmd, 0) + 1
        if cmd == "M":
            try:
                left, right = int(parts[1]), int(parts[2])
            except (IndexError, ValueError):
                return "E M needs two integers"
            self.pwm[:] = np.clip([left, right], -255, 255)
            self._deadline = self._wall + WATCHDOG_S
            self.stopped_by = None
            return None
        if cmd == "S":
            self._stop("S")
            return None
        if cmd == "G":
            raw = self.physics.readings(self.darkness())
            return f"G {int(raw[0])} {int(raw[1])}"
        if cmd == "V":
            return f"V {FIRMWARE_NAME} 1 twin"
        return "E unknown command"

    # ------------------------------------------------------------------ senses
    def darkness(self) -> NDArray[np.float64]:
        """Darkness under the reflex pair (left, right) at the current pose."""
        return self.world.sensors.read(self.world.track, self.pose[None])[0, :2]

    def frame(self) -> NDArray[np.float64]:
        """The camera's darkness image ``(H, W)`` at the current pose."""
        assert self.world.camera is not None
        return self.world.camera.render(self.world.track, self.pose[None])[0]

    def state(self) -> dict[str, Any]:
        """Pose, motors and counters as plain JSON values."""
        x, y = float(self.pose[0]), float(self.pose[1])
        track = self.world.track
        inside = 0 <= x <= track.width and 0 <= y <= track.height
        return {
            "pose": [x, y, float(self.pose[2])],
            # The ground truth: the ideal darkness under the reflex pair (no noise, no
            # calibration), so a drive can judge settling on the true error too.
            "reflex_darkness": [float(v) for v in self.darkness()],
            # As the simulator judges it: any ground sensor (the reflex pair and the rows
            # ahead the simulator also carries) sees the line.
            "on_line": bool((self.world.sensors.read(track, self.pose[None]) > LINE_SEEN).any()),
            "inside": inside,
            "speeds": self.speeds.tolist(),
            "pwm": self.pwm.tolist(),
            "stopped_by": self.stopped_by,
            "sim_time": self.sim_time,
            "counts": dict(self.counts),
        }


# ---------------------------------------------------------------------- the server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection serves a whole drive
    twin: Twin

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes: without this, Nagle's algorithm and the
        # client's delayed ACK hold the body ~40 ms, two frames a cycle.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # the http.server name
        path = urlparse(self.path).path
        twin = self.server.twin  # type: ignore[attr-defined]
        with twin.lock:
            twin.advance()
            if path in ("/frame", "/frame.npy", "/frame.png"):
                frame = twin.frame()
            elif path == "/state":
                state = twin.state()
            else:
                self._send(404, "text/plain", b"not found: /frame, /frame.png or /state\n")
                return
        if path == "/state":
            self._send(200, "application/json", json.dumps(state).encode())
        elif path == "/frame.png":
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(np.rint(255 * (1 - frame)).astype(np.uint8)).save(buf, "PNG")
            self._send(200, "image/png", buf.getvalue())
        else:
            buf = io.BytesIO()
            np.save(buf, frame)
            self._send(200, "application/octet-stream", buf.getvalue())

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # the http.server name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urlparse(self.path).path != "/reset":
            self._send(404, "text/plain", b"not found: POST /reset\n")
            return
        twin = self.server.twin  # type: ignore[attr-defined]
        with twin.lock:
            twin.reset()
        self._send(200, "application/json", b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line per frame


class TwinServer:
    """The twin on a pseudo-terminal and a loopback HTTP port, until :meth:`stop`.

    Use :meth:`start` (threads) or :meth:`run` (blocks the calling thread). ``folder`` receives
    :data:`TWIN_FILE` once both are listening; it is removed again on stop.
    """

    def __init__(self, twin: Twin, folder: str | Path, port: int = 0) -> None:
        self.twin = twin
        self.folder = Path(folder)
        self._stop = threading.Event()
        self._master, self._slave = os.openpty()
        # Raw: no echo, no line editing; the twin keeps the slave open, so the master never
        # sees a hang-up between two clients (calibrate, then drive).
        tty.setraw(self._slave)
        self.serial_path = os.ttyname(self._slave)
        self.http = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.http.daemon_threads = True
        self.http.twin = twin  # type: ignore[attr-defined]
        self.camera_url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self._threads: list[threading.Thread] = []

    @property
    def info(self) -> dict[str, Any]:
        """What :data:`TWIN_FILE` holds."""
        w = self.twin.world
        cam = w.cfg.camera
        return {
            "serial": self.serial_path,
            "camera": self.camera_url,
            "period": self.twin.period,
            "dt": w.dt,
            "track": w.track.name,
            "frame_size": [cam.height_px, cam.width],
            "arena": [w.track.width, w.track.height],
            "pid": os.getpid(),
        }

    def start(self) -> TwinServer:
        """Serve in background threads; returns when ``twin.json`` is written."""
        for target in (self.http.serve_forever, self._serial_loop):
            t = threading.Thread(target=target, daemon=True, name=f"twin-{target.__name__}")
            t.start()
            self._threads.append(t)
        self._write_info()
        return self

    def run(self) -> None:
        """Serve until :meth:`stop` (e.g. from a signal handler) in the calling thread."""
        t = threading.Thread(target=self.http.serve_forever, daemon=True, name="twin-http")
        t.start()
        self._threads.append(t)
        self._write_info()
        try:
            self._serial_loop()
        finally:
            self.close()

    def _write_info(self) -> None:
        from sarlearn.atomic import atomic_write_bytes

        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.folder / TWIN_FILE, json.dumps(self.info, indent=2).encode())

    def _serial_loop(self) -> None:
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.02)
            if not ready:
                with self.twin.lock:
                    self.twin.advance()  # the watchdog runs while nothing arrives
                continue
            try:
                pending += os.read(self._master, 4096)
            except OSError:
                time.sleep(0.01)
                continue
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                line = raw.decode("ascii", errors="replace").strip()
                with self.twin.lock:
                    self.twin.advance()
                    answer = self.twin.handle(line)
                if answer is not None:
                    os.write(self._master, (answer + "\n").encode("ascii"))

    def stop(self) -> None:
        """Ask the serial loop to end (safe from a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        """Stop serving, remove :data:`TWIN_FILE`, close the terminal."""
        self._stop.set()
        self.http.shutdown()
        self.http.server_close()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=2)
        (self.folder / TWIN_FILE).unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class LockstepTwin:
    """The twin's robot and board as an in-process :class:`~sarlearn.robots.interface.Robot`
    on a simulated clock: every cycle lasts exactly ``world.dt``, and the motor command takes
    effect ``latency`` seconds after the sensors were read (the time a real cycle's work
    takes). No pseudo-terminal, no camera server, no wall clock: the same physics as
    ``sarlearn twin``, reproducible from its seeds, as fast as the simulator.

    Readings go through the board's 10-bit ADC and ``calibration`` (light, dark) exactly as
    :class:`~sarlearn.robots.raspberry_pi.ArduinoGround` maps them; wheel speeds become PWM
    as :class:`~sarlearn.robots.raspberry_pi.ArduinoMotors` trims (``trim``) and rounds them.
    """

    population = 1

    def __init__(
        self,
        world: WorldConfig,
        physics: Physics | None = None,
        calibration: tuple[Any, Any] = ((0, 0), (1023, 1023)),
        latency: float = 0.0,
        seed: int = 0,
        trim: float = 0.0,
    ) -> None:
        if not 0 <= latency < world.dt:
            raise ConfigError(f"latency must be in [0, dt = {world.dt}), got {latency}")
        from sarlearn.robots.raspberry_pi import ArduinoMotors

        self._t = 0.0
        self.twin = Twin(world, physics, seed=seed, clock=lambda: self._t)
        self.track = self.twin.world.track
        self.sensors = self.twin.world.sensors
        self.latency = float(latency)
        self.light, self.dark = calibration
        self._pwm = ArduinoMotors.__new__(ArduinoMotors)
        self._pwm.max_speed, self._pwm.max_pwm = 120.0, 255
        self.trim = float(trim)
        """The motors' gain correction, as :class:`ArduinoMotors` applies it."""
        self._lost = 0
        self.off_track_after = world.off_track_after

    def read_ground(self) -> NDArray[np.float64]:
        """The reflex pair's darkness ``(1, 2)`` after the ADC and the calibration."""
        from sarlearn.robots.raspberry_pi import calibrate

        self.twin.advance()
        raw = np.array([float(v) for v in self.twin.handle("G").split()[1:]])  # type: ignore[union-attr]
        on_line = (self.sensors.read(self.track, self.twin.pose[None]) > LINE_SEEN).any()
        self._lost = 0 if on_line else self._lost + 1
        return calibrate(raw, self.light, self.dark)[None]

    def grab_frame(self) -> NDArray[np.float64]:
        """The camera frame ``(1, H, W)`` at the reading's pose."""
        return self.twin.frame()[None]

    @property
    def pose(self) -> NDArray[np.float64]:
        """``(1, 3)`` the robot's pose."""
        return self.twin.pose[None].copy()

    @property
    def off_track(self) -> NDArray[np.bool_]:
        """``(1,)`` outside the arena, or no ground sensor saw the line for a while."""
        x, y = self.twin.pose[:2]
        inside = 0 <= x <= self.track.width and 0 <= y <= self.track.height
        return np.array([not inside or self._lost >= self.off_track_after])

    def set_wheel_speeds(self, left: Any, right: Any) -> None:
        """The command ``latency`` after the reading; the cycle ends ``dt`` after it."""
        start = self._t
        self._t = start + self.latency
        self.twin.advance()
        gl, gr = 1.0 + 0.5 * self.trim, 1.0 - 0.5 * self.trim
        pwm_l = self._pwm.pwm(float(np.ravel(left)[0]) / gl)
        pwm_r = self._pwm.pwm(float(np.ravel(right)[0]) / gr)
        self.twin.handle(f"M {pwm_l} {pwm_r}")
        self._t = start + self.twin.world.dt
        self.twin.advance()


# ---------------------------------------------------------------------- the host's side


def read_twin_info(folder: str | Path, wait: float = 0.0) -> dict[str, Any]:
    """The :data:`TWIN_FILE` of a running twin (waiting up to ``wait`` s for it to appear)."""
    path = Path(folder) / TWIN_FILE
    deadline = time.monotonic() + wait
    while not path.is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not path.is_file():
        raise ConfigError(
            f"no twin in {folder}: {TWIN_FILE} not found (start one with "
            f"`sarlearn twin --dir {folder}`)"
        )
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not a twin's file: {exc}") from None


class TwinCamera:
    """The camera of a twin: ``grab()`` fetches ``/frame`` over one kept-alive connection."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        parsed = urlparse(url)
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            raise ConfigError(f"the twin's camera must be on the loopback, got {url!r}")
        self.url = url
        self._conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)

    def get(self, path: str, method: str = "GET") -> bytes:
        """The body of ``GET path`` (reconnecting once if the connection dropped)."""
        from sarlearn.robots.raspberry_pi import HardwareError

        for attempt in (0, 1):
            try:
                if self._conn.sock is None:
                    self._conn.connect()
                    self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._conn.request(method, path)
                resp = self._conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise HardwareError(f"the twin's camera answered {resp.status} to {path}")
                return body
            except (OSError, http.client.HTTPException) as exc:
                self._conn.close()
                if attempt:
                    raise HardwareError(f"the twin's camera at {self.url} is gone: {exc}") from None
        raise AssertionError("unreachable")

    def grab(self) -> NDArray[np.float64]:
        """One darkness frame ``(H, W)``."""
        return np.load(io.BytesIO(self.get("/frame")))

    def state(self) -> dict[str, Any]:
        """The twin's ``/state`` (pose, motors, counters)."""
        return json.loads(self.get("/state"))

    def reset(self) -> None:
        """Put the twin's robot back at its start on the line, motors stopped."""
        self.get("/reset", method="POST")

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


__all__ = [
    "FIRMWARE_NAME",
    "TWIN_FILE",
    "WATCHDOG_S",
    "LockstepTwin",
    "Twin",
    "TwinCamera",
    "TwinServer",
    "read_twin_info",
]
