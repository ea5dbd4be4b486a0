"""The SB3 VecEnv over the engine's vector environment, the registered ids, and the
Gymnasium conventions after termination and for rendering."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.evaluation import evaluate_policy  # noqa: E402
from stable_baselines3.common.vec_env import (  # noqa: E402
    DummyVecEnv,
    VecEnv,
    VecMonitor,
    VecNormalize,
)

import sarlearn  # noqa: E402, F401  (registers the environments)
from sarlearn.errors import ConfigError  # noqa: E402
from sarlearn.gym import ENV_ID, FILTERED_ENV_ID, LineFollowerEnv, make_sb3_vec_env  # noqa: E402

# Short episodes and quick terminations so that 600 steps see both kinds of ending.
KW = {"track": "curvy", "filtered": True, "reward_scale": 0.02, "max_steps": 150}
OFF = {"action": "full", "max_steps": 150, "world": {"off_track_after": 5}}


@pytest.mark.parametrize("kw", [KW, OFF], ids=["filtered-truncations", "full-terminations"])
def test_sb3_vec_env_equals_dummy_vec_env_step_for_step(kw: dict) -> None:
    """Robot i behaves as DummyVecEnv's env i: observations, rewards, dones, the terminal
    observation and TimeLimit.truncated, through autoresets."""
    n = 4
    fast = make_sb3_vec_env(n, seed=3, **kw)
    ref = DummyVecEnv([lambda: LineFollowerEnv(**kw) for _ in range(n)])
    ref.seed(3)
    assert isinstance(fast, VecEnv)
    np.testing.assert_allclose(fast.reset(), ref.reset(), atol=1e-6)
    rng = np.random.default_rng(0)
    ends = {"truncated": 0, "terminated": 0}
    for _ in range(600):
        a = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        o1, r1, d1, i1 = fast.step(a)
        o2, r2, d2, i2 = ref.step(a)
        np.testing.assert_array_equal(d1, d2)
        np.testing.assert_allclose(o1, o2, atol=1e-6)
        np.testing.assert_allclose(r1, r2, rtol=1e-6, atol=1e-6)
        assert r1.dtype == np.float32
        for i in np.flatnonzero(d1):
            np.testing.assert_allclose(
                i1[i]["terminal_observation"], i2[i]["terminal_observation"], atol=1e-6
            )
            assert i1[i]["TimeLimit.truncated"] == i2[i]["TimeLimit.truncated"]
            ends["truncated" if i1[i]["TimeLimit.truncated"] else "terminated"] += 1
        assert i1[0]["error"] == pytest.approx(i2[0]["error"], abs=1e-9)
    assert ends["truncated" if kw is KW else "terminated"] > 0


def test_seed_and_reset_reproduce_and_attributes_are_shared() -> None:
    v = make_sb3_vec_env(3, seed=5, **KW)
    first = v.reset()
    v.seed(5)
    np.testing.assert_array_equal(v.reset(), first)
    assert v.seed(7) == [7, 8, 9]
    assert not np.array_equal(v.reset(), first)
    assert v.get_attr("render_mode") == [None, None, None]
    assert len(v.get_attr("np_random", indices=[0, 2])) == 2
    assert v.env_method("render", indices=1) == [None]
    assert v.env_is_wrapped(gym.Wrapper) == [False] * 3
    assert v.get_attr("track")[0] is v.core.track
    with pytest.raises(ConfigError, match="share one engine"):
        v.set_attr("render_mode", "rgb_array", indices=[0])
    v.set_options({"lidar": 1})
    with pytest.raises(ConfigError, match="lidar"):
        v.reset()
    pose = v.core.pose[1].copy()
    v.set_options([{}, {"pose": tuple(pose)}, {}])
    v.reset()
    np.testing.assert_array_equal(v.core.pose[1], pose)


def test_render_tiles_one_picture_per_robot() -> None:
    v = make_sb3_vec_env(4, render_mode="rgb_array", track="wide")
    v.reset()
    images = v.get_images()
    assert len(images) == 4 and images[0].shape == (228, 400, 3)
    big = v.render()
    assert big.shape == (2 * 228, 2 * 400, 3) and big.dtype == np.uint8
    assert make_sb3_vec_env(2).get_images() == [None, None]


def test_ppo_trains_through_vec_normalize_and_vec_monitor() -> None:
    v = VecNormalize(VecMonitor(make_sb3_vec_env(8, seed=0, **KW)), gamma=0.99)
    model = PPO("MlpPolicy", v, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=8 * 32 * 2)
    assert model.num_timesteps == 512
    assert v.obs_rms.count > 500  # VecNormalize saw every step
    v.training = False
    mean, _ = evaluate_policy(model, v, n_eval_episodes=2, warn=False)
    assert np.isfinite(mean)


def test_make_sb3_vec_env_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="observation"):
        make_sb3_vec_env(2, observation="lidar")
    with pytest.raises(ConfigError, match="num_envs"):
        make_sb3_vec_env(0)


@pytest.mark.parametrize("env_id", [ENV_ID, FILTERED_ENV_ID])
def test_registered_ids_pass_check_env_with_max_episode_steps(env_id: str) -> None:
    env = gym.make(env_id)
    spec = gym.spec(env_id)
    assert spec.max_episode_steps == env.unwrapped.options.max_steps
    check_env(env.unwrapped)
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")
    assert vec.unwrapped.options.max_steps == spec.max_episode_steps


def test_filtered_id_has_the_baseline_settings() -> None:
    o = gym.make(FILTERED_ENV_ID).unwrapped.options
    assert (o.filtered, o.action, o.reward_scale, o.max_steps) == (True, "reflex", 0.02, 1000)
    assert gym.make(FILTERED_ENV_ID).observation_space.shape == (720,)
    # Overridable like any argument; the shorter of max_steps and max_episode_steps wins.
    v = gym.make_vec(FILTERED_ENV_ID, num_envs=2, vectorization_mode="vector_entry_point",
                     max_episode_steps=50)  # fmt: skip
    assert v.unwrapped.options.max_steps == 50


def test_step_after_termination_pays_no_second_penalty() -> None:
    env = gym.make(ENV_ID, action="full", max_steps=400, world={"off_track_after": 5}).unwrapped
    env.reset(seed=1)
    terminated = False
    while not terminated:
        obs, r, terminated, _, _ = env.step(np.zeros(1, np.float32))
    assert r < -100  # the penalty, once
    pose = env.core.pose.copy()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            obs2, r2, term2, trunc2, _ = env.step(np.ones(1, np.float32))
            assert (r2, term2, trunc2) == (0.0, True, False)
            np.testing.assert_array_equal(obs2, obs)
    assert sum("reset" in str(w.message) for w in caught) == 1
    np.testing.assert_array_equal(env.core.pose, pose)
    env.reset(seed=2)
    _, r3, term3, _, _ = env.step(np.zeros(1, np.float32))
    assert not term3 and r3 <= 0


def test_vector_env_without_autoreset_pays_no_second_penalty() -> None:
    vec = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point",
                       autoreset_mode="Disabled", action="full", max_steps=400,
                       world={"off_track_after": 5})  # fmt: skip
    vec.reset(seed=0)
    seen = np.zeros(2, dtype=bool)
    for _ in range(400):
        _, r, term, _, _ = vec.step(np.zeros((2, 1), np.float32))
        assert np.all(r[seen] == 0.0) and np.all(term[seen])
        seen |= term
        if seen.all():
            break
    assert seen.all()


def test_render_shape_follows_the_arena() -> None:
    env = gym.make(ENV_ID, track="wide", render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (228, 400, 3)
    env = gym.make(ENV_ID, track="curvy", render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().shape == (400, 400, 3)
