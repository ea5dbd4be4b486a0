"""Robot backends: the Raspberry Pi robot with fake hardware, and replay of a recorded run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sarlearn.robots.interface import Robot
from sarlearn.robots.raspberry_pi import (
    AdcGround,
    ArduinoGround,
    ArduinoMotors,
    HardwareError,
    PiCamera,
    RaspberryPiRobot,
    SerialLink,
    calibrate,
    require,
)
from sarlearn.runs.replay import ReplayFinished, ReplayRobot, to_darkness


class FakeSerial:
    """Records written lines; answers 'G' with fixed readings."""

    def __init__(self, answer: bytes = b"G 1023 0\n") -> None:
        self.lines: list[str] = []
        self.answer = answer
        self.closed = False

    def write(self, data: bytes) -> int:
        self.lines.append(data.decode())
        return len(data)

    def readline(self) -> bytes:
        return self.answer

    def close(self) -> None:
        self.closed = True


class FakeCamera:
    def __init__(self) -> None:
        self.stopped = False

    def capture_array(self) -> np.ndarray:
        img = np.full((48, 64, 3), 255, np.uint8)
        img[:, :32] = 0  # left half dark
        return img

    def stop(self) -> None:
        self.stopped = True


class Channel:
    def __init__(self, value: float) -> None:
        self.value = value


def make_robot(answer: bytes = b"G 1023 0\n") -> tuple[RaspberryPiRobot, FakeSerial, FakeCamera]:
    port, cam = FakeSerial(answer), FakeCamera()
    link = SerialLink(port)
    robot = RaspberryPiRobot(
        ArduinoGround(link), ArduinoMotors(link, max_speed=60), PiCamera((12, 16), camera=cam)
    )
    return robot, port, cam


def test_pi_robot_speaks_the_line_protocol() -> None:
    robot, port, cam = make_robot()
    assert isinstance(robot, Robot)
    np.testing.assert_allclose(robot.read_ground(), [[1.0, 0.0]])
    assert port.lines == ["G\n"]
    robot.set_wheel_speeds(np.array([30.0]), np.array([-90.0]))  # -90 saturates
    assert port.lines[-1] == "M 128 -255\n"
    frame = robot.grab_frame()
    assert frame is not None and frame.shape == (1, 12, 16)
    # dark = 1; the luma weights sum to 1 within a rounding, hence the tolerance
    np.testing.assert_allclose(frame[0, :, :8], 1.0, atol=1e-12)
    np.testing.assert_allclose(frame[0, :, 8:], 0.0, atol=1e-12)
    with robot:
        pass
    assert port.lines[-1] == "S\n" and port.closed and cam.stopped


def test_pi_robot_keeps_its_control_period() -> None:
    import time

    robot, _, _ = make_robot()
    robot.period = 0.02
    t0 = time.monotonic()
    for _ in range(5):
        robot.set_wheel_speeds(np.zeros(1), np.zeros(1))
    assert time.monotonic() - t0 >= 4 * 0.02 * 0.95


def test_pi_robot_bad_answers_are_clear_errors() -> None:
    robot, _, _ = make_robot(b"hello\n")
    with pytest.raises(HardwareError, match="not 'G <l> <r>'"):
        robot.read_ground()
    robot, _, _ = make_robot(b"")
    with pytest.raises(HardwareError, match="timeout"):
        robot.read_ground()


def test_adc_ground_and_calibration() -> None:
    ground = AdcGround([Channel(0.2), Channel(0.8)], light=(0.2, 0.2), dark=(0.6, 0.6))
    np.testing.assert_allclose(ground.read(), [0.0, 1.0])
    np.testing.assert_allclose(calibrate(np.array([5.0]), [0.0], [10.0]), [0.5])
    with pytest.raises(ValueError):
        AdcGround([Channel(0.0)])


def test_missing_optional_dependency_is_explained() -> None:
    with pytest.raises(HardwareError, match=r"pip install 'sarlearn\[pi\]'"):
        require("surely_not_an_installed_module_xyz")


def test_to_darkness_resizes_and_inverts() -> None:
    grey = np.zeros((8, 8), np.uint8)
    out = to_darkness(grey, (4, 4))
    assert out.shape == (4, 4)
    np.testing.assert_allclose(out, 1.0)


def test_replay_plays_back_and_ends() -> None:
    ground = np.arange(12.0).reshape(3, 4) / 12
    frames = np.zeros((3, 5, 6))
    replay = ReplayRobot(ground, frames=frames, poses=np.zeros((3, 3)))
    assert isinstance(replay, Robot) and len(replay) == 3
    for t in range(3):
        np.testing.assert_allclose(replay.read_ground(), ground[t][None])
        assert replay.grab_frame().shape == (1, 5, 6)
        assert replay.pose.shape == (1, 3)
        replay.set_wheel_speeds(np.array([1.0]), np.array([2.0]))
    assert replay.commands == [(1.0, 2.0)] * 3
    with pytest.raises(ReplayFinished):
        replay.read_ground()


def test_record_a_sim_run_and_replay_it(tmp_path) -> None:
    """The same agent fed the recorded sensors sends exactly the recorded wheel commands."""
    from sarlearn.agent import ClosedLoopAgent
    from sarlearn.config import RunConfig
    from sarlearn.loop import ClosedLoop, n_predictors_of, seed_generators
    from sarlearn.runs.run import run_follow

    cfg = RunConfig().with_overrides(
        {
            "world.track": "oval",
            "network.layers": [2],
            "rule.name": "gdm",
            "rule.lr": 1e-4,
            "steps": 300,
            # Recorded by the same (reference) loop that replays it, so equal to the bit.
            "engine": "numpy",
        }
    )
    run_follow(cfg, tmp_path / "run", record_ground=True)
    replay = ReplayRobot.from_trace(tmp_path / "run")
    assert len(replay) == 300
    agent = ClosedLoopAgent.from_config(cfg, n_predictors_of(cfg), rng=seed_generators(cfg.seed)[0])
    loop = ClosedLoop(
        agent,
        replay,
        error_gain=cfg.world.error_gain,
        speed=cfg.world.speed,
        net_gain=cfg.world.net_gain,
    )
    rec = loop.run(300)
    trace = pd.read_parquet(tmp_path / "run" / "trace.parquet")
    np.testing.assert_array_equal(rec["steering"][0], trace["steering"])
    np.testing.assert_array_equal(rec["left"][0], trace["left"])
    np.testing.assert_array_equal(rec["x"][0], trace["x"])
    assert replay.commands[-1] == (trace["left"].iloc[-1], trace["right"].iloc[-1])


def test_replay_frames_from_a_video(tmp_path) -> None:
    import imageio.v2 as imageio

    frames = np.zeros((6, 16, 16))
    frames[:, :, :8] = 1.0  # dark left half
    imageio.mimsave(
        tmp_path / "cam.mp4",
        [(255 * (1 - f)).astype(np.uint8) for f in frames],
        fps=10,
        macro_block_size=1,
    )
    log = pd.DataFrame({"sensor_left": np.ones(6), "sensor_right": np.zeros(6)})
    replay = ReplayRobot.from_trace(log, video=tmp_path / "cam.mp4", frame_size=(8, 8))
    np.testing.assert_allclose(replay.read_ground(), [[1.0, 0.0]])
    frame = replay.grab_frame()
    assert frame.shape == (1, 8, 8)
    assert frame[0, :, :3].mean() > 0.9 and frame[0, :, 5:].mean() < 0.1  # lossy but close
