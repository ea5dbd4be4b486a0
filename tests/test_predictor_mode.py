"""Row predictors as left/right mirror differences (``world.predictor_mode``): a centred
line gives 0, as with the camera pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from sarlearn.config import ConfigError, RunConfig
from sarlearn.engine import FastClosedLoop
from sarlearn.engine.verify import stepwise_deviation
from sarlearn.loop import ClosedLoop, n_predictors_of
from sarlearn.stages.perception.perception import mirror_differences, row_predictors
from sarlearn.stages.world.sim import SimWorld

MIRROR = {"world.predictor_mode": "mirror"}


def test_row_predictors_are_the_camera_pipelines_mirror_differences() -> None:
    rng = np.random.default_rng(0)
    rows = rng.random((3, 3 * 48))
    out = row_predictors(rows, 48, "mirror")
    assert out.shape == (3, 72)
    np.testing.assert_array_equal(out, mirror_differences(rows.reshape(3, 3, 48)))
    # row 1, outermost pair: leftmost sensor minus rightmost one
    assert out[1, 24] == rows[1, 48] - rows[1, 95]
    np.testing.assert_array_equal(row_predictors(rows, 48, "raw"), rows)


def test_a_centred_line_gives_zero_and_a_line_on_the_left_positive() -> None:
    lateral = (23.5 - np.arange(48)) * 0.25  # + = left, as row_positions lays them out
    for width in (3.0, 8.0):
        centred = (np.abs(lateral) < width / 2).astype(float)
        assert not row_predictors(np.tile(centred, 3)[None], 48, "mirror").any()
    left = (np.abs(lateral - 2.0) < 1.5).astype(float)
    assert row_predictors(np.tile(left, 3)[None], 48, "mirror").sum() > 0


def test_world_loop_and_agent_see_the_same_mirrored_predictors() -> None:
    cfg = RunConfig().with_overrides({**MIRROR, "world.track": "thick"})
    assert n_predictors_of(cfg) == 72
    loop = ClosedLoop.from_config(cfg, population=2)
    world = loop.robot
    assert isinstance(world, SimWorld) and world.n_predictors == 72
    expect = row_predictors(world.read_ground()[:, 2:], 48, "mirror")
    np.testing.assert_array_equal(world.predictors(), expect)
    assert loop.agent.network.n_inputs == 72 * cfg.filters.n_filters


@pytest.mark.parametrize(
    "overrides",
    [{}, {"rule.name": "gdm", "rule.lr": 0.3}, {"filters.kind": "delay", "world.track": "thick"}],
    ids=["sar-default", "gdm", "delay-bank-thick"],
)
def test_engine_matches_reference_with_mirror(overrides: dict) -> None:
    cfg = RunConfig().with_overrides({**MIRROR, **overrides})
    dev = stepwise_deviation(cfg, steps=40, population=2)
    assert max(dev.values()) < 1e-12, dev


def test_engine_replay_takes_the_mirrored_predictors() -> None:
    cfg = RunConfig().with_overrides(MIRROR)
    fast = FastClosedLoop.from_config(cfg, population=2)
    ref = ClosedLoop.from_config(cfg, population=2)
    rng = np.random.default_rng(1)
    pred = rng.standard_normal((5, 2, 72)) * 0.5
    err = rng.standard_normal((5, 2)) * 5
    y_fast = fast.step_agents(pred, err)
    y_ref = np.stack([ref.agent.step(err[t], pred[t]) for t in range(5)], axis=1)
    np.testing.assert_allclose(y_fast, y_ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"world.predictor_mode": "centred"}, "predictor_mode"),
        ({**MIRROR, "world.predictors_per_row": 47}, "even predictors_per_row"),
        ({**MIRROR, "world.inputs": "camera"}, "inputs='rows'"),
    ],
)
def test_bad_predictor_mode_is_a_config_error(overrides: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RunConfig().with_overrides(overrides)


@pytest.mark.parametrize("filtered", [False, True])
def test_gym_rows_observation_follows_the_predictor_mode(filtered: bool) -> None:
    gym = pytest.importorskip("gymnasium")
    import warnings

    from gymnasium.utils.env_checker import check_env

    from sarlearn.gym import ENV_ID

    env = gym.make(ENV_ID, track="thick", filtered=filtered, world={"predictor_mode": "mirror"})
    obs, _ = env.reset(seed=0)
    assert obs.shape == ((72 * 5,) if filtered else (72,))
    if not filtered:
        world = env.unwrapped
        assert obs.min() >= -1.0 and obs.max() <= 1.0
        assert world.observation_space.low.min() == -1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)


@pytest.mark.parametrize(
    "overrides",
    [{}, MIRROR, {"world.inputs": "camera"}, {"world.predictors_per_row": 10}],
)
def test_the_predictor_count_is_one_function_of_the_world_config(overrides: dict) -> None:
    from sarlearn.stages.perception.perception import n_predictors

    cfg = RunConfig().with_overrides({"world.track": "thick", **overrides})
    world = cfg.world_config  # the world a run uses (its predictor mode resolved for the rule)
    n = n_predictors(world)
    assert n_predictors_of(cfg) == n == SimWorld(world, population=1).n_predictors
    assert ClosedLoop.from_config(cfg).agent.bank.n_predictors == n
