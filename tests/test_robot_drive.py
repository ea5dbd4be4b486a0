"""`sarlearn drive` / `calibrate` against the twin: pacing, timing, outputs, and the motors
stopping on every way out (return, exception, SIGTERM, SIGINT), in subprocesses where a
signal is involved."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import sarlearn
from sarlearn.config import RunConfig
from sarlearn.errors import ConfigError
from sarlearn.robots import drive as drv
from sarlearn.robots.raspberry_pi import HardwareError, SerialLink
from sarlearn.robots.twin import TWIN_FILE, Twin, TwinCamera, TwinServer

pytest.importorskip("serial")

#: The fast control period of these tests (the twin runs its world 10x real time).
FAST = 0.005


def camera_cfg(**over: Any) -> RunConfig:
    base = {"world.inputs": "camera", "rule.name": "reflex", "steps": 40, "checkpoint_every": 20}
    return RunConfig().with_overrides({**base, **over})


# ---------------------------------------------------------------------- pieces


def test_timing_summary_counts_overruns_and_budget() -> None:
    t = drv.timing_summary([np.nan, 0.05, 0.05, 0.07], [0.01, 0.02, 0.06, 0.01], 0.05)
    assert t["cycles"] == 3 and t["overruns"] == 1 and t["overrun_fraction"] == 0.25
    assert t["interval_median"] == pytest.approx(0.05)
    assert t["budget_left_median"] == pytest.approx(0.05 - 0.015)
    assert "1 of 4 cycles overran" in t["warning"]
    calm = drv.timing_summary([0.05, 0.05], [0.01, 0.01], 0.05, [0.004, np.nan, 0.006])
    assert calm["overruns"] == 0 and calm["warning"] is None
    assert calm["latency_median"] == pytest.approx(0.005)
    assert drv.timing_summary([], [], 0.05) == {"period": 0.05, "cycles": 0, "warning": None}


class FakeTime:
    """A clock that moves only when something sleeps: pacing tests that no load can upset."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeRobot:
    """Records commands; ``work`` seconds of sensing per cycle (on ``time``, if given)."""

    def __init__(self, work: float = 0.0, time: FakeTime | None = None) -> None:
        self.work = work
        self.time = time
        self.commands: list[tuple[float, float]] = []

    def read_ground(self) -> np.ndarray:
        if self.time is not None:
            self.time.sleep(self.work)
        else:
            time.sleep(self.work)
        return np.zeros((1, 2))

    def grab_frame(self) -> None:
        return None

    def set_wheel_speeds(self, left: Any, right: Any) -> None:
        self.commands.append((float(np.ravel(left)[0]), float(np.ravel(right)[0])))


def test_paced_robot_keeps_the_period() -> None:
    t = FakeTime()
    robot = drv.PacedRobot(FakeRobot(work=0.003, time=t), 0.01, clock=t.clock, sleep=t.sleep)
    intervals = []
    for _ in range(12):
        robot.read_ground()
        robot.set_wheel_speeds(1.0, 1.0)
        intervals.append(robot.interval)
    assert np.isnan(intervals[0])
    # A grid, not a sleep after each cycle: every interval is the period, work included.
    np.testing.assert_allclose(intervals[1:], 0.01, rtol=1e-9)
    assert robot.busy == pytest.approx(0.003)


def test_paced_robot_late_cycles_restart_the_grid() -> None:
    t = FakeTime()
    robot = drv.PacedRobot(FakeRobot(work=0.015, time=t), 0.005, clock=t.clock, sleep=t.sleep)
    for _ in range(4):
        robot.read_ground()
        robot.set_wheel_speeds(1.0, 1.0)
    assert robot.busy > 0.005  # an overrun
    assert robot.interval >= 0.015  # no burst of catch-up cycles


class LinePort:
    def __init__(self, answers: list[bytes]) -> None:
        self.answers = answers
        self.written: list[bytes] = []
        self.flushed = False

    def write(self, data: bytes) -> int:
        self.written.append(data)
        return len(data)

    def readline(self) -> bytes:
        return self.answers.pop(0) if self.answers else b""

    def reset_input_buffer(self) -> None:
        self.flushed = True


def test_connect_board_waits_for_the_version() -> None:
    port = LinePort([b"", b"garbage\n", b"V sarlearn-robot 1\n"])
    assert drv.connect_board(SerialLink(port)) == "V sarlearn-robot 1"
    assert port.written == [b"V\n"] * 3 and port.flushed


def test_connect_board_names_a_silent_board() -> None:
    port = LinePort([b"hello\n"])
    with pytest.raises(HardwareError, match=r"no answer to V.*hello.*firmware"):
        drv.connect_board(SerialLink(port), timeout=0.05)


