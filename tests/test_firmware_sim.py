"""The Arduino firmware (firmware/) run in simavr, spoken to by the host's own classes.

Needs the built firmware and the simavr bridge (``sh firmware/ci.sh``, or ``make -C firmware
&& make -C firmware simavr-bridge``); skipped when either is missing.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("serial")

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
ELF = FIRMWARE / "build-uno" / "sarlearn_robot.elf"
BRIDGE = FIRMWARE / "build-sim" / "bridge"

pytestmark = pytest.mark.skipif(
    not (ELF.is_file() and BRIDGE.is_file()),
    reason="firmware or simavr bridge not built (sh firmware/ci.sh)",
)

#: Millivolts on the two light sensors: readings 1000 * 1023 // 5000 and 4000 * 1023 // 5000.
LEFT_MV, RIGHT_MV = 1000, 4000


class Board:
    """The bridge process: its pseudo-terminal and the pin changes it reports."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [str(BRIDGE), str(ELF), str(LEFT_MV), str(RIGHT_MV)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.pty = self.expect("pty ").split()[1]

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def expect(self, prefix: str, timeout: float = 20.0) -> str:
        """The next line starting with ``prefix`` (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the simulated board never printed {prefix!r}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def board() -> Iterator[Board]:
    b = Board()
    try:
        yield b
    finally:
        b.close()


def test_firmware_speaks_the_protocol_in_simavr(board: Board) -> None:
    from sarlearn.robots.drive import connect_board
    from sarlearn.robots.raspberry_pi import ArduinoGround, ArduinoMotors, SerialLink

    link = SerialLink(board.pty, timeout=2.0)
    try:
        assert connect_board(link, timeout=20.0) == "V sarlearn-robot 1"
        darkness = ArduinoGround(link).read()
        assert darkness.tolist() == pytest.approx(
            [LEFT_MV * 1023 // 5000 / 1023, RIGHT_MV * 1023 // 5000 / 1023]
        )
        assert link.query("M 1") == "E M needs two integers"
        assert link.query("X") == "E unknown command"
        # Left forward, right backward: direction pins 4 (PD4) and 12 (PB4) go high.
        ArduinoMotors(link).set(60.0, -30.0)
        board.expect("pin D4 1")
        board.expect("pin B4 1")
        # No more commands: the watchdog stops both motors.
        board.expect("pin D4 0")
        board.expect("pin B4 0")
    finally:
        link.close()
