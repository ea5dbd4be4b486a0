"""`sarlearn rl-baseline`: train PPO or SAC on a track and measure the steps until it settles."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NoReturn

import typer

from sarlearn.cli.checks import check_output_path
from sarlearn.errors import SarlearnError


def rl_baseline(
    algo: str = typer.Option("ppo", "--algo", "-a", help="ppo or sac."),
    track: list[str] = typer.Option(
        ["curvy"], "--track", "-t", help="Built-in track or image (repeat for several)."
    ),
    seeds: str = typer.Option("0", "--seeds", "-s", help="Seeds, e.g. 0,1,2 or 0-4."),
    steps: int = typer.Option(50_000, "--steps", "-n", help="Training environment steps."),
    eval_every: int = typer.Option(5_000, "--eval-every", help="Steps between evaluations."),
    observation: str = typer.Option("rows", "--observation", help="rows, camera or frame."),
    filtered: bool = typer.Option(
        True, "--filtered/--raw", help="Filter bank on the predictors (as SaR sees them)."
    ),
    action: str = typer.Option("reflex", "--action", help="reflex (paper) or full."),
    reward_scale: float = typer.Option(0.02, "--reward-scale", help="Reward = -|e| * this."),
    episode_steps: int = typer.Option(1000, "--episode-steps", help="Training episode length."),
    hyper: list[str] = typer.Option(
        [], "--hp", help="Hyper-parameter KEY=VALUE (TOML value), e.g. --hp learning_rate=1e-3."
    ),
    out: str = typer.Option("runs/rl-baseline", "--out", "-o", help="Output folder."),
) -> None:
    """Train a deep-RL baseline (Stable-Baselines3, CPU) on the SaR robot; every
    --eval-every steps the frozen policy drives a 5,200-step rollout, which is clean when the
    moving sum of |e| stays below SaR's threshold after the warm-up. Reports the training
    steps to the first clean rollout and to settling (clean at every later evaluation).

    Writes OUT/<algo>/<track>/seed-<k>/summary.json as it goes; finished runs are skipped.
    Needs the extra sarlearn[rl].
    """
    try:
        from sarlearn.config import parse_assignment
        from sarlearn.gym.baseline import BaselineConfig, train_baseline

        if not str(out).strip():
            raise SarlearnError("--out is empty; give the output folder")
        folder = check_output_path(out, "--out")  # before training, not after it
        seed_list = _parse_seeds(seeds)
        hp = dict(parse_assignment(h, "--hp") for h in hyper)
        for key, value in hp.items():
            check_hyper(key, value)
        rows = []
        for tr in track:
            for seed in seed_list:
                cfg = BaselineConfig(
                    algo=algo, track=tr, seed=seed, total_steps=steps, eval_every=eval_every,
                    observation=observation, filtered=filtered, action=action,
                    reward_scale=reward_scale, episode_steps=episode_steps, hyper=hp,
                )  # fmt: skip
                cfg.validate()
                run_dir = folder / algo / Path(tr).stem / f"seed-{seed}"

                def show(res: dict, tr: str = tr, seed: int = seed) -> None:
                    typer.echo(
                        f"{algo} {tr} seed {seed}: {res['train_steps']:>7} steps  "
                        f"clean={res['clean']!s:5}  mean|e|={res['mean_abs_error']:.3f}  "
                        f"({res['wall_seconds']:.0f} s)"
                    )

                s = train_baseline(cfg, run_dir, progress=show)
                rows.append(s)
                typer.echo(
                    f"== {algo} {tr} seed {seed}: first clean at {s['first_clean_steps']}, "
                    f"settled at {s['settled_steps']} (of {steps} steps), "
                    f"{s['wall_seconds']:.0f} s"
                )
    except (SarlearnError, ValueError) as exc:
        _fail(str(exc))
    table = [
        {k: r[k] for k in ("algo", "track", "seed", "first_clean_steps", "settled_steps")}
        for r in rows
    ]
    typer.echo(json.dumps(table))


#: Most seeds of one command (each is a whole training run).
MAX_SEEDS = 10_000
#: What each hyper-parameter may be: (kind, low, high); kinds "int", "float", "net_arch",
#: "ent_coef" (a float, or "auto" for SAC).
HYPER_TYPES: dict[str, tuple[str, float, float]] = {
    "n_envs": ("int", 1, 256),
    "n_steps": ("int", 1, 10**7),
    "batch_size": ("int", 1, 10**7),
    "n_epochs": ("int", 1, 10**4),
    "learning_starts": ("int", 0, 10**9),
    "train_freq": ("int", 1, 10**7),
    "gradient_steps": ("int", 1, 10**4),
    "buffer_size": ("int", 1, 10**7),
    "learning_rate": ("float", 0, 1e3),
    "gamma": ("float", 0, 1),
    "gae_lambda": ("float", 0, 1),
    "clip_range": ("float", 0, 1e3),
    "tau": ("float", 0, 1),
    "log_std_init": ("float", -20, 20),
    "ent_coef": ("ent_coef", 0, 1e3),
    "net_arch": ("net_arch", 1, 4096),
}


def check_hyper(key: str, value: Any) -> None:
    """SarlearnError naming ``--hp KEY`` if ``value`` is of the wrong type or out of range
    (unknown keys are named by the run's own check)."""
    kind, low, high = HYPER_TYPES.get(key, ("any", 0, 0))
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        want = f"an integer from {low:,} to {high:,}"
    elif kind in ("float", "ent_coef"):
        ok = number and math.isfinite(value) and low <= value <= high
        ok = ok or (kind == "ent_coef" and value == "auto")
        want = f"a number from {low:g} to {high:g}" + (' or "auto"' if kind == "ent_coef" else "")
    elif kind == "net_arch":
        ok = (
            isinstance(value, list)
            and 1 <= len(value) <= 32
            and all(isinstance(n, int) and not isinstance(n, bool) and low <= n <= high
                    for n in value)
        )  # fmt: skip
        want = f"a list of 1 to 32 layer sizes from 1 to {high:,}, e.g. [64, 64]"
    else:
        return
    if not ok:
        raise SarlearnError(f"--hp {key}={value!r}: expected {want}")


def _parse_seeds(text: str) -> list[int]:
    ranges: list[range] = []
    try:
        for part in text.split(","):
            a, sep, b = part.strip().partition("-")
            ranges.append(range(int(a), int(b) + 1) if sep else range(int(a), int(a) + 1))
    except ValueError:
        raise SarlearnError(f"--seeds {text!r}: expected e.g. 0,1,2 or 0-4") from None
    count = sum(len(r) for r in ranges)  # before the list is made
    if count > MAX_SEEDS:
        raise SarlearnError(f"--seeds {text!r}: {count:,} seeds; at most {MAX_SEEDS:,}")
    out = [k for r in ranges for k in r]
    if not out:
        raise SarlearnError(f"--seeds {text!r}: no seeds given (a range a-b needs a <= b)")
    if min(out) < 0 or max(out) >= 2**32:
        raise SarlearnError(f"--seeds {text!r}: seeds must be from 0 to 2**32 - 1")
    return out


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
