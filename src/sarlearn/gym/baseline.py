"""Deep-RL baselines on the line-following robot: PPO and SAC (Stable-Baselines3, CPU).

:func:`train_baseline` trains one agent on ``sarlearn/LineFollower-v0`` and, every
``eval_every`` environment steps, freezes the policy and drives one evaluation rollout with it
(deterministic actions, its own fixed start) of ``warmup + tail`` steps. A rollout is *clean*
(:func:`sarlearn.gym.settling.rollout_clean`) when the robot stays on the track and the moving
sum of |e| over the success window stays below the threshold from the end of the warm-up on:
SaR's success criterion, held for the ``tail`` (5,000) steps that define settling.

Reported per run: ``first_clean_steps`` (training steps at the first clean evaluation, the
analogue of first passage) and ``settled_steps`` (training steps at the first clean evaluation
after which every evaluation up to the end of training was clean, the analogue of
``settled_step``; None = not settled within the budget). Results are written atomically after
every evaluation (``summary.json``), so a long run can be watched; a finished run is not
repeated (resume at the granularity of runs).

Needs the optional extra ``sarlearn[rl]`` (gymnasium, stable-baselines3, torch).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sarlearn.atomic import atomic_write_bytes
from sarlearn.errors import ConfigError
from sarlearn.gym.registration import MissingExtraError
from sarlearn.gym.settling import SETTLE_TAIL, rollout_clean
from sarlearn.metrics import SuccessCriterion, moving_sum

ALGORITHMS = ("ppo", "sac")

#: Hyper-parameters used unless overridden (SB3's defaults where not listed). Chosen for a
#: 2-core CPU budget: smaller SAC networks and fewer gradient steps than SB3's defaults.
DEFAULT_HYPER: dict[str, dict[str, Any]] = {
    "ppo": {"n_envs": 4, "n_steps": 512, "batch_size": 64, "learning_rate": 3e-4},
    "sac": {
        "learning_starts": 1000,
        "batch_size": 128,
        "train_freq": 4,
        "gradient_steps": 1,
        "net_arch": [64, 64],
        "learning_rate": 1e-3,
    },
}


@dataclass
class BaselineConfig:
    """One deep-RL baseline run (see docs/gym.md and docs/results.md)."""

    algo: str = "ppo"
    track: str = "curvy"
    seed: int = 0
    total_steps: int = 50_000
    eval_every: int = 5_000
    observation: str = "rows"
    filtered: bool = True
    action: str = "reflex"
    reward: str = "abs_error"
    reward_scale: float = 0.02
    episode_steps: int = 1000
    warmup: int = 200
    tail: int = SETTLE_TAIL
    window: int = 200
    threshold: float = 0.1
    hyper: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field."""
        if self.algo not in ALGORITHMS:
            raise ConfigError(f"algo={self.algo!r} is not one of {', '.join(ALGORITHMS)}")
        for name in ("total_steps", "eval_every", "episode_steps", "tail", "window"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eval_every > self.total_steps:
            raise ConfigError(
                f"eval_every ({self.eval_every}) exceeds total_steps ({self.total_steps})"
            )
        from sarlearn.gym.options import make_options

        make_options(**self.env_kwargs(self.episode_steps))  # track, observation, action ...
        unknown = set(self.hyper) - set(_HYPER_KEYS[self.algo])
        if unknown:
            raise ConfigError(
                f"unknown {self.algo} hyper-parameter(s) {sorted(unknown)}; known: "
                f"{', '.join(_HYPER_KEYS[self.algo])}"
            )

    @property
    def hyper_parameters(self) -> dict[str, Any]:
        """The defaults of :data:`DEFAULT_HYPER` updated by ``hyper``."""
        return {**DEFAULT_HYPER[self.algo], **self.hyper}

    def env_kwargs(self, max_steps: int) -> dict[str, Any]:
        """Arguments of :class:`~sarlearn.gym.env.LineFollowerEnv`."""
        return {
            "track": self.track,
            "observation": self.observation,
            "filtered": self.filtered,
            "action": self.action,
            "reward": self.reward,
            "reward_scale": self.reward_scale,
            "max_steps": max_steps,
        }

    @property
    def criterion(self) -> SuccessCriterion:
        return SuccessCriterion(
            warmup=self.warmup, window=self.window, threshold=self.threshold, hold=1
        )


_HYPER_KEYS = {
    "ppo": (
        "n_envs", "n_steps", "batch_size", "learning_rate", "n_epochs", "gamma", "gae_lambda",
        "clip_range", "ent_coef", "net_arch", "log_std_init", "vf_coef", "max_grad_norm",
        "target_kl", "clip_range_vf", "normalize_advantage", "use_sde", "sde_sample_freq",
    ),
    "sac": (
        "learning_starts", "batch_size", "train_freq", "gradient_steps", "net_arch",
        "learning_rate", "gamma", "tau", "buffer_size", "ent_coef", "n_envs",
        "target_update_interval", "target_entropy", "use_sde", "sde_sample_freq",
        "log_std_init",
    ),
}  # fmt: skip


def require_rl() -> None:
    try:
        import stable_baselines3  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "the RL baselines need stable-baselines3 and torch: pip install 'sarlearn[rl]'"
        ) from None


