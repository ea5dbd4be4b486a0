"""The Gymnasium environment sarlearn/LineFollower-v0 and its vector environment."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.vector import AutoresetMode, SyncVectorEnv  # noqa: E402

import sarlearn  # noqa: E402  (registers the environment)
from sarlearn.errors import ConfigError  # noqa: E402
from sarlearn.gym import ENV_ID  # noqa: E402
from sarlearn.stages.world import load_track  # noqa: E402


def make(**kw):
    return gym.make(ENV_ID, **kw)


@pytest.fixture(scope="module")
def user_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's image: an oval drawn into a PNG that is not one of the built-in names."""
    path = tmp_path_factory.mktemp("img") / "my_floor.png"
    load_track("oval", resolution=1.0, line_width=4.0).save_png(path)
    return path


def test_import_sarlearn_registers_the_environment_lazily() -> None:
    spec = gym.spec(ENV_ID)
    assert spec.entry_point == "sarlearn.gym.env:LineFollowerEnv"
    assert spec.vector_entry_point == "sarlearn.gym.vector:LineFollowerVectorEnv"
    assert sarlearn.__version__


@pytest.mark.slow  # two fresh interpreters
def test_import_sarlearn_does_not_import_gymnasium_but_registers_once_it_is() -> None:
    import subprocess
    import sys

    code = (
        "import sys, sarlearn; assert 'gymnasium' not in sys.modules; "
        "import gymnasium; assert 'sarlearn/LineFollower-v0' in gymnasium.envs.registry; "
        "assert 'sarlearn.gym.env' not in sys.modules; "
        "gymnasium.make('sarlearn/LineFollower-v0')"
    )
    blocked = (  # gymnasium not installed: import sarlearn still works, nothing registered
        "import sys; sys.modules['gymnasium'] = None; import sarlearn; "
        "from sarlearn.gym.registration import register_envs; assert not register_envs()"
    )
    src = str(Path(sarlearn.__file__).parents[1])
    for c in (code, blocked):
        subprocess.run([sys.executable, "-c", c], check=True, env={"PYTHONPATH": src},
                       timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"filtered": True},
        {"observation": "camera"},
        {"observation": "camera", "filtered": True, "filters": {"kind": "delay"}},
        {"observation": "frame"},
        {"action": "full"},
        {"reward": "on_line", "dtype": np.float64},
    ],
)
def test_check_env_on_a_built_in_track(kw: dict) -> None:
    env = make(track="curvy", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # check_env's warnings count as failures here
        check_env(env.unwrapped)


def test_check_env_on_a_user_image(user_png: Path) -> None:
    for kw in ({}, {"observation": "camera", "filtered": True}):
        env = make(track=str(user_png), **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
        obs, _ = env.reset(seed=0)
        assert obs in env.observation_space
        assert obs.max() > 0 or kw  # the rows ahead see the line at the start


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"track": "no-such-track"}, ["track", "no-such-track", "curvy"]),
        ({"track": "missing/floor.png"}, ["track", "floor.png"]),
        ({"observation": "lidar"}, ["observation", "lidar", "rows"]),
        ({"action": "throttle"}, ["action", "throttle", "reflex"]),
        ({"reward": "speed"}, ["reward", "speed", "abs_error"]),
        ({"observation": "frame", "filtered": True}, ["filtered", "frame"]),
        ({"max_steps": 0}, ["max_steps"]),
        ({"action_scale": -1.0}, ["action_scale"]),
        ({"render_mode": "ascii"}, ["render_mode", "ascii"]),
        ({"world": {"speed": -3}}, ["speed"]),
        ({"dtype": np.int32}, ["dtype"]),
    ],
)
def test_bad_arguments_fail_clearly_at_make(kw: dict, words: list[str]) -> None:
    with pytest.raises(ConfigError) as exc:
        make(**kw)
    for w in words:
        assert w in str(exc.value)


