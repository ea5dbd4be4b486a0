"""The tables of benchmarks/rl_fair.py and benchmarks/fashion_mnist.py from known runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench_scripts import load_benchmark


def test_fashion_mnist_table_is_mean_and_sd_per_rule_and_model() -> None:
    fm = load_benchmark("fashion_mnist")
    runs = [
        {"model": "mlp", "rule": "bp", "seed": s, "test_accuracy": a, "cpu_seconds": 60.0}
        for s, a in enumerate([0.80, 0.82, 0.84])
    ]
    text = fm.table({"runs": runs})
    assert "| bp | 82.00 ± 2.00 (n=3) | – |" in text
    assert "| sar | – | – |" in text
    assert "CPU time of the training runs: 3.0 min." in text


def test_rl_fair_table_counts_minutes_and_failures(tmp_path: Path) -> None:
    rl = load_benchmark("rl_fair")
    runs = tmp_path / "runs"
    (runs / "sar").mkdir(parents=True)
    (runs / "sar" / "oval.json").write_text(json.dumps({
        "track": "oval", "seeds": 2, "first_passage": [100, 200], "settled_step": [1200, None],
        "compute_seconds_per_run": 0.5,
    }))  # fmt: skip
    d = runs / "ppo" / "oval"
    d.mkdir(parents=True)
    for seed, steps in enumerate([2400, 3600, None]):
        (d / f"seed-{seed}.json").write_text(json.dumps({
            "config": {"budget": 40000}, "driving_steps": steps,
            "driving_steps_verified": None if steps is None else steps + 5200,
            "compute_seconds": 4.0, "resets": 10, "hyper_parameters": {},
        }))  # fmt: skip
    out = tmp_path / "table.json"
    argv = sys.argv
    sys.argv = ["rl_fair.py", "table", "--runs", str(runs), "--out", str(out)]
    try:
        rl.main()
    finally:
        sys.argv = argv
    rows = {r["learner"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["sar"]["clean_policy"]["reached"] == "1/2"
    assert rows["sar"]["clean_policy"]["median"] == 1200
    ppo = rows["ppo"]["clean_policy"]
    assert ppo["reached"] == "2/3" and ppo["median"] == 3000
    assert ppo["minutes_at_0.05s"] == 3000 * 0.05 / 60
    md = rl.markdown(list(rows.values()))
    assert "| oval | PPO + error input | 2/3 | 3,000 [2,700–3,300] | 2.5 | 10 | 4.0 |" in md
    assert rl.seeds_of("0-3") == [0, 1, 2, 3] and rl.seeds_of("2,5") == [2, 5]


def test_rl_fair_goal_takes_the_best_tuned_rl_per_track() -> None:
    rl = load_benchmark("rl_fair")

    def row(learner: str, track: str, reached: str, median: float | None) -> dict:
        c = {"reached": reached} if median is None else {"reached": reached, "median": median}
        return {"learner": learner, "track": track, "runs": int(reached.split("/")[1]),
                "clean_policy": c}  # fmt: skip

    rows = [
        row("sar", "oval", "10/10", 200),
        row("ppo", "oval", "10/10", 4000),
        row("sac", "oval", "10/10", 3000),
        row("ppo-eval256", "oval", "10/10", 1000),  # another protocol: not a candidate
        row("sac-noerror", "oval", "2/10", 500),  # clean in a minority of runs only
        row("sar", "fig", "0/10", None),
        row("ppo", "fig", "3/10", 9000),
        row("sac", "fig", "1/10", 4000),  # fewer clean runs: not the best despite its median
    ]
    goals = {g["track"]: g for g in rl.goal(rows)}
    assert goals["oval"]["best_rl"] == "sac" and goals["oval"]["ratio"] == 15
    assert goals["fig"]["best_rl"] == "ppo" and goals["fig"]["ratio"] is None
    md = rl.goal_markdown(rl.goal(rows))
    assert "| oval | 10/10, 200 | sac | 10/10, 3,000 | 15.0× |" in md
    assert "| fig | 0/10, – | ppo | 3/10, 9,000 | – |" in md


def test_ppo_time_split_amdahl_bound_from_the_parts() -> None:
    split = load_benchmark("ppo_time_split")
    clock = split.Clock()

    class Thing:
        def work(self, x: int) -> int:
            return 2 * x

    t = Thing()
    clock.wrap(t, "work", "env")
    assert t.work(3) == 6 and "env" not in clock.wall  # timers off: nothing counted
    clock.on = True
    assert t.work(4) == 8 and clock.wall["env"] > 0 and "env" in clock.cpu
    part = {"learn": 100.0, "rollout": 40.0, "env": 25.0, "monitor": 0.0, "vec env": 20.0,
            "engine": 15.0, "forward": 10.0, "train": 55.0}  # fmt: skip
    s = split.summary([{"wall": part, "cpu": part}])["cpu"]
    assert s["amdahl bound"] == pytest.approx(100 / 75)
    assert s["sb3 rollout work"] == 5 and s["other"] == 5 and s["wrappers"] == 5
    assert s["adapter"] == 5 and s["normalize"] == 5 and s["env share"] == 0.25
