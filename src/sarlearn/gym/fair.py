"""Deep RL against SaR with every step of driving counted (extra ``sarlearn[rl]``).

:func:`run_to_clean` trains PPO or SAC (Stable-Baselines3, ``FairConfig.algo``) on the fast
vector environment
(:func:`~sarlearn.gym.sb3.make_sb3_vec_env`) wrapped in ``VecMonitor`` and ``VecNormalize``
and, before training and every ``eval_every`` training steps, evaluates the frozen policy with SB3's
``evaluate_policy``: one deterministic rollout of ``warmup + tail`` steps from a fixed start,
*clean* when the robot stays on the track and the moving sum of |e| stays below SaR's
threshold from the end of the warm-up on (:func:`sarlearn.gym.settling.rollout_clean`). A
rollout that can no longer be clean stops there (:class:`StopWhenUnclean`).

Every environment step counts as driving: the training steps of all robots *and* the
evaluation rollouts' steps. The run stops at the first clean evaluation and reports

- ``driving_steps``: steps driven before that evaluation began (training + earlier
  evaluations): the policy that drives cleanly existed after this much driving;
- ``driving_steps_verified``: the same plus the clean rollout itself;
- ``resets``: episodes started (each one a robot put back on the line: by hand on a real
  robot), training and evaluation;
- ``compute_seconds``: process CPU time of the whole run, and ``wall_seconds``.

:func:`suggest` and :func:`suggest_sac` are the small Optuna search spaces of PPO's and SAC's
settings that ``benchmarks/rl_fair.py tune`` searches (TPE, on tuning tracks only; objective
the mean ``driving_steps``, a run without a clean policy within the budget counting twice the
budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from sarlearn.errors import ConfigError
from sarlearn.gym.settling import SETTLE_TAIL, rollout_clean
from sarlearn.metrics import SuccessCriterion

#: PPO settings before tuning: SB3's defaults with 8 robots x 256 steps per rollout.
PPO_DEFAULTS: dict[str, Any] = {
    "n_envs": 8,
    "n_steps": 256,
    "batch_size": 64,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "clip_range": 0.2,
    "ent_coef": 0.0,
    "net_arch": [64, 64],
    "log_std_init": 0.0,
}

#: SAC settings before tuning: SB3's defaults (256-256 networks, batch 256, learning from
#: step 100, log-std -3) with 4 robots and ``gradient_steps=-1``, i.e. one gradient step per
#: environment step as SB3's single-robot default; the buffer holds every step of a run.
SAC_DEFAULTS: dict[str, Any] = {
    "n_envs": 4,
    "learning_rate": 3e-4,
    "buffer_size": 100_000,
    "learning_starts": 100,
    "batch_size": 256,
    "tau": 0.005,
    "gamma": 0.99,
    "train_freq": 1,
    "gradient_steps": -1,
    "ent_coef": "auto",
    "net_arch": [256, 256],
    "log_std_init": -3.0,
}

#: The learners :func:`run_to_clean` trains, with their settings before tuning.
ALGOS: dict[str, dict[str, Any]] = {"ppo": PPO_DEFAULTS, "sac": SAC_DEFAULTS}


@dataclass
class FairConfig:
    """One PPO or SAC run to its first clean policy (see the module docstring)."""

    track: str = "curvy"
    algo: str = "ppo"
    seed: int = 0
    budget: int = 40_000
    eval_every: int = 2048
    observe_error: bool = True
    normalize: bool = True
    episode_steps: int = 1000
    warmup: int = 200
    tail: int = SETTLE_TAIL
    window: int = 200
    threshold: float = 0.1
    hyper: dict[str, Any] = field(default_factory=dict)

    @property
    def hyper_parameters(self) -> dict[str, Any]:
        """:data:`PPO_DEFAULTS` or :data:`SAC_DEFAULTS` updated by ``hyper``."""
        if self.algo not in ALGOS:
            raise ConfigError(f"unknown algo {self.algo!r}; known: {', '.join(ALGOS)}")
        defaults = ALGOS[self.algo]
        unknown = set(self.hyper) - set(defaults)
        if unknown:
            raise ConfigError(
                f"unknown {self.algo.upper()} setting(s) {sorted(unknown)}; "
                f"known: {', '.join(defaults)}"
            )
        return {**defaults, **self.hyper}

    def env_kwargs(self, max_steps: int) -> dict[str, Any]:
        """The baselines' environment: filtered rows, reflex, reward -|e| / error_gain."""
        return {
            "track": self.track,
            "filtered": True,
            "action": "reflex",
            "reward_scale": 0.02,
            "max_steps": max_steps,
            "observe_error": self.observe_error,
        }

    @property
    def criterion(self) -> SuccessCriterion:
        return SuccessCriterion(
            warmup=self.warmup, window=self.window, threshold=self.threshold, hold=1
        )


class StopWhenUnclean(gym.Wrapper):
    """Ends an evaluation rollout (``truncated``) as soon as it can no longer be clean: the
    moving sum of |e| over ``window`` steps reaches the threshold after the warm-up. Records
    the errors of the rollout in :attr:`errors` (and, once it is over, :attr:`last`)."""

    def __init__(self, env: gym.Env, criterion: SuccessCriterion) -> None:
        super().__init__(env)
        self.criterion = criterion
        self.errors: list[float] = []
        #: |e| of the last finished rollout (SB3's vector env resets right after the end).
        self.last: list[float] = []

    def reset(self, **kwargs: Any) -> Any:
        if self.errors:
            self.last = self.errors
        self.errors = []
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.errors.append(abs(info["error"]))
        c, t = self.criterion, len(self.errors)
        if t > c.first_start and sum(self.errors[-c.window :]) >= c.threshold:
            truncated = True
        return obs, reward, terminated, truncated, info


