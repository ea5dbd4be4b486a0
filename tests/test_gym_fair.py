"""The fair deep-RL protocol: early-stopped evaluations, every step counted, the signed error
in the observation."""

from __future__ import annotations

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")

from sarlearn.errors import ConfigError  # noqa: E402
from sarlearn.gym import ENV_ID, LineFollowerEnv  # noqa: E402
from sarlearn.gym.fair import FairConfig, StopWhenUnclean, run_to_clean  # noqa: E402
from sarlearn.gym.settling import rollout_clean  # noqa: E402
from sarlearn.metrics import SuccessCriterion  # noqa: E402

CRIT = SuccessCriterion(warmup=50, window=20, threshold=0.1, hold=1)


def test_observe_error_appends_the_signed_reflex_error() -> None:
    env = gym.make(ENV_ID, filtered=True, observe_error=True, action="full").unwrapped
    assert env.observation_space.shape == (721,)
    env.reset(seed=0)
    signs = set()
    for _ in range(60):
        obs, _, term, _, info = env.step(np.array([0.3], np.float32))
        assert obs[-1] == pytest.approx(info["error"] / 50.0, abs=1e-6)
        signs.add(np.sign(obs[-1]))
        if term:
            break
    assert signs & {-1.0, 1.0}
    with pytest.raises(ConfigError, match="observe_error"):
        gym.make(ENV_ID, observation="frame", observe_error=True)


def test_stop_when_unclean_ends_a_rollout_that_can_no_longer_be_clean() -> None:
    # Steering hard off the line: the moving sum climbs above the threshold after the warm-up.
    env = StopWhenUnclean(LineFollowerEnv(action="full", max_steps=500), CRIT)
    env.reset(seed=0)
    t, truncated, terminated = 0, False, False
    while not (truncated or terminated):
        _, _, terminated, truncated, _ = env.step(np.array([0.5], np.float32))
        t += 1
    assert CRIT.first_start < t < 500
    errors = np.asarray(env.errors)
    assert not rollout_clean(errors, CRIT)
    assert sum(errors[-CRIT.window :]) >= CRIT.threshold or terminated
    env.reset(seed=0)
    assert env.last == errors.tolist() and env.errors == []


def test_fair_config_rejects_unknown_settings() -> None:
    with pytest.raises(ConfigError, match="unknown PPO setting"):
        _ = FairConfig(hyper={"learning_rat": 1e-3}).hyper_parameters
    with pytest.raises(ConfigError, match=r"unknown SAC setting.*n_steps"):
        _ = FairConfig(algo="sac", hyper={"n_steps": 64}).hyper_parameters
    with pytest.raises(ConfigError, match="unknown algo 'dqn'"):
        _ = FairConfig(algo="dqn").hyper_parameters


def test_sac_settings_are_sb3_defaults_with_one_gradient_step_per_env_step() -> None:
    hp = FairConfig(algo="sac", hyper={"tau": 0.02}).hyper_parameters
    assert hp["tau"] == 0.02 and hp["net_arch"] == [256, 256] and hp["batch_size"] == 256
    # train_freq 1 (vector step) with gradient_steps -1: as many gradient steps as robots
    assert hp["train_freq"] == 1 and hp["gradient_steps"] == -1


@pytest.mark.slow
def test_run_to_clean_counts_every_step_of_driving() -> None:
    cfg = FairConfig(track="circle", seed=0, budget=3000, eval_every=512,
                     hyper={"n_envs": 2, "n_steps": 256})  # fmt: skip
    r = run_to_clean(cfg)
    h = r["history"]
    assert h[0]["train_steps"] == 0  # the untrained policy is evaluated first
    assert r["total_steps"] == r["train_steps"] + sum(x["eval_steps"] for x in h)
    assert r["eval_steps"] == sum(x["eval_steps"] for x in h)
    for i, x in enumerate(h):
        assert x["driving_steps"] == x["train_steps"] + sum(y["eval_steps"] for y in h[:i])
    if r["driving_steps"] is not None:
        assert h[-1]["clean"] and r["driving_steps"] == h[-1]["driving_steps"]
        assert r["driving_steps_verified"] == r["driving_steps"] + 5200
    else:
        assert r["total_steps"] >= cfg.budget and not any(x["clean"] for x in h)
    assert r["resets"] >= 2 + len(h) and r["compute_seconds"] > 0


def test_search_space_draws_every_searched_setting() -> None:
    optuna = pytest.importorskip("optuna")
    from sarlearn.gym.fair import PPO_DEFAULTS, SEARCHED, suggest

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    hyper = suggest(trial)
    assert set(hyper) == set(SEARCHED) <= set(PPO_DEFAULTS)
    assert 1e-4 <= hyper["learning_rate"] <= 3e-3 and hyper["n_steps"] in (64, 128, 256)
    assert FairConfig(hyper=hyper).hyper_parameters["n_epochs"] == hyper["n_epochs"]


def test_sac_search_space_draws_every_searched_setting() -> None:
    optuna = pytest.importorskip("optuna")
    from sarlearn.gym.fair import SAC_DEFAULTS, SEARCHED_SAC, suggest_sac

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    hyper = suggest_sac(study.ask())
    assert set(hyper) == set(SEARCHED_SAC) <= set(SAC_DEFAULTS)
    assert hyper["net_arch"] in ([64, 64], [256, 256]) and hyper["tau"] in (0.005, 0.02)
    assert FairConfig(algo="sac", hyper=hyper).hyper_parameters["gamma"] == hyper["gamma"]


@pytest.mark.slow
def test_run_to_clean_trains_sac_with_every_step_counted() -> None:
    cfg = FairConfig(track="circle", seed=0, budget=800, eval_every=300, algo="sac",
                     hyper={"n_envs": 2, "net_arch": [16, 16], "learning_starts": 50})  # fmt: skip
    r = run_to_clean(cfg)
    h = r["history"]
    assert r["train_steps"] >= 300 and len(h) >= 2
    assert r["total_steps"] == r["train_steps"] + r["eval_steps"]
    for i, x in enumerate(h):
        assert x["driving_steps"] == x["train_steps"] + sum(y["eval_steps"] for y in h[:i])
    assert r["hyper_parameters"]["gradient_steps"] == -1
