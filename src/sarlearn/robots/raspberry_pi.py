"""A real line-following robot: Raspberry Pi + camera + light sensors + Arduino motor driver.

The hardware of the original work (SPEC section 5): a camera looking ahead (picamera2), two
light-dependent resistors under the front for the reflex (read through an MCP3008 ADC with
gpiozero, or by the Arduino), and an Arduino making the motor PWM, driven over serial.

The optional packages (``pip install 'sarlearn[pi]'``: picamera2, gpiozero, pyserial) are
imported only when a component that needs them is opened, with a clear error if missing. Every
component also accepts a ready-made object instead (a fake in tests, another driver on other
hardware).

Serial protocol (ASCII lines ending in ``\\n``, 115200 baud by default)::

    Pi -> Arduino   M <left> <right>   wheel PWM, integers in [-255, 255] (sign = direction)
    Pi -> Arduino   S                  stop both motors
    Pi -> Arduino   G                  request the two light sensors
    Arduino -> Pi   G <left> <right>   raw 10-bit readings 0..1023 (answer to G)

The Arduino sketch only has to parse these three commands; it answers nothing to ``M``/``S``
so a motor command never waits for the board.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import SarlearnError
from sarlearn.stages.perception.perception import camera_darkness


class HardwareError(SarlearnError, RuntimeError):
    """A robot component is missing, misconfigured or answered nonsense."""


def require(module: str, extra: str = "pi") -> ModuleType:
    """Import an optional hardware dependency or explain how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise HardwareError(
            f"{module} is needed for the Raspberry Pi robot but is not installed; "
            f"install it with: pip install 'sarlearn[{extra}]'"
        ) from exc


class SerialPort(Protocol):
    """The part of pyserial's ``Serial`` we use."""

    def write(self, data: bytes) -> int | None: ...
    def readline(self) -> bytes: ...


class SerialLink:
    """Line-based commands to the Arduino over a serial port (or any SerialPort-like object).

    ``port`` is a device (``/dev/ttyACM0``, ``COM3``) or any pyserial URL (``loop://`` for a
    loopback test, ``socket://host:port``, ``rfc2217://...``), opened with
    ``serial.serial_for_url``.

    Raises:
        HardwareError: pyserial is missing, or the port cannot be opened (no Arduino there).
    """

    def __init__(
        self, port: str | SerialPort = "/dev/ttyACM0", baud: int = 115200, timeout: float = 0.1
    ) -> None:
        if isinstance(port, str):
            serial = require("serial", "serial")
            try:
                port = serial.serial_for_url(port, baudrate=baud, timeout=timeout)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise HardwareError(
                    f"cannot open the Arduino's serial port {port!r}: {exc}. Is the Arduino "
                    "plugged in? List the ports with: python -m serial.tools.list_ports"
                ) from None
        self.port: SerialPort = port

    def send(self, line: str) -> None:
        """Write one command line."""
        try:
            self.port.write((line + "\n").encode("ascii"))
        except OSError as exc:  # pyserial's SerialException: the board was unplugged
            raise HardwareError(f"cannot send {line!r} to the Arduino: {exc}") from None

    def query(self, line: str) -> str:
        """Write a command and return the answer line (without the newline)."""
        self.send(line)
        try:
            raw = self.port.readline()
        except OSError as exc:
            raise HardwareError(f"no answer from the Arduino to {line!r}: {exc}") from None
        answer = raw.decode("ascii", errors="replace").strip()
        if not answer:
            raise HardwareError(f"no answer from the Arduino to {line!r} (timeout)")
        return answer

    def close(self) -> None:
        """Close the port if it can be closed."""
        close = getattr(self.port, "close", None)
        if close is not None:
            close()


