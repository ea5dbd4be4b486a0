"""The compiled world-only population step against the reference SimWorld."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import WorldConfig
from sarlearn.errors import NonFiniteError, ShapeError
from sarlearn.stages.world import SimWorld
from sarlearn.stages.world.compiled_world import CompiledWorld
from sarlearn.stages.world.start import start_poses


@pytest.mark.parametrize("track", ["curvy", "figure8"])
def test_compiled_world_equals_simworld_with_the_reflex(track: str) -> None:
    cfg = WorldConfig(track=track)
    ref = SimWorld(cfg, population=5, rng=np.random.default_rng(1))
    fast = CompiledWorld(cfg, population=5, track=ref.track)
    fast.place(np.arange(5), ref.pose)
    np.testing.assert_array_equal(fast.ground, ref.read_ground())
    rng = np.random.default_rng(0)
    # Teacher-forced: the reflex closes the loop, and one ulp of a pose grows to 6-70 units
    # over these 300 steps (measured on the reference against itself), so a free run would
    # compare the CPUs' last bits of sin and cos. Each step starts from the reference's state.
    for _ in range(300):
        fast.place(np.arange(5), ref.pose)
        fast.lost[:] = ref.lost_steps
        y = rng.uniform(-1.5, 1.5, 5)
        ref.step(y)
        fast.step(y)
        np.testing.assert_allclose(fast.pose, ref.pose, rtol=0, atol=1e-11)
        np.testing.assert_allclose(fast.ground, ref.read_ground(), rtol=0, atol=1e-9)
        np.testing.assert_array_equal(fast.lost, ref.lost_steps)
        np.testing.assert_array_equal(fast.off_track, ref.off_track)
        np.testing.assert_allclose(fast.reflex_error(), ref.reflex_error(), atol=1e-7)


def test_without_reflex_and_for_some_rows_only() -> None:
    cfg = WorldConfig(track="oval", off_track_after=10)
    ref = SimWorld(cfg, population=3, rng=np.random.default_rng(2))
    fast = CompiledWorld(cfg, population=3, track=ref.track)
    fast.place(np.arange(3), ref.pose)
    before = fast.pose
    fast.step(np.full(3, 0.4), reflex=False, rows=np.array([1]))
    after = fast.pose
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])
    # Row 1 moved by u = G * y alone (no reflex): SimWorld's wheel speeds v -/+ u.
    u = cfg.net_gain * 0.4
    ref.set_wheel_speeds(cfg.speed - u, cfg.speed + u)
    np.testing.assert_allclose(after[1], ref.pose[1], atol=1e-12)
    for _ in range(200):  # driving straight without the reflex: off track eventually
        fast.step(np.zeros(3), reflex=False)
    assert fast.off_track.all()


def test_bad_input_is_refused() -> None:
    fast = CompiledWorld(WorldConfig(), population=2)
    fast.place([0, 1], start_poses(fast.track, 2))
    with pytest.raises(ShapeError):
        fast.step(np.zeros(3))
    with pytest.raises(NonFiniteError):
        fast.step(np.array([0.0, np.nan]))
    with pytest.raises(NonFiniteError):
        fast.place([0], [[np.inf, 0.0, 0.0]])
    with pytest.raises(ShapeError):
        CompiledWorld(WorldConfig(), population=0)
