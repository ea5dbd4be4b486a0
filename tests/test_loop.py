"""ClosedLoop: the per-step maths, chunking, population, records on interruption."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.agent import ClosedLoopAgent
from sarlearn.config import RunConfig
from sarlearn.loop import RECORDS, ClosedLoop, n_predictors_of


class ToyRobot:
    """A 1-D stand-in world: a lateral offset pushed by a road and steered by the wheels."""

    def __init__(self, population: int = 1, fail_at: int | None = None) -> None:
        self.population = population
        self.o = np.linspace(-0.2, 0.2, population)
        self.t = 0
        self.fail_at = fail_at
        self.commands: list[tuple[np.ndarray, np.ndarray]] = []

    def road(self, t: int) -> float:
        return 0.3 * np.sin(t / 15)

    def read_ground(self) -> np.ndarray:
        if self.fail_at is not None and self.t == self.fail_at:
            raise KeyboardInterrupt
        ahead = np.array([self.road(self.t + 3), self.road(self.t + 6)])
        return np.column_stack(
            [np.clip(self.o, 0, 1), np.clip(-self.o, 0, 1), np.tile(ahead, (self.population, 1))]
        )

    def grab_frame(self) -> np.ndarray:
        return np.tile(self.o[:, None, None], (1, 2, 4))

    def set_wheel_speeds(self, left: np.ndarray, right: np.ndarray) -> None:
        self.commands.append((left.copy(), right.copy()))
        self.o = self.o + self.road(self.t) - 0.02 * (right - left)
        self.t += 1

    @property
    def pose(self) -> np.ndarray:
        return np.column_stack(
            [np.full(self.population, self.t), self.o, np.zeros(self.population)]
        )

    @property
    def off_track(self) -> np.ndarray:
        return np.abs(self.o) > 5


def toy_loop(population: int = 1, fail_at: int | None = None, **kw: object) -> ClosedLoop:
    cfg = RunConfig().with_overrides(
        {"rule.name": "gdm", "rule.lr": 1e-3, "network.layers": [4, 2]}
    )
    agent = ClosedLoopAgent.from_config(cfg, n_predictors=2, population=population)
    return ClosedLoop(agent, ToyRobot(population, fail_at), error_gain=2.0, speed=1.0, **kw)


def test_records_shapes_and_conventions() -> None:
    loop = toy_loop(population=3, weights_every=7)
    rec = loop.run(50)
    np.testing.assert_array_equal(rec["step"], np.arange(50))
    for key in RECORDS:
        assert rec[key].shape == (3, 50), key
    # pose recorded as sensed (before the move): x is the robot's step counter there
    np.testing.assert_array_equal(rec["x"][0], np.arange(50))
    # e = gain (left - right); u = e + G y; left = v - u, right = v + u
    e = 2.0 * (rec["sensor_left"] - rec["sensor_right"])
    np.testing.assert_allclose(rec["error"], e)
    u = rec["error"] + 5.0 * rec["steering"]
    np.testing.assert_allclose(rec["left"], 1.0 - u)
    np.testing.assert_allclose(rec["right"], 1.0 + u)
    np.testing.assert_array_equal(rec["weight_steps"], [6, 13, 20, 27, 34, 41, 48])
    assert rec["weight_change"].shape == (3, 7, 2)
    assert np.isfinite(rec["weight_change"]).all()
    assert loop.t == 50


def test_chunking_does_not_change_anything() -> None:
    whole = toy_loop(weights_every=5).run(90)
    loop = toy_loop(weights_every=5)
    parts = [loop.run(n) for n in (13, 40, 37)]
    for key in (*RECORDS, "step"):
        joined = np.concatenate([p[key] for p in parts], axis=-1)
        np.testing.assert_array_equal(joined, whole[key], err_msg=key)
    np.testing.assert_array_equal(
        np.concatenate([p["weight_steps"] for p in parts]), whole["weight_steps"]
    )


def test_interrupted_chunk_leaves_partial_records() -> None:
    loop = toy_loop(fail_at=17)
    with pytest.raises(KeyboardInterrupt):
        loop.run(40)
    assert loop.partial is not None
    assert loop.partial["error"].shape == (1, 17)
    np.testing.assert_array_equal(loop.partial["step"], np.arange(17))


def test_record_ground_and_camera_inputs() -> None:
    loop = toy_loop(record_ground=True)
    assert loop.run(5)["ground"].shape == (1, 5, 4)
    seen = []

    def perception(frame: np.ndarray) -> np.ndarray:
        seen.append(frame.shape)
        return frame.reshape(frame.shape[0], -1)[:, :2]

    cam = toy_loop(inputs="camera", perception=perception)
    cam.run(3)
    assert seen == [(1, 2, 4)] * 3
    with pytest.raises(ValueError, match="perception"):
        toy_loop(inputs="camera")


def test_population_mismatch_is_an_error() -> None:
    cfg = RunConfig().with_overrides({"network.layers": [2]})
    agent = ClosedLoopAgent.from_config(cfg, n_predictors=2, population=2)
    with pytest.raises(ValueError, match="population"):
        ClosedLoop(agent, ToyRobot(3))


def test_n_predictors_of_config() -> None:
    # sar's default rows are mirror differences (72 = 3 rows x 24 pairs); other rules' raw
    assert n_predictors_of(RunConfig()) == 72
    assert n_predictors_of(RunConfig().with_overrides({"rule.name": "gdm"})) == 144
    assert n_predictors_of(RunConfig().with_overrides({"world.predictor_mode": "raw"})) == 144
    cam = RunConfig().with_overrides({"world.inputs": "camera"})
    assert n_predictors_of(cam) == 16