class ArduinoMotors:
    """Wheel speeds (units/s of the simulation) -> PWM commands ``M <left> <right>``.

    ``max_speed`` is the wheel speed that maps to full PWM; larger commands saturate.
    ``trim`` corrects unequal motors: the relative gain difference ``m`` of the wheels (left
    ``1 + m/2``, right ``1 - m/2`` of their command, as the simulator's ``wheel_mismatch``),
    undone by dividing each wheel's command by its gain, so that equal commands drive straight.
    """

    def __init__(
        self, link: SerialLink, max_speed: float = 120.0, max_pwm: int = 255, trim: float = 0.0
    ) -> None:
        if not max_speed > 0:
            raise ValueError(f"max_speed must be > 0, got {max_speed}")
        if not -1 < trim < 1:
            raise ValueError(f"trim must be in (-1, 1), got {trim}")
        self.link = link
        self.max_speed = float(max_speed)
        self.max_pwm = int(max_pwm)
        self.trim = float(trim)

    def pwm(self, speed: float) -> int:
        """The PWM integer for one wheel speed (rounded, saturated)."""
        value = round(speed / self.max_speed * self.max_pwm)
        return int(np.clip(value, -self.max_pwm, self.max_pwm))

    def set(self, left: float, right: float) -> None:
        """Send both wheel speeds (trimmed)."""
        gl, gr = 1.0 + 0.5 * self.trim, 1.0 - 0.5 * self.trim  # the wheels' gains
        self.link.send(f"M {self.pwm(left / gl)} {self.pwm(right / gr)}")

    def stop(self) -> None:
        """Stop both motors."""
        self.link.send("S")


def calibrate(raw: NDArray[np.floating], light: ArrayLike, dark: ArrayLike) -> NDArray[np.float64]:
    """Map raw readings to darkness in [0, 1] given the readings on light floor and on the line."""
    lo, hi = np.asarray(light, dtype=np.float64), np.asarray(dark, dtype=np.float64)
    span = np.where(hi == lo, 1.0, hi - lo)
    return np.clip((np.asarray(raw, dtype=np.float64) - lo) / span, 0.0, 1.0)


class ArduinoGround:
    """The two light sensors read by the Arduino (``G`` -> ``G <left> <right>``, 0..1023).

    ``light`` and ``dark`` are the raw readings on the floor and on the line (per sensor); the
    defaults assume a reading that grows with darkness over the full 10-bit range.
    """

    def __init__(
        self, link: SerialLink, light: ArrayLike = (0, 0), dark: ArrayLike = (1023, 1023)
    ) -> None:
        self.link = link
        self.light, self.dark = light, dark

    def read(self) -> NDArray[np.float64]:
        """Darkness of (left, right) ``(2,)``."""
        answer = self.link.query("G").split()
        if len(answer) != 3 or answer[0] != "G":
            raise HardwareError(f"the Arduino answered {' '.join(answer)!r} to G, not 'G <l> <r>'")
        try:
            raw = np.array([float(answer[1]), float(answer[2])])
        except ValueError as exc:
            raise HardwareError(f"bad sensor readings from the Arduino: {answer!r}") from exc
        return calibrate(raw, self.light, self.dark)


class AdcGround:
    """The two light sensors on an MCP3008 ADC read with gpiozero (values in [0, 1]).

    ``channels`` may be ADC channel numbers (opened with ``gpiozero.MCP3008``) or ready objects
    with a ``value`` attribute.
    """

    def __init__(
        self,
        channels: Sequence[int | Any] = (0, 1),
        light: ArrayLike = (0.0, 0.0),
        dark: ArrayLike = (1.0, 1.0),
    ) -> None:
        if len(channels) != 2:
            raise ValueError(f"need exactly two channels (left, right), got {len(channels)}")
        devices = []
        for ch in channels:
            if isinstance(ch, int):
                gpiozero = require("gpiozero")
                ch = gpiozero.MCP3008(channel=ch)
            devices.append(ch)
        self.devices = devices
        self.light, self.dark = light, dark

    def read(self) -> NDArray[np.float64]:
        """Darkness of (left, right) ``(2,)``."""
        raw = np.array([float(d.value) for d in self.devices])
        return calibrate(raw, self.light, self.dark)


