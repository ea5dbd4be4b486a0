"""Settling of online traces and frozen policies; the PPO/SAC baseline and its CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sarlearn.cli import app
from sarlearn.gym.settling import rollout_clean, settled_step, settles
from sarlearn.metrics import SuccessCriterion

CRIT = SuccessCriterion()  # warm-up 200, window 200, threshold 0.1


def test_settled_step_is_where_the_moving_sum_stays_below_to_the_end() -> None:
    e = np.zeros(3000)
    e[100] = 1.0  # inside the warm-up: the window is clean again from step 300
    e[1000] = 1.0  # a relapse: clean again from 1200
    assert settled_step(e, CRIT) == 1200
    assert settles(e, CRIT, tail=1800)
    assert not settles(e, CRIT, tail=1801)
    e[-1] = 1.0
    assert settled_step(e, CRIT) is None
    assert settled_step(np.zeros(500), CRIT) == CRIT.first_start
    assert settled_step(np.zeros(0), CRIT) is None


def test_rollout_clean_needs_every_step_after_the_warm_up() -> None:
    e = np.zeros(1000)
    assert rollout_clean(e, CRIT)
    e[150] = 0.2  # within the warm-up, but its window still covers step 199
    assert not rollout_clean(e, CRIT)
    # The first window judged (step 200) covers steps 1..200: step 0 may be off.
    assert rollout_clean(np.r_[0.5, np.zeros(999)], CRIT)
    assert not rollout_clean(np.r_[0.0, 0.5, np.zeros(998)], CRIT)
    assert not rollout_clean(np.zeros(150), CRIT)


def test_settling_of_history() -> None:
    from sarlearn.gym.baseline import settling_of

    h = [
        {"train_steps": s, "clean": c}
        for s, c in [(0, False), (5, True), (10, False), (15, True), (20, True)]
    ]
    assert settling_of(h) == (5, 15)
    h[-1]["clean"] = False
    assert settling_of(h) == (5, None)


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--algo", "dqn"], "algo"),
        (["--hp", "foo=1"], "foo"),
        (["--track", "nowhere"], "nowhere"),
        (["--seeds", "a-b"], "--seeds"),
        (["--steps", "100", "--eval-every", "500"], "eval_every"),
        (["--observation", "lidar"], "observation"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(args: list[str], word: str, tmp_path: Path) -> None:
    res = runner.invoke(app, ["rl-baseline", *args, "--out", str(tmp_path)])
    assert res.exit_code == 2, res.output
    assert word in res.output


@pytest.mark.slow
def test_ppo_smoke_run_trains_evaluates_and_writes_its_summary(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    res = runner.invoke(
        app,
        [
            "rl-baseline", "--algo", "ppo", "--steps", "2048", "--eval-every", "1024",
            "--hp", "n_envs=2", "--hp", "n_steps=256", "--hp", "n_epochs=2",
            "--out", str(tmp_path),
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    s = json.loads((tmp_path / "ppo" / "curvy" / "seed-0" / "summary.json").read_text())
    assert s["finished"] and s["config"]["total_steps"] == 2048
    assert [h["train_steps"] for h in s["history"]] == [0, 1024, 2048]
    for h in s["history"]:
        assert h["mean_abs_error"] >= 0 and isinstance(h["clean"], bool)
    assert (tmp_path / "ppo" / "curvy" / "seed-0" / "model.zip").is_file()
    # A finished run is not repeated.
    again = runner.invoke(app, ["rl-baseline", "--steps", "2048", "--eval-every", "1024",
                                "--hp", "n_envs=2", "--hp", "n_steps=256", "--hp", "n_epochs=2",
                                "--out", str(tmp_path)])  # fmt: skip
    assert again.exit_code == 0 and "1024 steps" not in again.output


def test_hyper_parameters_cover_sb3s_usual_settings() -> None:
    from sarlearn.gym.baseline import BaselineConfig

    BaselineConfig(algo="ppo", hyper={"vf_coef": 0.5, "target_kl": 0.02, "max_grad_norm": 1.0,
                                      "use_sde": True}).validate()  # fmt: skip
    BaselineConfig(algo="sac", hyper={"n_envs": 2, "target_entropy": -1.0,
                                      "log_std_init": -1.0}).validate()  # fmt: skip
