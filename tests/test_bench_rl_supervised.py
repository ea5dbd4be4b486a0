"""The tables of benchmarks/rl_fair.py and benchmarks/fashion_mnist.py from known runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