class PiCamera:
    """A picamera2 camera (or any object with ``capture_array()``) giving darkness frames.

    Frames become darkness (1 = dark, BT.601 luma like every frame) reduced to ``size``
    ``(H, W)`` by box averaging (:func:`sarlearn.stages.perception.perception.camera_darkness`),
    the format the simulator's camera produces.
    """

    def __init__(
        self,
        size: tuple[int, int] = (24, 32),
        camera: Any | None = None,
        capture: tuple[int, int] = (320, 240),
    ) -> None:
        # picamera2's "RGB888" delivers the bytes in [B, G, R] order (its manual), so frames
        # of a camera built here are flipped to RGB before the luma weights apply.
        self._bgr = camera is None
        if camera is None:
            picamera2 = require("picamera2")
            camera = picamera2.Picamera2()
            camera.configure(
                camera.create_preview_configuration(main={"size": capture, "format": "RGB888"})
            )
            camera.start()
        self.camera = camera
        self.size = size

    def grab(self) -> NDArray[np.float64]:
        """One frame ``(H, W)`` of darkness in [0, 1]."""
        frame = np.asarray(self.camera.capture_array())
        if self._bgr and frame.ndim == 3:
            frame = frame[..., 2::-1]
        return camera_darkness(frame, self.size)

    def close(self) -> None:
        """Stop the camera if it can be stopped."""
        stop = getattr(self.camera, "stop", None)
        if stop is not None:
            stop()


class RaspberryPiRobot:
    """The real robot behind the :class:`~sarlearn.robots.interface.Robot` protocol (P = 1).

    Args:
        ground: an object with ``read() -> (2,)`` darkness (ArduinoGround or AdcGround).
        motors: an object with ``set(left, right)`` and ``stop()`` (ArduinoMotors).
        camera: an object with ``grab() -> (H, W)`` (PiCamera), or None.
        period: length of a control cycle in seconds (the simulation's ``dt``):
            :meth:`set_wheel_speeds` waits until a period has passed since the previous
            command, so the loop runs at a steady rate; None = as fast as possible.
    """

    population = 1

    def __init__(
        self, ground: Any, motors: Any, camera: Any | None = None, period: float | None = None
    ) -> None:
        self.ground = ground
        self.motors = motors
        self.camera = camera
        self.period = period
        self._last: float | None = None

    @classmethod
    def open(
        cls,
        port: str = "/dev/ttyACM0",
        baud: int = 115200,
        ground: str = "arduino",
        adc_channels: Sequence[int] = (0, 1),
        camera: bool = True,
        frame_size: tuple[int, int] = (24, 32),
        max_speed: float = 120.0,
        period: float | None = 0.05,
    ) -> RaspberryPiRobot:
        """Open the hardware: serial link to the Arduino, light sensors, camera.

        ``ground`` is ``"arduino"`` (the Arduino reads the sensors) or ``"adc"`` (MCP3008 on
        the Pi's SPI bus via gpiozero).
        """
        link = SerialLink(port, baud)
        if ground == "arduino":
            sensors: Any = ArduinoGround(link)
        elif ground == "adc":
            sensors = AdcGround(adc_channels)
        else:
            raise ValueError(f"ground must be 'arduino' or 'adc', got {ground!r}")
        cam = PiCamera(frame_size) if camera else None
        return cls(sensors, ArduinoMotors(link, max_speed=max_speed), cam, period=period)

    def read_ground(self) -> NDArray[np.float64]:
        """Darkness of the reflex pair ``(1, 2)``."""
        return np.asarray(self.ground.read(), dtype=np.float64).reshape(1, 2)

    def grab_frame(self) -> NDArray[np.float64] | None:
        """A darkness frame ``(1, H, W)``, or None without camera."""
        return None if self.camera is None else self.camera.grab()[None]

    def set_wheel_speeds(self, left: ArrayLike, right: ArrayLike) -> None:
        """Send the wheel speeds of the single robot, then keep the control period."""
        self.motors.set(float(np.ravel(left)[0]), float(np.ravel(right)[0]))
        if self.period is not None:
            now = time.monotonic()
            if self._last is not None and now < self._last + self.period:
                time.sleep(self._last + self.period - now)
                now = self._last + self.period
            self._last = now

    def close(self) -> None:
        """Stop the motors and release the camera and the serial port."""
        self.motors.stop()
        if self.camera is not None and hasattr(self.camera, "close"):
            self.camera.close()
        link = getattr(self.motors, "link", None)
        if link is not None:
            link.close()

    def __enter__(self) -> RaspberryPiRobot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "AdcGround",
    "ArduinoGround",
    "ArduinoMotors",
    "HardwareError",
    "PiCamera",
    "RaspberryPiRobot",
    "SerialLink",
    "calibrate",
    "require",
]