def test_bad_vector_arguments_fail_clearly() -> None:
    for kw, word in (
        ({"num_envs": 0}, "num_envs"),
        ({"num_envs": 2, "backend": "gpu"}, "backend"),
        ({"num_envs": 2, "autoreset_mode": "Sometimes"}, "autoreset_mode"),
        ({"num_envs": 2, "observation": "lidar"}, "observation"),
    ):
        n = kw.pop("num_envs")
        with pytest.raises(ConfigError, match=word):
            gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", **kw)


def test_reward_is_minus_abs_error_and_leaving_the_track_is_penalised() -> None:
    env = make(action="full", max_steps=400, world={"off_track_after": 5}).unwrapped
    env.reset(seed=1)
    total_steps, rewards, infos = 0, [], []
    terminated = False
    while not terminated:
        _, r, terminated, truncated, info = env.step(np.zeros(1, np.float32))  # straight off
        rewards.append(r)
        infos.append(info)
        total_steps += 1
        assert not truncated
    for r, info in zip(rewards[:-1], infos[:-1], strict=True):
        assert r == pytest.approx(-abs(info["error"]))
    # As if the largest error (error_gain 50) lasted to the end of the episode.
    left = 400 - total_steps
    assert rewards[-1] == pytest.approx(-abs(infos[-1]["error"]) - 50.0 * left)
    env2 = make(reward="on_line", action="full", world={"off_track_after": 5}).unwrapped
    env2.reset(seed=1)
    _, r, *_ = env2.step(np.zeros(1, np.float32))
    assert 0.0 <= r <= 1.0


def test_truncated_at_the_step_limit() -> None:
    env = make(max_steps=30).unwrapped
    env.reset(seed=0)
    for t in range(30):
        _, _, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        assert not terminated
        assert truncated == (t == 29)
        assert info["step"] == t + 1


def test_reflex_action_adds_steering_to_the_reflex() -> None:
    """action=reflex with a = 0 is the reflex alone: SimWorld.step(0) step for step."""
    from sarlearn.config import WorldConfig
    from sarlearn.stages.world import SimWorld

    env = make(track="curvy").unwrapped
    env.reset(seed=3)
    world = SimWorld(WorldConfig(track="curvy", start=tuple(env.core.pose[0])))
    for _ in range(200):
        _, _, _, _, info = env.step(np.zeros(1, np.float32))
        world.step(0.0)
        assert info["error"] == world.reflex_error()[0]
    np.testing.assert_array_equal(env.core.pose, world.pose)


def test_seeding_and_determinism() -> None:
    def episode(seed: int | None, env=None) -> tuple[np.ndarray, list[float]]:
        env = env or make(filtered=True)
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(7)
        rewards = []
        for _ in range(100):
            obs, r, *_ = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
            rewards.append(r)
        return obs, rewards

    a, b = episode(5), episode(5)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1]
    starts = {tuple(make().unwrapped.reset(seed=s)[1]["pose"]) for s in range(5)}
    assert len(starts) == 5  # seeds give different start places on the line
    env = make()
    p1 = env.reset(seed=11)[1]["pose"]
    p2 = env.reset()[1]["pose"]  # continues the seeded generator, a new start
    env.reset(seed=11)
    np.testing.assert_array_equal(env.reset()[1]["pose"], p2)
    assert not np.array_equal(p1, p2)
    fixed = make(random_start=False).unwrapped
    np.testing.assert_array_equal(fixed.reset(seed=1)[1]["pose"], fixed.reset(seed=2)[1]["pose"])