def evaluate_policy(
    predict: Callable[[np.ndarray], np.ndarray], cfg: BaselineConfig, seed: int
) -> dict[str, Any]:
    """Drive one evaluation rollout of ``warmup + tail`` steps with a frozen policy.

    Stops early once the rollout can no longer be clean (moving sum above the threshold after
    the warm-up, or off track). Returns ``clean``, ``steps`` driven, ``mean_abs_error`` and
    ``terminated``.
    """
    from sarlearn.gym.env import LineFollowerEnv

    crit = cfg.criterion
    n = cfg.warmup + cfg.tail
    env = LineFollowerEnv(**cfg.env_kwargs(max_steps=n))
    obs, info = env.reset(seed=seed)
    errors = np.empty(n)
    window_sum = 0.0
    terminated = False
    t = 0
    for t in range(n):
        obs, _, terminated, truncated, info = env.step(predict(obs))
        errors[t] = info["error"]
        # Incremental moving sum for the early stop; the verdict uses the metrics functions.
        window_sum += abs(errors[t]) - (abs(errors[t - crit.window]) if t >= crit.window else 0)
        if terminated or (t >= crit.first_start and window_sum >= crit.threshold * 1.5):
            break
        if truncated:
            break
    e = errors[: t + 1]
    clean = (not terminated) and e.size == n and rollout_clean(e, crit)
    ms = moving_sum(np.abs(e), crit.window)
    return {
        "clean": bool(clean),
        "steps": int(e.size),
        "mean_abs_error": float(np.mean(np.abs(e))),
        "final_moving_sum": float(ms[-1]),
        "terminated": bool(terminated),
    }


def settling_of(history: list[dict[str, Any]]) -> tuple[int | None, int | None]:
    """``(first_clean_steps, settled_steps)`` of an evaluation history (training steps)."""
    first = next((h["train_steps"] for h in history if h["clean"]), None)
    settled = None
    for h in reversed(history):
        if not h["clean"]:
            break
        settled = h["train_steps"]
    return first, settled


def train_baseline(
    cfg: BaselineConfig,
    out_dir: str | Path | None = None,
    *,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one PPO or SAC agent; returns (and writes) the summary.

    Raises:
        ConfigError: a bad setting. MissingExtraError: stable-baselines3 or torch missing.
    """
    cfg.validate()
    require_rl()
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import VecMonitor

    from sarlearn.gym.sb3 import make_sb3_vec_env

    out = Path(out_dir) if out_dir is not None else None
    if out is not None and (out / "summary.json").is_file():
        done = json.loads((out / "summary.json").read_text())
        if done.get("finished") and done.get("config") == asdict(cfg):
            return done  # resume: this run is complete
    torch.manual_seed(cfg.seed)
    hp = cfg.hyper_parameters
    kwargs = cfg.env_kwargs(max_steps=cfg.episode_steps)
    policy_kwargs = {"net_arch": hp.pop("net_arch")} if "net_arch" in hp else {}
    if "log_std_init" in hp:
        policy_kwargs["log_std_init"] = hp.pop("log_std_init")
    n_envs = int(hp.pop("n_envs", 1))
    # A 720-input first layer is small: one thread avoids contention on a shared machine.
    torch.set_num_threads(1)
    # All robots in one compiled call (sarlearn.gym.sb3); VecMonitor records the episodes as
    # make_vec_env's Monitor wrappers would.
    venv = VecMonitor(make_sb3_vec_env(n_envs, seed=cfg.seed, **kwargs))
    algo = PPO if cfg.algo == "ppo" else SAC
    model = algo(
        "MlpPolicy", venv, seed=cfg.seed, device="cpu", verbose=0, policy_kwargs=policy_kwargs, **hp
    )
    eval_seed = 10_000 + cfg.seed
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    t0 = time.perf_counter()
    train_time = [0.0]

    def predict(obs: np.ndarray) -> np.ndarray:
        return model.predict(obs, deterministic=True)[0]

    def evaluate() -> None:
        t = time.perf_counter()
        res = evaluate_policy(predict, cfg, eval_seed)
        res.update(
            train_steps=int(model.num_timesteps),
            eval_seconds=time.perf_counter() - t,
            wall_seconds=time.perf_counter() - t0,
        )
        history.append(res)
        first, settled = settling_of(history)
        summary.update(
            algo=cfg.algo,
            track=cfg.track,
            seed=cfg.seed,
            config=asdict(cfg),
            hyper_parameters=cfg.hyper_parameters,
            first_clean_steps=first,
            settled_steps=settled,
            train_seconds=train_time[0],
            wall_seconds=time.perf_counter() - t0,
            finished=False,
            history=history,
        )
        if out is not None:
            atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
        if progress is not None:
            progress(res)

    class _Every(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next = cfg.eval_every
            self.t = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next:
                train_time[0] += time.perf_counter() - self.t
                evaluate()
                self.next += cfg.eval_every
                self.t = time.perf_counter()
            return True

    evaluate()  # the untrained policy: the reflex plus a near-zero steering
    model.learn(total_timesteps=cfg.total_steps, callback=_Every())
    if history[-1]["train_steps"] < model.num_timesteps:
        evaluate()
    summary["finished"] = True
    summary["wall_seconds"] = time.perf_counter() - t0
    if out is not None:
        atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=2).encode())
        model.save(out / "model.zip")
    return summary


__all__ = [
    "ALGORITHMS",
    "DEFAULT_HYPER",
    "BaselineConfig",
    "evaluate_policy",
    "settling_of",
    "train_baseline",
]
