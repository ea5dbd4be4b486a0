"""Sweeps batched as engine populations give the numbers of runs made one by one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sarlearn.config import RunConfig
from sarlearn.store.store import ResultStore
from sarlearn.sweeps.population import population_key, run_population
from sarlearn.sweeps.spec import parse_spec
from sarlearn.sweeps.sweep import make_units, plan_tasks, run_sweep

#: Every column that is a number of the run (not a timing, pid or attempt id).
METRIC_COLUMNS = [
    "run_id", "status", "run_status", "run_message", "error_type", "rule", "lr", "seed",
    "track", "layers", "steps", "steps_run", "success", "steps_to_success",
    "mean_abs_error_first_1000", "mean_abs_error_last_1000", "off_track_steps", "config_json",
    "params_json",
]  # fmt: skip


def mixed_spec() -> object:
    """Runs that finish, runs whose robot leaves the line at different steps (net_gain < 0),
    and a population where one learning rate diverges (gdm, linear, lr 30)."""
    base = {"steps": 1500, "network.layers": [10, 2], "world.track": "curvy"}
    return parse_spec(
        {
            "base": base,
            "grid": {"seed": [0, 1]},
            "cases": [
                {"rule.name": ["sar", "gdm"], "rule.lr": [1e-3, 3e-3]},
                {"rule.name": "sar", "rule.lr": 1e-2, "world.net_gain": -20.0},
                {"rule.name": "gdm", "rule.lr": [1e-4, 30.0], "network.activation": "linear"},
            ],
        }
    )


def load_sorted(out: Path) -> pd.DataFrame:
    return ResultStore(out).load().sort_values("run_id", ignore_index=True)


def test_population_sweep_equals_runs_one_by_one(tmp_path: Path) -> None:
    """Bit-identical per run: the engine makes agent k of a population equal to the solo run
    of its config, and the population applies run_follow's stop rule agent by agent."""
    spec = mixed_spec()
    batched = run_sweep(spec, tmp_path / "pop", jobs=1, trace_every=25)
    solo = run_sweep(spec, tmp_path / "solo", jobs=1, trace_every=25, population=1)
    assert (batched.ok, batched.failed) == (solo.ok, solo.failed) == (14, 0)
    a, b = load_sorted(tmp_path / "pop"), load_sorted(tmp_path / "solo")
    assert set(a["run_status"]) == {"finished", "off_track", "diverged"}
    assert a.loc[a["run_status"] == "off_track", "steps_run"].nunique() == 2  # differ by seed
    pd.testing.assert_frame_equal(a[METRIC_COLUMNS], b[METRIC_COLUMNS])
    for x, y in zip(a["weight_change"], b["weight_change"], strict=True):
        assert (x is None and y is None) or np.array_equal(x, y)
    # the populations really ran as such (the diverging one split down to solo runs)
    sizes = [json.loads(s).get("population", 1) for s in a["summary_json"]]
    assert max(sizes) >= 4
    ta, tb = (
        ResultStore(tmp_path / d).load_traces().sort_values(["run_id", "step"], ignore_index=True)
        for d in ("pop", "solo")
    )
    assert len(ta) and list(ta.columns) == list(tb.columns)
    pd.testing.assert_frame_equal(ta, tb)


def test_population_keys_and_units(tmp_path: Path) -> None:
    cfg = RunConfig()
    same = [cfg.with_overrides({"seed": s, "rule.lr": lr}) for s in range(3) for lr in (1e-5, 1)]
    assert len({population_key(c) for c in same}) == 1
    assert population_key(cfg.with_overrides({"world.track": "oval"})) != population_key(cfg)
    for solo in ({"engine": "numpy"}, {"stop_at_success": True}, {"rule.name": "reflex"}):
        assert population_key(cfg.with_overrides(solo)) is None
    spec = parse_spec(
        {"grid": {"seed": {"range": [0, 10]}, "rule.name": ["sar", "gdm"]}, "base": {"steps": 9}}
    )
    tasks = plan_tasks(spec, ResultStore(tmp_path))
    units = make_units(tasks, None, slots=2)
    assert sorted(len(t) for t, pop in units if pop) == [10, 10]
    units = make_units(tasks, None, slots=8)  # enough units for 8 workers, equal shares
    assert sorted(len(t) for t, _ in units) == [2, 2, 2, 2, 3, 3, 3, 3] and all(p for _, p in units)
    assert all(not pop and len(t) == 1 for t, pop in make_units(tasks, None, 2, population=1))
    assert all(not pop for _, pop in make_units(tasks, "m:f", slots=2))
    ids = sorted(t.run_id for ts, _ in make_units(tasks, None, 3, population=7) for t in ts)
    assert ids == sorted(t.run_id for t in tasks)  # each run in exactly one unit


def test_run_population_refuses_mixed_configs() -> None:
    cfgs = [RunConfig(steps=10), RunConfig(steps=10).with_overrides({"world.track": "oval"})]
    with pytest.raises(ValueError, match="population key"):
        run_population(cfgs)


def test_population_in_this_process_makes_no_run_folders(tmp_path: Path) -> None:
    """The in-flight markers are for worker pools (a dead worker's runs); a population run in
    the sweep's own process writes none, so no run folder is made and removed for nothing."""
    spec = parse_spec({"base": {"steps": 200, "network.layers": [4, 2]}, "grid": {"seed": [0, 1]}})
    summary = run_sweep(spec, tmp_path / "sw", trace_every=10)  # small: in this process
    assert summary.ok == 2
    sizes = {json.loads(s)["population"] for s in load_sorted(tmp_path / "sw")["summary_json"]}
    assert sizes == {2}  # it did run as a population
    assert not (tmp_path / "sw" / "runs").exists()


def test_population_in_this_process_resumes_and_extends(tmp_path: Path) -> None:
    """A sweep of in-process populations stores each population as one part; running it again
    with more seeds runs only the new ones, and the folder then holds what one sweep of all
    the seeds would (records and traces)."""
    base = {"steps": 200, "network.layers": [4, 2]}
    two = parse_spec({"base": base, "grid": {"seed": [0, 1], "rule.name": ["sar", "gdm"]}})
    four = parse_spec({"base": base, "grid": {"seed": [0, 1, 2, 3], "rule.name": ["sar", "gdm"]}})
    first = run_sweep(two, tmp_path / "sw", trace_every=10)
    compacted = list((tmp_path / "sw" / "results" / "compacted").glob("part-*.parquet"))
    assert (first.ok, len(compacted)) == (4, 2)
    again = run_sweep(four, tmp_path / "sw", trace_every=10)
    assert (again.skipped, again.ok) == (4, 4)
    run_sweep(four, tmp_path / "all", trace_every=10)
    a, b = load_sorted(tmp_path / "sw"), load_sorted(tmp_path / "all")
    pd.testing.assert_frame_equal(a[METRIC_COLUMNS], b[METRIC_COLUMNS])
    ta, tb = (
        ResultStore(tmp_path / d).load_traces().sort_values(["run_id", "step"], ignore_index=True)
        for d in ("sw", "all")
    )
    assert len(ta) == 8 * 20
    pd.testing.assert_frame_equal(ta, tb)