def test_calibration_file_round_trip_and_errors(tmp_path: Path) -> None:
    path = drv.save_calibration(tmp_path / "c.json", [160, 170], [850, 840], robot="x")
    assert drv.load_calibration(path) == ([160.0, 170.0], [850.0, 840.0])
    (tmp_path / "bad.json").write_text('{"light": [1, 2], "dark": [1, 3]}')
    with pytest.raises(ConfigError, match="different"):
        drv.load_calibration(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="sarlearn calibrate"):
        drv.load_calibration(tmp_path / "missing.json")


def test_split_levels_ignores_noise_at_the_extremes() -> None:
    rng = np.random.default_rng(0)
    raw = np.concatenate([rng.normal(150, 5, 900), rng.normal(850, 5, 100)])
    lo, hi = drv.split_levels(raw)
    assert abs(lo - 150) < 1 and abs(hi - 850) < 2


def test_split_levels_ignores_the_lines_edges() -> None:
    """A fast turn over a thin line reads its middle only a few times and its edges (half
    covered, in between) as often: the levels are the floor's and the middle's all the same."""
    rng = np.random.default_rng(1)
    edges = np.linspace(200, 800, 20)  # one reading at each of 20 partial coverages
    raw = np.concatenate([rng.normal(150, 5, 60), edges, rng.normal(850, 5, 8)])
    lo, hi = drv.split_levels(raw)
    assert abs(lo - 150) < 2 and abs(hi - 850) < 10  # the halves' medians: 784


def test_a_robot_without_rows_or_camera_is_refused() -> None:
    with pytest.raises(ConfigError, match="no rows"):
        drv.check_drivable(RunConfig(), has_camera=True)
    with pytest.raises(ConfigError, match="need a camera"):
        drv.check_drivable(camera_cfg(**{"rule.name": "sar"}), has_camera=False)
    drv.check_drivable(RunConfig().with_overrides({"rule.name": "reflex"}), has_camera=False)


# ---------------------------------------------------------------------- in-process drives


@pytest.fixture
def twin_server(tmp_path: Path) -> Iterator[TwinServer]:
    server = TwinServer(Twin(camera_cfg().world, period=FAST), tmp_path / "twin").start()
    try:
        yield server
    finally:
        server.close()


def test_drive_writes_the_follow_outputs_and_stops(twin_server: TwinServer, tmp_path: Path) -> None:
    cfg = camera_cfg()
    robot = drv.open_twin_robot(twin_server.folder, cfg)
    try:
        assert robot.period == FAST  # the twin's own
        summary = drv.run_drive(cfg, robot, tmp_path / "run", figures=False)
        assert twin_server.twin.stopped_by == "S"  # before close: the end of the loop did it
    finally:
        robot.close()
    # On a loaded machine a late cycle can throw the robot off the line (a real-time loop):
    # the outputs are what this test checks.
    assert summary["status"] in ("finished", "off_track"), summary["message"]
    n = summary["steps"]
    assert n == 40 or summary["status"] == "off_track"
    timing = summary["timing"]
    # A robot off the line ends the run inside its last chunk: the timing has that chunk, and
    # the robot drove on for less than a drive's chunk.
    lost = summary["status"] == "off_track"
    assert timing["period"] == FAST and (timing["cycles"] == n - 1 or lost)
    assert n - 1 <= timing["cycles"] < n - 1 + drv.DRIVE_CHUNK
    assert timing["interval_median"] > 0 and "busy_p99" in timing
    import pandas as pd

    trace = pd.read_parquet(tmp_path / "run" / "trace.parquet")
    assert {"cycle_seconds", "busy_seconds", "latency_seconds", "x", "y"} <= set(trace.columns)
    assert 0 < timing["latency_median"] <= timing["busy_median"]
    assert np.isfinite(trace["x"]).all()  # the twin tells its pose
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert on_disk["timing"]["cycles"] == timing["cycles"]
    # the twin's ground truth: the true reflex error of every cycle, judged beside the sensed
    true = on_disk["true_error"]
    assert true["steps"] == timing["cycles"] + 1
    assert set(true) >= {"settled", "steps_to_success", "settled_step"}


def test_drive_stands_still_while_it_writes_a_checkpoint(
    twin_server: TwinServer, tmp_path: Path
) -> None:
    """The run pauses to write its checkpoints: the motors get an ``S`` before each one, so
    the robot does not drive blind on its last command meanwhile."""
    cfg = camera_cfg().with_overrides({"steps": 40, "checkpoint_every": 10})
    robot = drv.open_twin_robot(twin_server.folder, cfg)
    try:
        before = twin_server.twin.counts.get("S", 0)
        summary = drv.run_drive(cfg, robot, tmp_path / "run", figures=False)
        stops = twin_server.twin.counts.get("S", 0) - before
    finally:
        robot.close()
    n = summary["steps"]
    # one stop at each of the checkpoints at 10, 20, 30 steps the run reached, one at its end
    assert stops >= (n - 1) // 10 + 1, (stops, n)


