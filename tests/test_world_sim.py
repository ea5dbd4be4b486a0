"""SimWorld: the robot interface, the reflex loop on the built-in tracks, off-track flags."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import WorldConfig
from sarlearn.errors import NonFiniteError, ShapeError
from sarlearn.robots.interface import Robot
from sarlearn.stages.world import SimWorld, load_track, radius_of_curvature


def lap_steps(world: SimWorld) -> int:
    length = len(world.track.centreline) * 0.5  # centreline points are 0.5 units apart
    return int(length / (world.cfg.speed * world.cfg.dt))


def distance_to_line(world: SimWorld) -> np.ndarray:
    line = world.track.centreline
    return np.linalg.norm(line[None, :, :] - world.pose[:, None, :2], axis=2).min(axis=1)


def test_implements_the_robot_interface() -> None:
    world = SimWorld(WorldConfig(track="circle"), population=3)
    assert isinstance(world, Robot)
    g = world.read_ground()
    assert g.shape == (3, 146) and world.n_predictors == 144
    assert world.grab_frame() is None
    np.testing.assert_array_equal(world.predictors(), g[:, 2:])
    np.testing.assert_allclose(world.reflex_error(), 50.0 * (g[:, 0] - g[:, 1]))
    assert world.pose.shape == (3, 3) and world.off_track.shape == (3,)


@pytest.mark.parametrize("name", ["circle", "oval", "curvy", "figure8", "random"])
def test_the_reflex_alone_follows_every_track_but_not_perfectly(name: str) -> None:
    world = SimWorld(WorldConfig(track=name))
    n = 3 * lap_steps(world)
    errors = np.empty(n)
    worst = 0.0
    for k in range(n):
        errors[k] = world.step()[0]
        worst = max(worst, float(distance_to_line(world)[0]))
        assert not world.off_track[0]
    assert worst < 6.0  # never strays from the line
    assert (errors != 0).mean() > 0.05  # the reflex has to act on the curves
    # The success criterion (moving sum of |e| over 200 steps below 0.1) is never met.
    moving = np.convolve(np.abs(errors), np.ones(200), mode="valid")
    assert moving.min() > 10.0


def test_curvy_bends_cost_the_reflex_large_errors() -> None:
    world = SimWorld(WorldConfig(track="curvy"))
    line = world.track.centreline
    radius = np.abs(radius_of_curvature(line))
    err, rad = [], []
    for _ in range(2 * lap_steps(world)):
        err.append(abs(world.step()[0]))
        i = np.argmin(np.linalg.norm(line - world.pose[0, :2], axis=1))
        rad.append(radius[i])
    err, rad = np.array(err), np.array(rad)
    sharp, gentle = err[rad < 30].mean(), err[rad > 100].mean()
    assert sharp > 3.0 and sharp > 2.5 * gentle
    assert err.max() >= 40.0


def test_an_anticipating_controller_keeps_the_reflex_silent_on_curvy() -> None:
    # Steering from the predictor rows alone (the line's offset, within the network's reach
    # |G y| <= 7.5) keeps the line between the reflex sensors: the task can be learned.
    world = SimWorld(WorldConfig(track="curvy"))
    lateral = world.sensors.positions[2:, 1]
    errors = []
    for _ in range(2 * lap_steps(world)):
        rows = world.predictors()
        offset = (rows * lateral).sum(axis=1) / np.maximum(rows.sum(axis=1), 1e-9)
        errors.append(world.step(np.clip(0.8 * offset, -1.5, 1.5))[0])
    assert np.abs(errors).max() == 0.0


def test_population_runs_in_lockstep() -> None:
    one = SimWorld(WorldConfig(track="oval"))
    three = SimWorld(WorldConfig(track="oval"), population=3)
    for k in range(50):
        y = np.array([0.0, 0.5, -0.5]) * (k % 7 == 0)
        three.step(y)
        one.step(0.0)
    np.testing.assert_allclose(three.pose[0], one.pose[0])
    assert not np.allclose(three.pose[1], three.pose[0])
    three.reset()
    np.testing.assert_allclose(three.pose, three.starts)
    assert three.steps == 0


def test_losing_the_line_or_the_arena_is_flagged_not_raised() -> None:
    cfg = WorldConfig(track="circle", off_track_after=20)
    world = SimWorld(cfg, population=2)
    world.pose = [[125.0, 125.0, 0.0], [125.0, 125.0, 0.0]]  # the middle: no line in sight
    for _ in range(19):
        world.set_wheel_speeds(0.0, 0.0)
    assert not world.off_track.any() and (world.lost_steps == 19).all()
    world.set_wheel_speeds(0.0, 0.0)
    assert world.off_track.all()
    world.pose = [[245.0, 125.0, 0.0], [213.0, 125.0, np.pi / 2]]  # heading out / on the line
    for _ in range(10):
        world.set_wheel_speeds(30.0, 30.0)
    np.testing.assert_array_equal(world.off_track, [True, False])
    assert world.pose[0, 0] > 250.0


def test_camera_inputs() -> None:
    world = SimWorld(WorldConfig(track="curvy", inputs="camera"), population=2)
    frame = world.grab_frame()
    assert frame.shape == (2, 24, 32) and frame.max() > 0.5
    assert world.n_predictors == 16
    e, pred = world.observe()
    assert e.shape == (2,) and pred.shape == (2, 16)
    assert SimWorld(WorldConfig(track="circle"), camera=True).grab_frame().shape == (1, 24, 32)


def test_float32_readings() -> None:
    world = SimWorld(WorldConfig(track="circle"), dtype=np.float32)
    assert world.read_ground().dtype == np.float32
    assert world.predictors().dtype == np.float32


def test_bad_commands() -> None:
    world = SimWorld(WorldConfig(track="circle"), population=2)
    with pytest.raises(ShapeError):
        world.set_wheel_speeds(np.zeros(3), np.zeros(3))
    with pytest.raises(NonFiniteError):
        world.set_wheel_speeds(np.array([1.0, np.inf]), np.zeros(2))
    with pytest.raises(ShapeError):
        world.pose = np.zeros((3, 3))
    with pytest.raises(ShapeError):
        SimWorld(WorldConfig(track="circle"), population=0)


def test_many_steps_stay_on_a_closed_track() -> None:
    # (its speed, ~40 us per step, is measured in benchmarks/test_bench_world.py, not here)
    world = SimWorld(WorldConfig(), track=load_track("curvy"))
    world.step()
    for _ in range(2000):
        world.set_wheel_speeds(30.0, 30.5)
        world.read_ground()
    assert np.all(np.isfinite(world.pose))


def anticipate(world: SimWorld, steps: int, gain: float = 0.8) -> np.ndarray:
    """Errors under steering from the predictor rows' line offset (the network's reach)."""
    lateral = world.sensors.positions[2:, 1]
    errors = []
    for _ in range(steps):
        rows = world.predictors()
        offset = (rows * lateral).sum(axis=1) / np.maximum(rows.sum(axis=1), 1e-9)
        errors.append(world.step(np.clip(gain * offset, -1.5, 1.5))[0])
    return np.array(errors)


@pytest.mark.parametrize("name", ["hairpin", "tight", "thick", "photo", "wide"])
def test_the_reflex_alone_holds_the_harder_tracks(name: str) -> None:
    world = SimWorld(WorldConfig(track=name), population=3, rng=np.random.default_rng(1))
    for _ in range(400):
        world.step()
        assert not world.off_track.any()
    assert distance_to_line(world).max() < 5.0


def test_hairpins_can_be_taken_without_the_reflex_but_tight_half_turns_cannot() -> None:
    hairpin = SimWorld(WorldConfig(track="hairpin"))
    assert np.abs(anticipate(hairpin, 2 * lap_steps(hairpin))).max() == 0.0
    tight = SimWorld(WorldConfig(track="tight"))
    for gain in (0.8, 3.0):
        tight.reset()
        errors = anticipate(tight, lap_steps(tight), gain)
        assert np.count_nonzero(errors) >= 3  # the reflex has to help in the half turns
