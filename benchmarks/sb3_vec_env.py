"""SB3 throughput: ``make_sb3_vec_env`` (one compiled call for all robots) against SB3's
``make_vec_env`` (a ``DummyVecEnv`` of single environments), both in one process.

    python benchmarks/sb3_vec_env.py --out benchmarks/results/sb3_vec_env.json

Two measurements at 16 environments, for the raw predictor rows (144 inputs) and the filtered
rows of the baselines (720 inputs):

- ``env``: environment steps per second with random actions (``VecEnv.step``);
- ``ppo``: PPO training, environment steps per second of ``model.learn`` (SB3's defaults but
  ``n_steps=256``: one rollout of 16 x 256 steps and its 10 epochs of updates per repeat);
- ``ppo rollouts``: the same steps over the time of PPO's rollout collection alone (policy
  forward passes, environment steps, buffer), i.e. without the gradient updates.

A and B alternate in pairs (the machine is shared); medians and the median of the per-pair
ratios are reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

N_ENVS = 16
SETTINGS = {
    "rows": {"track": "curvy", "reward_scale": 0.02, "max_steps": 1000},
    "filtered rows": {"track": "curvy", "filtered": True, "reward_scale": 0.02, "max_steps": 1000},
}


def make(kind: str, kw: dict[str, Any]) -> Any:
    from stable_baselines3.common.env_util import make_vec_env

    from sarlearn.gym.env import LineFollowerEnv
    from sarlearn.gym.sb3 import make_sb3_vec_env

    if kind == "sb3 make_vec_env":
        return make_vec_env(lambda: LineFollowerEnv(**kw), n_envs=N_ENVS, seed=0)
    return make_sb3_vec_env(N_ENVS, seed=0, **kw)


def env_rate(venv: Any, steps: int) -> float:
    venv.reset()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, N_ENVS, 1)).astype(np.float32)
    t = time.perf_counter()
    for a in actions:
        venv.step(a)
    return steps * N_ENVS / (time.perf_counter() - t)


def ppo_rate(venv: Any, rollouts: int) -> tuple[float, float]:
    """PPO's environment steps per second: of the whole ``learn`` and of its rollout
    collection alone (``learn`` minus the time in ``train``, the gradient updates)."""
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", venv, n_steps=256, seed=0, device="cpu")
    model.learn(N_ENVS * 256)  # warm-up: first rollout and update (compilation, allocation)
    spent = [0.0]
    train = model.train

    def timed_train() -> None:
        t = time.perf_counter()
        train()
        spent[0] += time.perf_counter() - t

    model.train = timed_train  # type: ignore[method-assign]
    t = time.perf_counter()
    model.learn(rollouts * N_ENVS * 256, reset_num_timesteps=False)
    total = time.perf_counter() - t
    steps = rollouts * N_ENVS * 256
    return steps / total, steps / (total - spent[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/sb3_vec_env.json"))
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--env-steps", type=int, default=300, help="vector steps per env timing")
    ap.add_argument("--rollouts", type=int, default=1, help="PPO rollouts per timing")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    kinds = ("sb3 make_vec_env", "make_sb3_vec_env")
    rows = []
    for name, kw in SETTINGS.items():
        envs = {k: make(k, kw) for k in kinds}
        measures = ("env", "ppo", "ppo rollouts")
        rates: dict[str, dict[str, list[float]]] = {m: {k: [] for k in kinds} for m in measures}
        for p in range(a.pairs):
            for k in kinds if p % 2 == 0 else kinds[::-1]:
                rates["env"][k].append(env_rate(envs[k], a.env_steps))
            for k in kinds if p % 2 == 0 else kinds[::-1]:
                whole, rollout = ppo_rate(envs[k], a.rollouts)
                rates["ppo"][k].append(whole)
                rates["ppo rollouts"][k].append(rollout)
        for what in measures:
            r = rates[what]
            ratios = [f / s for s, f in zip(r[kinds[0]], r[kinds[1]], strict=True)]
            row = {
                "observation": name,
                "measure": what,
                "steps_per_s": {k: statistics.median(v) for k, v in r.items()},
                "all": r,
                "ratio_median": statistics.median(ratios),
            }
            rows.append(row)
            print(
                f"{name:14} {what:12} make_vec_env {row['steps_per_s'][kinds[0]]:9.0f}/s  "
                f"make_sb3_vec_env {row['steps_per_s'][kinds[1]]:9.0f}/s  "
                f"x{row['ratio_median']:.1f}",
                flush=True,
            )
    res = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "n_envs": N_ENVS,
        "pairs": a.pairs,
        "note": "2-core machine shared with other jobs; torch 1 thread",
        "rows": rows,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
