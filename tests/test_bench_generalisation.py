"""benchmarks/generalisation.py: the plan it builds, its measures, and a tiny end-to-end run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from bench_scripts import load_benchmark
from sarlearn.errors import ConfigError, SarlearnError

gen = load_benchmark("generalisation")


def test_track_names_come_from_the_chosen_seed_range() -> None:
    assert gen.track_names("tuning", 3) == ["random:0", "random:1", "random:2"]
    assert gen.track_names("evaluation", 2, first=5) == ["random:1000005", "random:1000006"]
    with pytest.raises(ConfigError, match="exceeds the 10000 tuning seeds"):
        gen.track_names("tuning", 2, first=9_999)


def test_tracks_can_be_drawn_with_generator_settings() -> None:
    assert gen.track_names("tuning", 2, first=20, overrides=["width=8.5", "frame=true"]) == [
        "random:20,width=8.5,frame=true",
        "random:21,width=8.5,frame=true",
    ]
    with pytest.raises(SarlearnError, match="wdith"):
        gen.track_names("tuning", 1, overrides=["wdith=8"])


def test_the_plan_crosses_tracks_seeds_inputs_and_learners() -> None:
    args = gen.parse_args(["--out", "x", "--n-tracks", "2", "--seeds", "3", "--steps", "500"])
    runs = gen.build_spec(args, ["random:0", "random:1"]).expand()
    labels = {}
    for run in runs:
        key = (gen.learner_label(run.params), run.config.world.inputs)
        labels[key] = labels.get(key, 0) + 1
        assert run.config.steps == 500
    # Three learners x two inputs, and the reflex alone once (it ignores the predictors).
    assert labels == {
        ("sar", "rows"): 6, ("sar", "camera"): 6,
        ("gdm η 0.3", "rows"): 6, ("gdm η 0.3", "camera"): 6,
        ("relevance-only shallow", "rows"): 6, ("relevance-only shallow", "camera"): 6,
        ("reflex", "rows"): 6,
    }  # fmt: skip
    reflex = next(r for r in runs if gen.learner_label(r.params) == "reflex").config
    assert reflex.world.net_gain == 0 and reflex.freeze
    shallow = next(r for r in runs if r.config.rule.name == "relevance-only").config
    assert shallow.network.layers == [2]


def test_rates_rules_and_sar_settings_are_options() -> None:
    args = gen.parse_args(
        ["--out", "x", "--rules", "sar", "--sar-lr", "0.3", "--sar-lr", "3", "--inputs", "rows",
         "--sar-set", "rule.weight_bound=2.5", "--seeds", "1", "--reflex-rule"]
    )  # fmt: skip
    runs = gen.build_spec(args, ["random:4"]).expand()
    sar = sorted(r.config.rule.lr for r in runs if r.config.rule.name == "sar")
    assert sar == [0.3, 3.0]
    assert all(r.config.rule.weight_bound == 2.5 for r in runs if r.config.rule.name == "sar")
    assert {r.config.rule.name for r in runs} == {"sar", "reflex"}
    assert gen.learner_label(runs[0].params).startswith("sar η")


def test_the_harm_ratio_divides_by_the_reflex_on_the_same_track_and_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [
        # learner, track, seed, last mean |e|, off track
        ("reflex", "a", 0, 2.0, False),
        ("sar", "a", 0, 1.0, False),
        ("sar", "a", 1, 1.0, False),  # no reflex run for seed 1: undefined
        ("reflex", "b", 0, 0.0, False),
        ("sar", "b", 0, 0.0, False),  # both exactly 0: no harm
        ("gdm η 0.3", "b", 0, 0.5, False),  # the reflex was perfect: infinite harm
        ("reflex", "c", 0, 1.0, False),
        ("sar", "c", 0, 0.2, True),  # left the line: infinite harm
    ]
    frame = pd.DataFrame(rows, columns=["learner", "track", "seed", "last", "off"])
    harm = gen.harm_ratios(frame["learner"], frame["track"], frame["seed"], frame["last"],
                           frame["off"])  # fmt: skip
    assert harm[0] == 1.0 and harm[1] == 0.5 and math.isnan(harm[2])
    assert harm[4] == 1.0 and math.isinf(harm[5]) and math.isinf(harm[7])


def test_a_tiny_benchmark_runs_reports_and_resumes(tmp_path: Path) -> None:
    argv = ["--out", str(tmp_path / "g"), "--tracks", "tuning", "--n-tracks", "1", "--seeds",
            "1", "--steps", "600", "--inputs", "rows", "--rules", "sar", "--jobs", "1"]  # fmt: skip
    assert gen.main(argv) == 0
    out = tmp_path / "g"
    text = (out / "generalisation.md").read_text()
    assert "| all tracks | 1 tracks | sar | rows | 1 |" in text
    assert "| all tracks | 1 tracks | reflex | rows | 1 |" in text
    for factor in ("width", "contrast", "texture", "min radius", "distractors"):
        assert f"| {factor} |" in text
    assert (out / "generalisation.png").stat().st_size > 1000
    assert set(json.loads((out / "tracks.json").read_text())) == {"random:0"}
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2
    sar = runs[runs["learner"] == "sar"].iloc[0]
    assert sar["harm_ratio"] >= 0 and 0 < sar["width"] < 10
    reflex = runs[runs["learner"] == "reflex"].iloc[0]
    assert reflex["harm_ratio"] == 1.0  # the reflex against itself
    # Resumes: a second call runs nothing and reports the same runs.
    assert gen.main([*argv, "--report-only"]) == 0
    assert (out / "generalisation.md").read_text().split("\n", 3)[3] == text.split("\n", 3)[3]


def test_the_benchmarks_reflex_run_is_the_reflex_alone(tmp_path: Path) -> None:
    # A learner whose steering gain is 0 drives exactly as the reflex alone: the same error
    # trace, step for step, as rule "reflex" on the same (numpy) loop.
    from sarlearn.config import RunConfig
    from sarlearn.runs.run import run_follow

    base = {"world.track": "random:3", "world.resolution": 2.0, "steps": 400, "engine": "numpy"}
    run_follow(
        RunConfig().with_overrides({**base, "rule.name": "reflex"}), tmp_path / "r", figures=False
    )
    frozen = {**base, "world.net_gain": 0.0, "freeze": True}
    run_follow(RunConfig().with_overrides(frozen), tmp_path / "f", figures=False)
    a = pd.read_parquet(tmp_path / "r" / "trace.parquet")["error"].to_numpy()
    b = pd.read_parquet(tmp_path / "f" / "trace.parquet")["error"].to_numpy()
    assert len(a) == 400 and (a != 0).any()
    assert (a == b).all()


def test_the_spec_alone_is_a_sweep_on_three_tuning_tracks() -> None:
    from sarlearn.sweeps.spec import load_spec

    runs = load_spec(gen.SPEC).expand()
    assert len(runs) == 3 * 3 * (3 * 2 + 1)  # tracks x seeds x (learners x inputs + reflex)
    assert {r.config.world.track for r in runs} == {"random:0", "random:1", "random:2"}
    assert {r.config.steps for r in runs} == {20_000}