def test_drive_stops_the_motors_on_an_exception(twin_server: TwinServer, tmp_path: Path) -> None:
    cfg = camera_cfg()
    robot = drv.open_twin_robot(twin_server.folder, cfg)
    grab, calls = robot.grab_frame, []

    def failing() -> Any:
        calls.append(1)
        if len(calls) == 10:
            raise RuntimeError("camera unplugged")
        return grab()

    robot.grab_frame = failing  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="camera unplugged"):
            drv.run_drive(cfg, robot, tmp_path / "run", figures=False)
        assert twin_server.twin.stopped_by == "S"
    finally:
        robot.close()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "failed", summary["message"]
    assert summary["steps"] == 9 and "camera unplugged" in summary["message"]


def test_frozen_network_from_simulation_drives_the_twin(
    twin_server: TwinServer, tmp_path: Path
) -> None:
    from sarlearn.runs.run import run_follow

    trained = run_follow(
        camera_cfg(**{"rule.name": "sar", "steps": 60}), tmp_path / "sim", figures=False
    )
    assert trained["status"] == "finished"
    cfg = camera_cfg(
        **{"rule.name": "sar", "load": str(tmp_path / "sim" / "network.npz"), "freeze": True}
    )
    robot = drv.open_twin_robot(twin_server.folder, cfg)
    try:
        summary = drv.run_drive(cfg, robot, tmp_path / "drive", figures=False)
    finally:
        robot.close()
    assert summary["frozen"] and summary["loaded"]["path"].endswith("network.npz")
    assert summary["weight_change"] == pytest.approx([0.0] * len(summary["weight_change"]))


# ---------------------------------------------------------------------- the commands


