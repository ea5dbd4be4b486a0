"""Where PPO's time goes, per environment step, with ``make_sb3_vec_env`` against SB3's
``make_vec_env`` at 16 robots, and the Amdahl bound this puts on any faster environment.

    python benchmarks/ppo_time_split.py --pairs 5 --out benchmarks/results/rl_ppo_time_split.json

For SB3's default PPO (``n_steps=256``, batch 64, 10 epochs) and for the tuned settings of
``benchmarks/results/rl_fair_hyper.json`` (at 16 robots instead of their 8), both in the
wrapper stack of the fair comparison (``VecNormalize`` over ``VecMonitor``; ``make_vec_env``
puts a ``Monitor`` around each single environment instead), one ``model.learn`` of about
4,096 environment steps is timed after a warm-up, with timers around

- ``env``: ``VecEnv.step`` as PPO calls it (``VecNormalize`` and the monitor included), and
  inside it ``vec env`` (``make_sb3_vec_env``'s or ``DummyVecEnv``'s ``step_wait``) and
  ``monitor`` (``VecMonitor.step_wait``; ``make_vec_env``'s per-environment ``Monitor`` is
  inside ``engine``) and ``engine`` (the world itself: ``LineFollowerVectorEnv.step``, or
  the single environments' ``step`` summed);
- ``forward``: the policy's forward passes during rollout collection;
- ``rollout``: all of ``collect_rollouts`` (so ``rollout - env - forward`` is SB3's own
  per-step work: tensor conversion, the rollout buffer, callbacks);
- ``train``: PPO's update (``model.train()``);
- ``learn``: the whole call.

Times are per environment step (per robot-step), in microseconds, wall clock and this
thread's CPU time. The two environments alternate in pairs (the machine is shared); medians
over pairs are reported. The Amdahl bound is ``learn / (learn - env)`` of ``make_vec_env``:
the speed-up of a whole ``learn`` if the environment, wrappers included, took no time at all.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

N_ENVS = 16
KINDS = ("make_vec_env", "make_sb3_vec_env")
PARTS = ("learn", "rollout", "env", "monitor", "vec env", "engine", "forward", "train")

#: SB3's PPO defaults (with ``n_steps=256`` so one rollout is 4,096 steps at 16 robots; the
#: update's cost per environment step does not depend on ``n_steps``).
DEFAULT = {"n_steps": 256, "batch_size": 64, "n_epochs": 10, "learning_rate": 3e-4}


class Clock:
    """Accumulated wall and thread-CPU seconds per key, by wrapping bound methods."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.on = False

    def wrap(self, obj: Any, name: str, key: str) -> None:
        """Replace ``obj.name`` by a timed call (an instance attribute shadows the method)."""
        f: Callable[..., Any] = getattr(obj, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if not self.on:
                return f(*args, **kwargs)
            w, c = time.perf_counter(), time.thread_time()
            try:
                return f(*args, **kwargs)
            finally:
                self.wall[key] += time.perf_counter() - w
                self.cpu[key] += time.thread_time() - c

        setattr(obj, name, timed)

    def reset(self) -> None:
        self.wall.clear()
        self.cpu.clear()


def hyper_of(name: str, path: Path) -> dict[str, Any]:
    """PPO keyword arguments (and ``policy_kwargs``) of ``default`` or ``tuned``."""
    if name == "default":
        return {**DEFAULT, "gamma": 0.99, "policy_kwargs": {"net_arch": [64, 64]}}
    h = dict(json.loads(path.read_text())["hyper"])
    h.pop("n_envs")
    h["policy_kwargs"] = {"net_arch": h.pop("net_arch"), "log_std_init": h.pop("log_std_init")}
    return h


def build(kind: str, hyper: dict[str, Any], normalize: bool) -> tuple[Any, Clock]:
    """PPO on the fair comparison's environment, with the timers in place."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    from sarlearn.gym.env import LineFollowerEnv
    from sarlearn.gym.fair import FairConfig
    from sarlearn.gym.sb3 import make_sb3_vec_env

    kw = FairConfig(track="curvy").env_kwargs(1000)
    clock = Clock()
    if kind == "make_vec_env":
        inner: Any = make_vec_env(lambda: LineFollowerEnv(**kw), n_envs=N_ENVS, seed=0)
        for e in inner.envs:
            clock.wrap(e, "step", "engine")
        venv: Any = inner
    else:
        inner = make_sb3_vec_env(N_ENVS, seed=0, **kw)
        clock.wrap(inner.venv, "step", "engine")
        venv = VecMonitor(inner)
        clock.wrap(venv, "step_wait", "monitor")
    clock.wrap(inner, "step_wait", "vec env")
    if normalize:
        venv = VecNormalize(venv, gamma=hyper["gamma"])
    clock.wrap(venv, "step", "env")
    model = PPO("MlpPolicy", venv, seed=0, device="cpu", **hyper)
    clock.wrap(model.policy, "forward", "forward")
    clock.wrap(model, "collect_rollouts", "rollout")
    clock.wrap(model, "train", "train")
    return model, clock


def timed_learn(model: Any, clock: Clock, steps: int) -> dict[str, dict[str, float]]:
    """One ``learn`` of ``steps`` environment steps: microseconds per step, per part."""
    clock.reset()
    clock.on = True
    n0 = model.num_timesteps
    w, c = time.perf_counter(), time.thread_time()
    model.learn(steps, reset_num_timesteps=False)
    clock.wall["learn"] = time.perf_counter() - w
    clock.cpu["learn"] = time.thread_time() - c
    clock.on = False
    n = model.num_timesteps - n0
    return {
        "wall": {k: 1e6 * clock.wall[k] / n for k in PARTS},
        "cpu": {k: 1e6 * clock.cpu[k] / n for k in PARTS},
    }


def summary(per_pair: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Medians over pairs of every part, and the derived parts and bounds."""
    out: dict[str, dict[str, float]] = {}
    for clock in ("wall", "cpu"):
        m = {k: statistics.median(p[clock][k] for p in per_pair) for k in PARTS}
        m["sb3 rollout work"] = m["rollout"] - m["env"] - m["forward"]
        m["wrappers"] = m["env"] - m["vec env"]
        # VecNormalize and VecEnv.step's own call (make_vec_env's Monitors are in "engine")
        m["normalize"] = m["env"] - max(m["monitor"], m["vec env"])
        m["adapter"] = m["vec env"] - m["engine"]
        m["other"] = m["learn"] - m["rollout"] - m["train"]
        m["env share"] = m["env"] / m["learn"]
        m["amdahl bound"] = m["learn"] / (m["learn"] - m["env"])
        out[clock] = m
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/rl_ppo_time_split.json"))
    ap.add_argument("--hyper", type=Path, default=Path("benchmarks/results/rl_fair_hyper.json"))
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4096, help="environment steps per timing")
    ap.add_argument("--settings", default="default,tuned")
    ap.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, default=True, help="VecNormalize"
    )
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    for setting in a.settings.split(","):
        hyper = hyper_of(setting, a.hyper)
        models = {k: build(k, hyper, a.normalize) for k in KINDS}
        for model, _ in models.values():
            model.learn(N_ENVS * hyper["n_steps"])  # warm-up: compilation, first update
        runs: dict[str, list[Any]] = {k: [] for k in KINDS}
        for p in range(a.pairs):
            for k in KINDS if p % 2 == 0 else KINDS[::-1]:
                runs[k].append(timed_learn(*models[k], a.steps))
        med = {k: summary(v) for k, v in runs.items()}
        ratios = {
            clock: statistics.median(
                s[clock]["learn"] / f[clock]["learn"]
                for s, f in zip(runs[KINDS[0]], runs[KINDS[1]], strict=True)
            )
            for clock in ("wall", "cpu")
        }
        row = {"setting": setting, "hyper": hyper, "median_us_per_step": med}
        row["learn_ratio_median"] = ratios
        row["pairs"] = runs
        rows.append(row)
        for k in KINDS:
            m = med[k]["cpu"]
            print(
                f"{setting:8} {k:17} CPU us/step: learn {m['learn']:7.1f}  env {m['env']:6.1f} "
                f"(vec env {m['vec env']:6.1f}, engine {m['engine']:6.1f})  forward "
                f"{m['forward']:5.1f}  sb3 rollout {m['sb3 rollout work']:5.1f}  train "
                f"{m['train']:6.1f}  bound x{m['amdahl bound']:.2f}",
                flush=True,
            )
        print(f"{setting:8} learn ratio (median of pairs): {ratios}", flush=True)
    res = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "note": "2-core machine shared with other jobs (nice 5); torch 1 thread",
        "n_envs": N_ENVS,
        "steps_per_timing": a.steps,
        "normalize": a.normalize,
        "rows": rows,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