def _run_both(vec, sync, n: int, steps: int, seed: int = 3, forced: bool = False) -> int:
    """Step both with the same actions; the number of episode ends seen. ``forced``: the
    compiled world is teacher-forced (each step starts from the numpy worlds' poses and lost
    counters) and floats are compared to rounding: the reflex closes the loop, so a free run
    would compare the CPU's last bits of sin and cos (one ulp of a pose grows to units)."""
    o1, _ = vec.reset(seed=seed)
    o2, _ = sync.reset(seed=seed)
    np.testing.assert_array_equal(o1, o2)
    rng = np.random.default_rng(0)
    dones = 0
    same = np.testing.assert_array_equal
    if forced:

        def same(x: object, y: object) -> None:
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9)

    for _ in range(steps):
        if forced:
            world = vec.unwrapped.core.world
            for i, env in enumerate(sync.envs):
                ref = env.unwrapped.core.world
                world.place([i], ref.pose)
                world.lost[i] = ref.lost_steps[0]
        a = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        r1, r2 = vec.step(a), sync.step(a)
        for x, y in zip(r1[:4], r2[:4], strict=True):
            same(x, y)
        np.testing.assert_array_equal(r1[2], r2[2])  # terminated: exactly
        np.testing.assert_array_equal(r1[3], r2[3])  # truncated
        same(r1[4]["error"], r2[4]["error"])
        dones += int((r1[2] | r1[3]).sum())
    return dones


@pytest.mark.parametrize("backend", ["compiled", "numpy"])
@pytest.mark.parametrize(
    "kw",
    [
        {"filtered": True, "max_steps": 60},  # truncations and autoresets
        {"action": "full", "world": {"off_track_after": 10}, "max_steps": 150},  # terminations
    ],
)
def test_vector_env_equals_the_single_env_step_for_step(backend: str, kw: dict) -> None:
    n = 3
    vec = gym.make_vec(
        ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", backend=backend, **kw
    )
    sync = SyncVectorEnv([lambda: make(**kw) for _ in range(n)])
    assert vec.single_observation_space == sync.single_observation_space
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    # numpy: the same code, bit for bit; compiled: equal to rounding, teacher-forced
    assert _run_both(vec, sync, n, 160, forced=backend == "compiled") > 0


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_vector_env_other_autoreset_modes(mode: AutoresetMode) -> None:
    from sarlearn.gym import LineFollowerVectorEnv

    n, kw = 2, {"max_steps": 20, "filtered": True}
    vec = LineFollowerVectorEnv(n, autoreset_mode=mode, **kw)
    sync = SyncVectorEnv([lambda: make(**kw) for _ in range(n)], autoreset_mode=mode)
    vec.reset(seed=1)
    sync.reset(seed=1)
    zero = np.zeros((n, 1), np.float32)
    for _ in range(45):
        r1, r2 = vec.step(zero), sync.step(zero)
        for x, y in zip(r1[:4], r2[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        if mode == AutoresetMode.SAME_STEP and r1[3].any():
            np.testing.assert_array_equal(
                np.stack(r1[4]["final_obs"]), np.stack(r2[4]["final_obs"])
            )
        if mode == AutoresetMode.DISABLED and r1[3].any():
            mask = r1[3]
            o1, _ = vec.reset(options={"reset_mask": mask})
            o2, _ = sync.reset(options={"reset_mask": mask})
            np.testing.assert_array_equal(o1, o2)


def test_vector_env_max_episode_steps_means_max_steps() -> None:
    vec = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point",
                       max_episode_steps=7)  # fmt: skip
    assert vec.unwrapped.options.max_steps == 7


def test_render_rgb_array() -> None:
    env = make(render_mode="rgb_array", observation="camera")
    env.reset(seed=0)
    env.step(np.zeros(1, np.float32))
    img = env.render()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.std() > 0
    vec = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point",
                       render_mode="rgb_array")  # fmt: skip
    vec.reset(seed=0)
    assert vec.render().shape[2] == 3


def test_reset_options_place_the_robot() -> None:
    env = make().unwrapped
    _, info = env.reset(seed=0, options={"pose": (125.0, 125.0, 0.0)})
    np.testing.assert_array_equal(info["pose"], [125.0, 125.0, 0.0])
    with pytest.raises(ValueError, match="pose"):
        env.reset(options={"pose": (1.0, 2.0)})
