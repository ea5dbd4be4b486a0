"""`sarlearn rl-baseline`: train PPO or SAC on a track and measure the steps until it settles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import typer

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
    out: Path = typer.Option(Path("runs/rl-baseline"), "--out", "-o", help="Output folder."),
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

        seed_list = _parse_seeds(seeds)
        hp = dict(parse_assignment(h, "--hp") for h in hyper)
        rows = []
        for tr in track:
            for seed in seed_list:
                cfg = BaselineConfig(
                    algo=algo, track=tr, seed=seed, total_steps=steps, eval_every=eval_every,
                    observation=observation, filtered=filtered, action=action,
                    reward_scale=reward_scale, episode_steps=episode_steps, hyper=hp,
                )  # fmt: skip
                cfg.validate()
                run_dir = out / algo / Path(tr).stem / f"seed-{seed}"

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


def _parse_seeds(text: str) -> list[int]:
    out: list[int] = []
    try:
        for part in text.split(","):
            a, sep, b = part.strip().partition("-")
            out.extend(range(int(a), int(b) + 1) if sep else [int(a)])
    except ValueError:
        raise SarlearnError(f"--seeds {text!r}: expected e.g. 0,1,2 or 0-4") from None
    if not out:
        raise SarlearnError("--seeds: no seeds given")
    return out


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