def _env() -> dict[str, str]:
    src = str(Path(sarlearn.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from sarlearn.cli import main; main()", *args]


@pytest.fixture
def twin_process(tmp_path: Path) -> Iterator[Path]:
    """A `sarlearn twin` process in real time; stopped (and waited for) afterwards."""
    folder = tmp_path / "twin"
    proc = subprocess.Popen(
        _cli("twin", "--dir", str(folder)),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not (folder / TWIN_FILE).is_file():
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read().decode() if proc.stdout else ""
                pytest.fail(f"the twin did not start: {out}")
            time.sleep(0.05)
        yield folder
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(timeout=10) == 0  # a clean exit on SIGTERM
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not (folder / TWIN_FILE).exists()


def _twin_state(folder: Path) -> dict[str, Any]:
    cam = TwinCamera(json.loads((folder / TWIN_FILE).read_text())["camera"])
    try:
        return cam.state()
    finally:
        cam.close()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a script's background job inherits it


def _drive_until_running(
    folder: Path, out: Path, *extra: str, sigint_ignored: bool = False
) -> subprocess.Popen[bytes]:
    before = _twin_state(folder)["counts"].get("M", 0)
    proc = subprocess.Popen(
        _cli("drive", "--twin", str(folder), "--rule", "reflex", "--steps", "100000",
             "--out", str(out), "--no-progress", "--set", "checkpoint_every=50",
             # Cycles ten times faster than the twin's world: a late cycle on a loaded
             # machine must not throw the robot off the line in these tests of the exits.
             "--period", str(FAST), *extra),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=_ignore_sigint if sigint_ignored else None,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while _twin_state(folder)["counts"].get("M", 0) < before + 30:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out_text = proc.communicate()[0].decode()
            pytest.fail(f"the drive did not start: {out_text}")
        time.sleep(0.05)
    return proc


# The last case: a script's background job starts with SIGINT ignored, and Python then
# installs no KeyboardInterrupt handler; the drive installs its own, so `kill -INT` stops it.
@pytest.mark.parametrize(
    ("sig", "code", "sigint_ignored"),
    [(signal.SIGTERM, 143, False), (signal.SIGINT, 130, False), (signal.SIGHUP, 130, False),
     (signal.SIGINT, 130, True)],
    ids=["term", "int", "hup", "int-ignored-at-start"],
)  # fmt: skip
def test_a_signal_stops_the_motors_and_writes_the_run(
    twin_process: Path, tmp_path: Path, sig: int, code: int, sigint_ignored: bool
) -> None:
    out = tmp_path / "run"
    proc = _drive_until_running(twin_process, out, sigint_ignored=sigint_ignored)
    try:
        proc.send_signal(sig)
        text = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, text
    state = _twin_state(twin_process)
    assert state["stopped_by"] == "S" and state["pwm"] == [0, 0]  # not the watchdog
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["timing"]["cycles"] > 0
    assert "Control cycles" in (out / "report.html").read_text()
    assert "motors stopped" in text


def test_calibrate_then_resume_an_interrupted_drive(twin_process: Path, tmp_path: Path) -> None:
    cal = tmp_path / "cal.json"
    done = subprocess.run(
        _cli(
            "calibrate",
            "--twin",
            str(twin_process),
            "--out",
            str(cal),
            "--cycles",
            "60",
            "--period",
            "0.02",
        ),
        env=_env(),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    light, dark = drv.load_calibration(cal)
    assert all(100 < v < 300 for v in light) and all(700 < v < 1000 for v in dark)

    out = tmp_path / "run"
    proc = _drive_until_running(twin_process, out, "--calibration", str(cal))
    deadline = time.monotonic() + 30  # checkpoints are >= 2 s apart: wait for the first
    while not (out / "checkpoint.pkl").is_file() and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    text = proc.communicate(timeout=60)[0].decode()
    assert (out / "summary.json").is_file(), text
    first = json.loads((out / "summary.json").read_text())
    steps = first["steps"]
    # Ask the saved run for a few steps more than it has: resume needs its own config, so
    # the test edits the folder's step count as a user would extend a run.
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["steps"] = steps + 60
    cfg_path.write_text(json.dumps(cfg))
    again = subprocess.run(
        _cli("drive", "--resume", str(out), "--twin", str(twin_process), "--no-progress"),
        # (the period comes back from the folder's drive.json)
        env=_env(),
        capture_output=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout.decode() + again.stderr.decode()
    summary = json.loads((out / "summary.json").read_text())
    assert first["status"] == "interrupted", first["message"]
    assert 0 < summary["resumed_from"] <= steps and summary["steps"] > steps
    # A late cycle on a loaded machine can throw the robot off the line (see above).
    assert summary["status"] == "finished" or summary["status"] == "off_track"
    assert summary["steps"] == steps + 60 or summary["status"] == "off_track"
    drive_file = json.loads((out / "drive.json").read_text())
    assert drive_file["calibration"] == str(cal.resolve()) and drive_file["period"] == FAST
    assert summary["timing"]["period"] == FAST
    assert _twin_state(twin_process)["stopped_by"] == "S"


def test_cycle_benchmark_builds_the_authors_network(tmp_path: Path) -> None:
    from bench_scripts import load_benchmark

    bench = load_benchmark("robot_cycle")
    out = tmp_path / "cycle.json"
    result = bench.main(["--cycles", "5", "--rounds", "2", "--json", str(out)])
    authors = result["networks"]["authors"]
    assert authors["inputs"] == 240 and len(authors["layers"]) == 11
    assert authors["layers"][-1] == 3 and authors["grid"] == [8, 12]
    assert result["networks"]["default"]["inputs"] == 80
    assert 0 < authors["median_s"] < authors["pi_estimate_median_s"][0]
    assert json.loads(out.read_text())["networks"]["authors"]["budget_left_s"] < 0.05


def test_true_error_summary_judges_the_ground_truth() -> None:
    """The success criterion on the true error: zero after a burst settles, a late burst
    does not."""
    from sarlearn.config import RunConfig

    cfg = RunConfig().with_overrides({"steps": 3000, "settle_window": 2000})
    e = np.zeros(3000)
    e[:300] = 1.0
    s = drv.true_error_summary(e, cfg)
    assert s["settled"] and s["steps_to_success"] == 499 and s["mean_abs_error_last_1000"] == 0
    e[2500] = 1.0
    late = drv.true_error_summary(e, cfg)
    assert not late["settled"] and late["steps"] == 3000


def test_paced_robot_logs_the_twins_true_error() -> None:
    """With a twin, each cycle logs gain x (left - right) of the ideal darkness it reports."""

    class Board:
        def read_ground(self) -> np.ndarray:
            return np.zeros((1, 2))

    class TwinState:
        def state(self) -> dict:
            return {"pose": [1.0, 2.0, 0.0], "on_line": True, "inside": True,
                    "reflex_darkness": [0.25, 0.0]}  # fmt: skip

    robot = drv.PacedRobot(Board(), 0.001, twin=TwinState(), error_gain=50.0)  # type: ignore[arg-type]
    for _ in range(3):
        robot.read_ground()
    assert robot.true_errors == [12.5, 12.5, 12.5]