def run_to_clean(
    cfg: FairConfig, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Train PPO or SAC until its frozen policy drives a clean rollout or ``budget`` driving steps
    are spent; returns the counts of the module docstring and every evaluation."""
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import (
        DummyVecEnv,
        VecMonitor,
        VecNormalize,
        sync_envs_normalization,
    )

    from sarlearn.gym.env import LineFollowerEnv
    from sarlearn.gym.sb3 import make_sb3_vec_env

    hp = cfg.hyper_parameters
    n_envs = int(hp.pop("n_envs"))
    policy_kwargs = {"net_arch": hp.pop("net_arch"), "log_std_init": hp.pop("log_std_init")}
    torch.set_num_threads(1)
    torch.manual_seed(cfg.seed)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    train: Any = VecMonitor(
        make_sb3_vec_env(n_envs, seed=cfg.seed, **cfg.env_kwargs(cfg.episode_steps))
    )
    crit = cfg.criterion
    n_eval = cfg.warmup + cfg.tail
    watch = StopWhenUnclean(LineFollowerEnv(**cfg.env_kwargs(n_eval)), crit)
    # Wrapped as the training env is, so that sync_envs_normalization finds the layers.
    evaluation: Any = VecMonitor(DummyVecEnv([lambda: watch]))
    evaluation.seed(10_000 + cfg.seed)
    if cfg.normalize:
        train = VecNormalize(train, gamma=hp["gamma"])
        evaluation = VecNormalize(evaluation, training=False, norm_reward=False)
    algo = {"ppo": PPO, "sac": SAC}[cfg.algo]
    model = algo("MlpPolicy", train, seed=cfg.seed, device="cpu", policy_kwargs=policy_kwargs, **hp)
    history: list[dict[str, Any]] = []
    driven = 0  # evaluation steps so far
    result: dict[str, Any] = {"driving_steps": None, "driving_steps_verified": None}
    first = True
    while model.num_timesteps + driven < cfg.budget:
        if not first:  # the first evaluation is of the untrained policy (reflex + ~0)
            model.learn(cfg.eval_every, reset_num_timesteps=False, progress_bar=False)
        first = False
        before = model.num_timesteps + driven
        if cfg.normalize:
            sync_envs_normalization(train, evaluation)
        evaluation.seed(10_000 + cfg.seed)  # the same start for every evaluation
        evaluate_policy(model, evaluation, n_eval_episodes=1, deterministic=True, warn=False)
        errors = np.asarray(watch.last)
        watch.last = []
        driven += len(errors)
        clean = len(errors) == n_eval and rollout_clean(errors, crit)
        h = {
            "train_steps": int(model.num_timesteps),
            "eval_steps": len(errors),
            "driving_steps": before,
            "clean": bool(clean),
            "mean_abs_error": float(errors.mean()),
        }
        history.append(h)
        if progress is not None:
            progress(h)
        if clean:
            result.update(driving_steps=before, driving_steps_verified=before + len(errors))
            break
    resets = n_envs + _episodes(train) + len(history)
    result.update(
        config=asdict(cfg),
        hyper_parameters=cfg.hyper_parameters,
        train_steps=int(model.num_timesteps),
        eval_steps=driven,
        total_steps=int(model.num_timesteps) + driven,
        resets=resets,
        compute_seconds=time.process_time() - cpu0,
        wall_seconds=time.perf_counter() - wall0,
        history=history,
    )
    return result


def _episodes(venv: Any) -> int:
    """Episodes finished so far in the training env (``VecMonitor`` below any wrappers)."""
    from stable_baselines3.common.vec_env import VecMonitor

    v = venv
    while not isinstance(v, VecMonitor):
        v = v.venv
    return int(v.episode_count)


#: The settings :func:`suggest` searches.
SEARCHED = ("learning_rate", "n_steps", "batch_size", "n_epochs", "gamma", "log_std_init")


def suggest(trial: Any) -> dict[str, Any]:
    """Draw PPO's tuning settings from an Optuna ``trial`` (the search space)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "n_steps": trial.suggest_categorical("n_steps", [64, 128, 256]),
        "batch_size": trial.suggest_categorical("batch_size", [64, 256]),
        "n_epochs": trial.suggest_categorical("n_epochs", [3, 5, 10]),
        "gamma": trial.suggest_categorical("gamma", [0.95, 0.98, 0.99]),
        "log_std_init": trial.suggest_float("log_std_init", -2.0, 0.0),
    }


#: The settings :func:`suggest_sac` searches.
SEARCHED_SAC = ("learning_rate", "batch_size", "gamma", "tau", "learning_starts", "net_arch")


def suggest_sac(trial: Any) -> dict[str, Any]:
    """Draw SAC's tuning settings from an Optuna ``trial`` (the search space)."""
    width = trial.suggest_categorical("width", [64, 256])  # Optuna's choices are scalars
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [64, 256]),
        "gamma": trial.suggest_categorical("gamma", [0.95, 0.98, 0.99]),
        "tau": trial.suggest_categorical("tau", [0.005, 0.02]),
        "learning_starts": trial.suggest_categorical("learning_starts", [100, 1000]),
        "net_arch": [width, width],
    }


__all__ = [
    "ALGOS",
    "PPO_DEFAULTS",
    "SAC_DEFAULTS",
    "SEARCHED",
    "SEARCHED_SAC",
    "FairConfig",
    "StopWhenUnclean",
    "run_to_clean",
    "suggest",
    "suggest_sac",
]
