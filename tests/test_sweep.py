"""Sweep specs, grid expansion, the results store and sweep execution (with a fake run)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from sarlearn.config import ConfigError, RunConfig
from sarlearn.store.store import LOCK, MergedStore, ResultStore, StoreLockedError
from sarlearn.sweeps.spec import (
    expand_values,
    parse_assignment,
    parse_lr_range,
    parse_spec,
    run_id,
)
from sarlearn.sweeps.sweep import (
    SweepError,
    SweepInterrupted,
    execute_runs,
    parse_shard,
    plan_tasks,
    run_sweep,
    select_shard,
)
from sweep_fakes import CALLS_ENV, bad_summary_run, expected_steps, fake_run, no_trace_run

BASE = {"steps": 1500, "network.layers": [2]}


def small_spec(**grid: object) -> object:
    """sar at three lrs, gdm at one, and a failing rule, over two seeds."""
    return parse_spec(
        {
            "base": BASE,
            "grid": {"seed": {"range": [0, 2]}, **grid},
            "cases": [
                {"rule.name": "sar", "rule.lr": {"logspace": [-6, -4, 3]}},
                {"rule.name": ["gdm", "boom"], "rule.lr": [1e-4]},
            ],
        }
    )


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder where the fake run drops one file per call (also from worker processes)."""
    folder = tmp_path / "calls"
    folder.mkdir()
    monkeypatch.setenv(CALLS_ENV, str(folder))
    return folder


def n_calls(folder: Path) -> int:
    return len(list(folder.iterdir()))


# -- spec parsing and grid expansion ---------------------------------------------------------


def test_ranges_expand_to_tidy_values() -> None:
    assert expand_values({"logspace": [-6, -3, 4]}) == [1e-6, 1e-5, 1e-4, 1e-3]
    assert parse_lr_range("1e-6:1e-3:4") == [1e-6, 1e-5, 1e-4, 1e-3]
    assert expand_values({"geomspace": [1e-6, 1e-3, 7]}) == expand_values({"logspace": [-6, -3, 7]})
    assert expand_values({"range": [0, 20]}) == list(range(20))
    assert expand_values({"range": [1, 10, 4]}) == [1, 5, 9]
    assert expand_values({"linspace": [0, 1, 5]}) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert expand_values("curvy") == ["curvy"]
    assert expand_values([[10, 2], [2]]) == [[10, 2], [2]]


def test_cases_are_crossed_with_the_grid_and_unioned() -> None:
    runs = small_spec().expand()
    by_rule: dict[str, set[float]] = {}
    for r in runs:
        by_rule.setdefault(r.config.rule.name, set()).add(r.config.rule.lr)
    assert by_rule == {"sar": {1e-6, 1e-5, 1e-4}, "gdm": {1e-4}, "boom": {1e-4}}
    assert len(runs) == (3 + 2) * 2
    assert all(r.config.steps == 1500 and r.config.network.layers == [2] for r in runs)
    assert runs[0].params == {"seed": 0, "rule.name": "sar", "rule.lr": 1e-6}


def test_case_key_replaces_grid_key() -> None:
    spec = parse_spec(
        {
            "grid": {"rule.lr": [1e-4, 1e-3], "rule.name": ["gdm"]},
            "cases": [{}, {"rule.name": "sar", "rule.lr": [1e-5]}],
        }
    )
    got = sorted((r.config.rule.name, r.config.rule.lr) for r in spec.expand())
    assert got == [("gdm", 1e-4), ("gdm", 1e-3), ("sar", 1e-5)]


def test_nested_tables_dotted_keys_and_section_values_agree() -> None:
    dotted = parse_spec({"base": {"world.track": "oval"}, "grid": {"rule.lr": [1e-5, 1e-4]}})
    nested = parse_spec(
        {"base": {"world": {"track": "oval"}}, "grid": {"rule": {"lr": [1e-5, 1e-4]}}}
    )
    assert [r.run_id for r in dotted.expand()] == [r.run_id for r in nested.expand()]
    # a whole section as a value pairs fields (here: each rule with its own lr)
    paired = parse_spec(
        {"grid": {"rule": [{"name": "sar", "lr": 1e-5}, {"name": "gdm", "lr": 1e-4}]}}
    )
    got = [(r.config.rule.name, r.config.rule.lr) for r in paired.expand()]
    assert got == [("sar", 1e-5), ("gdm", 1e-4)]


def test_run_id_is_a_stable_hash_of_the_full_config() -> None:
    a = RunConfig().with_overrides({"rule.lr": 1e-4, "seed": 3})
    b = RunConfig().with_overrides({"seed": 3}).with_overrides({"rule.lr": 1e-4})
    assert run_id(a) == run_id(b)
    assert len(run_id(a)) == 16 and int(run_id(a), 16) >= 0
    assert run_id(a) != run_id(a.with_overrides({"rule.lr": 1e-5}))
    assert run_id(a) != run_id(a.with_overrides({"world.speed": 60.0}))
    # the same run from a range and from a literal is the same run
    spec = parse_spec({"grid": {"rule.lr": {"logspace": [-5, -4, 2]}}})
    assert spec.expand()[0].run_id == run_id(RunConfig().with_overrides({"rule.lr": 1e-5}))


def test_duplicate_runs_are_planned_once() -> None:
    spec = parse_spec({"grid": {"rule.lr": [1e-5, 1e-5]}, "cases": [{}, {"seed": 0}]})
    assert len(spec.expand()) == 1


def test_override_replaces_axes_in_grid_and_cases() -> None:
    spec = small_spec().override(base={"steps": 99}, grid={"rule.lr": [3e-5]})
    runs = spec.expand()
    assert {r.config.rule.lr for r in runs} == {3e-5}
    assert {r.config.steps for r in runs} == {99}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"grid": {"rule.lrr": [1e-5]}}, "unknown config field 'rule.lrr'"),
        ({"grid": {"rule.lrr": [1e-5]}}, "known fields of rule: "),
        ({"base": {"world": {"trak": "oval"}}}, "unknown config field 'world.trak'"),
        ({"cases": [{"nope": [1]}]}, "[[cases]] #1: unknown config field 'nope'"),
        ({"grd": {}}, "unknown table(s) ['grd']"),
        ({"sweep": {"jobs": 0}}, "jobs must be an integer >= 1"),
        ({"sweep": {"workers": 2}}, "unknown [sweep] key(s) ['workers']"),
        ({"grid": {"seed": {"range": [5, 5]}}}, "range [5, 5] is empty"),
        ({"grid": {"seed": {"range": [0, 1.5]}}}, "range needs 1 to 3 integers"),
        ({"grid": {"rule.lr": {"logspace": [-6, -3]}}}, "logspace needs [start, stop, n]"),
        ({"grid": {"rule.lr": {"logspace": [-6, -3, 0]}}}, "n an integer >= 1"),
        ({"grid": {"rule.lr": {"geomspace": [0, 1, 3]}}}, "geomspace needs positive ends"),
        ({"grid": {"rule.lr": {"logspac": [-6, -3, 4]}}}, "is not a range; use one of"),
        ({"grid": {"rule.lr": []}}, "the list of values is empty"),
    ],
)
def test_bad_specs_are_clear_config_errors(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(data, source="spec.toml").expand()
    assert message in str(info.value)


def test_invalid_values_name_the_run_and_field() -> None:
    with pytest.raises(ConfigError, match=r"rule\.lr=-1\.0.*rule\.lr"):
        parse_spec({"grid": {"rule.lr": [1e-5, -1.0]}}).expand()
    # a list-valued field written as a plain list gets a hint about [[...]]
    with pytest.raises(ConfigError, match=r"written \[\[\.\.\.\]\]"):
        parse_spec({"grid": {"network.layers": [10, 2]}}).expand()


def test_assignments_and_lr_ranges_parse_or_fail_clearly() -> None:
    assert parse_assignment("rule.relevance.gain=2") == ("rule.relevance.gain", 2)
    assert parse_assignment("world.track=curvy") == ("world.track", "curvy")
    assert parse_assignment("network.layers=[10, 2]") == ("network.layers", [10, 2])
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_assignment("rule.lr")
    with pytest.raises(ConfigError, match="expected LO:HI:N"):
        parse_lr_range("1e-6:1e-3")


def test_spec_file_with_base_config(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text('[world]\ntrack = "oval"\n')
    (tmp_path / "spec.toml").write_text(
        '[sweep]\nconfig = "base.toml"\nname = "t"\n[base]\nsteps = 10\n'
        '[grid]\nseed = {range = [0, 2]}\n"network.layers" = [[2], [10, 2]]\n'
    )
    from sarlearn.sweeps.spec import load_spec

    spec = load_spec(tmp_path / "spec.toml")
    runs = spec.expand()
    assert spec.options.name == "t"
    assert len(runs) == 4
    assert {r.config.world.track for r in runs} == {"oval"}
    assert {tuple(r.config.network.layers) for r in runs} == {(2,), (10, 2)}


# -- execution and the store -----------------------------------------------------------------


def test_tiny_sweep_records_every_run(tmp_path: Path, calls: Path) -> None:
    spec = small_spec()
    summary = run_sweep(spec, tmp_path / "sw", run_fn=fake_run, jobs=1)
    planned = spec.expand()
    assert (summary.planned, summary.ok, summary.failed) == (10, 8, 2)
    assert n_calls(calls) == 10

    df = pd.read_parquet(tmp_path / "sw" / "results.parquet")
    assert sorted(df["run_id"]) == sorted(r.run_id for r in planned)
    assert not list((tmp_path / "sw" / "results").glob("*.parquet"))  # compacted
    by_id = {r.run_id: r for r in planned}
    for row in df.itertuples():
        cfg = by_id[row.run_id].config
        assert RunConfig.model_validate(json.loads(row.config_json)) == cfg
        assert (row.rule, row.lr, row.seed, row.layers) == (
            cfg.rule.name,
            cfg.rule.lr,
            cfg.seed,
            "2",
        )
        if row.rule == "boom":
            assert row.status == "error" and not row.success
            assert row.error_type == "ValueError"
            assert row.error_message == f"fake failure at lr={cfg.rule.lr}"
            assert "fake_run" in row.error_traceback
            assert pd.isna(row.steps_to_success)
        else:
            assert row.status == "ok" and pd.isna(row.error_type)
            want = expected_steps(cfg)
            assert (pd.isna(row.steps_to_success) and want is None) or row.steps_to_success == want
            assert row.success == (want is not None)
            assert list(row.weight_change) == [cfg.rule.lr * 1e3]
            assert json.loads(row.params_json) == by_id[row.run_id].params
            assert json.loads(row.summary_json)["steps_to_success"] == want
    # runs' own folders are removed unless asked to keep them
    assert not any((tmp_path / "sw" / "runs").iterdir())


def test_traces_are_downsampled_and_kept_per_run(tmp_path: Path) -> None:
    spec = small_spec()
    run_sweep(spec, tmp_path / "sw", run_fn=fake_run, jobs=1, trace_every=10)
    traces = pd.read_parquet(tmp_path / "sw" / "traces.parquet")
    ok_ids = {r.run_id for r in spec.expand() if r.config.rule.name != "boom"}
    assert set(traces["run_id"]) == ok_ids
    one = traces[traces["run_id"] == sorted(ok_ids)[0]]
    assert list(one["step"]) == list(range(0, 1500, 10))
    assert "label" not in traces  # non-numeric columns are dropped
    assert {"error", "output", "abs_error", "weight_change_l0"} <= set(traces.columns)

    # abs_error is the mean |error| of each block of 10 steps
    cfg = next(r.config for r in spec.expand() if r.run_id == sorted(ok_ids)[0])
    full = pd.read_parquet(_trace_of(cfg, tmp_path / "one"))
    want = full["error"].abs().to_numpy().reshape(-1, 10).mean(axis=1)
    assert one["abs_error"].to_numpy() == pytest.approx(want)


def _trace_of(cfg: RunConfig, out: Path) -> Path:
    fake_run(cfg, out)
    return out / "trace.parquet"


def test_resume_skips_what_is_done(tmp_path: Path, calls: Path) -> None:
    out = tmp_path / "sw"
    run_sweep(small_spec(), out, run_fn=fake_run, jobs=1)
    assert n_calls(calls) == 10
    again = run_sweep(small_spec(), out, run_fn=fake_run, jobs=1)
    assert n_calls(calls) == 10  # nothing redone, not even the failed runs
    assert (again.skipped, again.ran) == (10, 0)
    # a grown sweep runs only the new runs
    bigger = run_sweep(small_spec(seed={"range": [0, 3]}), out, run_fn=fake_run, jobs=1)
    assert (bigger.skipped, bigger.ran) == (10, 5)
    assert n_calls(calls) == 15
    assert len(ResultStore(out).load()) == 15


def test_shards_partition_the_plan_and_resume_each(tmp_path: Path, calls: Path) -> None:
    spec = small_spec()
    planned = [r.run_id for r in spec.expand()]
    folders = [tmp_path / f"shard-{i}" for i in range(3)]
    summaries = [
        run_sweep(spec, folder, run_fn=fake_run, jobs=1, shard=(i, 3))
        for i, folder in enumerate(folders)
    ]
    assert [s.planned for s in summaries] == [4, 3, 3]
    assert n_calls(calls) == 10  # every run exactly once over all shards
    ids = [rid for folder in folders for rid in ResultStore(folder).load()["run_id"]]
    assert sorted(ids) == sorted(planned) and len(set(ids)) == len(ids)
    for i, folder in enumerate(folders):
        assert set(ResultStore(folder).load()["run_id"]) == set(planned[i::3])  # by position
        assert ResultStore(folder).read_manifest()["shard"] == [i, 3]
    merged = MergedStore(folders)
    assert sorted(merged.load()["run_id"]) == sorted(planned)
    ok_ids = {r.run_id for r in spec.expand() if r.config.rule.name != "boom"}
    assert merged.finished_ids(include_failed=False) == ok_ids
    assert set(merged.load_traces()["run_id"]) == ok_ids
    assert sorted(merged.read_manifest()["shards"]) == [[0, 3], [1, 3], [2, 3]]

    again = run_sweep(spec, folders[1], run_fn=fake_run, jobs=1, shard=(1, 3))
    assert (again.planned, again.skipped, again.ran) == (3, 3, 0)
    assert n_calls(calls) == 10


def test_merged_store_keeps_the_latest_attempt_of_a_run(tmp_path: Path) -> None:
    spec = small_spec()
    run_sweep(spec, tmp_path / "all", run_fn=fake_run, jobs=1, trace_every=100)
    run_sweep(spec, tmp_path / "again", run_fn=fake_run, jobs=1, trace_every=100, shard=(0, 2))
    old, new = ResultStore(tmp_path / "all").load(), ResultStore(tmp_path / "again").load()
    for roots in ([tmp_path / "all", tmp_path / "again"], [tmp_path / "again", tmp_path / "all"]):
        merged = MergedStore(roots)
        df = merged.load()
        assert sorted(df["run_id"]) == sorted(old["run_id"])  # no duplicates
        newer = set(new["attempt_id"])
        assert set(df["attempt_id"]) == newer | set(
            old.loc[~old["run_id"].isin(new["run_id"]), "attempt_id"]
        )
        assert len(merged.load(latest=False)) == len(old) + len(new)
        traces = merged.load_traces()
        assert not traces.duplicated(["run_id", "step"]).any()
        assert set(traces["run_id"]) == set(old.loc[old["status"] == "ok", "run_id"])


@pytest.mark.parametrize("shard", [(2, 2), (-1, 2), (0, 0), (3, -4), (1.5, 2), (1,), "0/2"])
def test_bad_shards_are_config_errors(tmp_path: Path, shard: object) -> None:
    with pytest.raises(ConfigError, match="shard"):
        run_sweep(small_spec(), tmp_path / "sw", run_fn=fake_run, jobs=1, shard=shard)
    assert not (tmp_path / "sw").exists()


def test_parse_and_select_shard() -> None:
    assert parse_shard("3/16") == (3, 16) and parse_shard("0/1") == (0, 1)
    for bad in ("16/16", "-1/4", "1", "a/b", "0/0", "1/2/3", "1.0/2", ""):
        with pytest.raises(ConfigError, match=r"--shard .*0 <= I < N"):
            parse_shard(bad)
    items = list(range(10))
    assert select_shard(items, None) == items
    assert [select_shard(items, (i, 4)) for i in range(4)] == [
        [0, 4, 8], [1, 5, 9], [2, 6], [3, 7],
    ]  # fmt: skip
    assert select_shard(items[:2], (3, 4)) == []  # more shards than runs: some are empty


def test_retry_failed_reruns_only_failures(tmp_path: Path, calls: Path) -> None:
    out = tmp_path / "sw"
    run_sweep(small_spec(), out, run_fn=fake_run, jobs=1)
    summary = run_sweep(small_spec(), out, run_fn=fake_run, jobs=1, retry_failed=True)
    assert (summary.skipped, summary.failed) == (8, 2)
    assert n_calls(calls) == 12
    store = ResultStore(out)
    assert len(store.load()) == 10  # one row per run: its latest attempt
    assert len(store.load(latest=False)) == 12


def test_parallel_results_equal_serial(tmp_path: Path, calls: Path) -> None:
    spec = small_spec()
    run_sweep(spec, tmp_path / "serial", run_fn=fake_run, jobs=1)
    summary = run_sweep(spec, tmp_path / "par", run_fn=fake_run, jobs=2)
    assert (summary.ok, summary.failed) == (8, 2)
    assert n_calls(calls) == 20  # calls from the worker processes are counted too

    cols = [
        "run_id", "status", "error_type", "error_message", "rule", "lr", "seed",
        "steps_to_success", "success", "mean_abs_error_last_1000", "config_json", "summary_json",
    ]  # fmt: skip
    serial, par = (
        ResultStore(tmp_path / d).load().sort_values("run_id").reset_index(drop=True)
        for d in ("serial", "par")
    )
    pd.testing.assert_frame_equal(serial[cols], par[cols])
    as_lists = [df["weight_change"].map(list, na_action="ignore").tolist() for df in (serial, par)]
    assert as_lists[0] == as_lists[1]
    assert len({*par["worker_pid"]} - {os.getpid()}) >= 1  # really ran elsewhere
    t_serial, t_par = (
        ResultStore(tmp_path / d).load_traces().sort_values(["run_id", "step"], ignore_index=True)
        for d in ("serial", "par")
    )
    pd.testing.assert_frame_equal(t_serial, t_par)


def test_a_crashing_worker_is_recorded_not_fatal(tmp_path: Path) -> None:
    spec = parse_spec(
        {"base": BASE, "grid": {"rule.name": ["crash", "gdm"], "rule.lr": [1e-4], "seed": [0]}}
    )
    summary = run_sweep(spec, tmp_path / "sw", run_fn=fake_run, jobs=2)
    df = ResultStore(tmp_path / "sw").load().set_index("rule")
    assert (summary.ok, summary.failed) == (1, 1)
    assert df.loc["crash", "error_type"] == "WorkerCrashed"
    assert df.loc["gdm", "status"] == "ok"


def test_ctrl_c_keeps_what_finished(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    done: list[int] = []

    def interrupted_run(cfg: RunConfig, out_dir: Path | None) -> dict:
        if len(done) == 3:
            raise KeyboardInterrupt
        done.append(1)
        return fake_run(cfg, out_dir)

    with pytest.raises(SweepInterrupted) as info:
        run_sweep(small_spec(), out, run_fn=interrupted_run, jobs=1)
    assert info.value.summary.ran == 3
    assert not (out / LOCK).exists()
    assert len(pd.read_parquet(out / "results.parquet")) == 3
    assert pd.read_parquet(out / "traces.parquet")["run_id"].nunique() == 3
    rest = run_sweep(small_spec(), out, run_fn=fake_run, jobs=1)
    assert (rest.skipped, rest.ran) == (3, 7)


def test_torn_and_duplicated_files_are_harmless(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    run_sweep(small_spec(), out, run_fn=fake_run, jobs=1)
    store = ResultStore(out)
    # a write killed half-way leaves a hidden temporary file
    (out / "results" / ".part-x.parquet.123.tmp").write_bytes(b"PAR1 half a file")
    # a crash after compaction, before deleting its parts, leaves a record twice
    shutil.copy(out / "results.parquet", out / "results" / "part-00000000000000000000-x.parquet")
    assert len(store.load(latest=False)) == 10
    store.compact()
    assert len(pd.read_parquet(out / "results.parquet")) == 10


def test_summary_without_steps_to_success_is_a_recorded_error(tmp_path: Path) -> None:
    spec = parse_spec({"base": BASE, "grid": {"seed": [0]}})
    run_sweep(spec, tmp_path / "sw", run_fn=bad_summary_run, jobs=1)
    row = ResultStore(tmp_path / "sw").load().iloc[0]
    assert row["error_type"] == "SummaryError"
    assert "steps_to_success" in row["error_message"]


def test_runs_without_trace_or_weight_change(tmp_path: Path) -> None:
    spec = parse_spec({"base": BASE, "grid": {"seed": [0, 1]}})
    run_sweep(spec, tmp_path / "sw", run_fn=no_trace_run, jobs=1)
    store = ResultStore(tmp_path / "sw")
    assert store.load()["weight_change"].isna().all()
    assert store.load_traces().empty
    assert not (tmp_path / "sw" / "traces.parquet").exists()


def test_kept_run_dirs(tmp_path: Path) -> None:
    spec = parse_spec({"base": BASE, "grid": {"seed": [0]}})
    run_sweep(spec, tmp_path / "sw", run_fn=fake_run, jobs=1, keep_run_dirs=True)
    rid = spec.expand()[0].run_id
    assert (tmp_path / "sw" / "runs" / rid / "trace.parquet").exists()


def test_lock_refuses_a_second_writer_and_takes_over_a_stale_one(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    spec = parse_spec({"base": BASE, "grid": {"seed": [0]}})
    with ResultStore(out).lock(), pytest.raises(StoreLockedError, match="another sweep"):
        run_sweep(spec, out, run_fn=fake_run, jobs=1)
    import socket

    (out / LOCK).write_text(f"{socket.gethostname()} 999999999")  # no such process
    assert run_sweep(spec, out, run_fn=fake_run, jobs=1).ok == 1


def test_unloadable_run_function_fails_before_anything_is_recorded(tmp_path: Path) -> None:
    spec = parse_spec({"base": BASE, "grid": {"seed": [0]}})
    with pytest.raises(SweepError, match="cannot load the run function 'no_such_module:run'"):
        run_sweep(spec, tmp_path / "sw", run_fn="no_such_module:run", jobs=2)
    assert ResultStore(tmp_path / "sw").load().empty


def test_plain_configs_can_be_swept(tmp_path: Path) -> None:
    cfgs = [RunConfig().with_overrides({**BASE, "seed": s}) for s in range(3)]
    summary = run_sweep(cfgs, tmp_path / "sw", run_fn=fake_run, jobs=1, batch_size=2)
    assert summary.ok == 3
    assert set(ResultStore(tmp_path / "sw").load()["run_id"]) == {run_id(c) for c in cfgs}


# -- the real run function -------------------------------------------------------------------

_HAS_RUN = importlib.util.find_spec("sarlearn.runs.run") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _HAS_RUN, reason="sarlearn.runs.run is not written yet")
def test_tiny_sweep_with_the_real_run_function(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "base": {"steps": 300, "network.layers": [2], "checkpoint_every": 1000},
            "grid": {"rule.name": ["sar", "gdm"], "seed": [0]},
        }
    )
    summary = run_sweep(spec, tmp_path / "sw", jobs=1, trace_every=10)
    df = ResultStore(tmp_path / "sw").load()
    errors = df.loc[df["status"] == "error", ["error_type", "error_message"]]
    assert summary.ok == 2, errors.to_string()
    assert df["steps_run"].notna().all()
    assert df["mean_abs_error_first_1000"].notna().all()
    again = run_sweep(spec, tmp_path / "sw", jobs=1)
    assert again.skipped == 2


@pytest.mark.slow
@pytest.mark.skipif(not _HAS_RUN, reason="sarlearn.runs.run is not written yet")
def test_a_run_interrupted_mid_sweep_is_resumed_from_its_checkpoint(tmp_path: Path) -> None:
    from sarlearn.runs.run import RunInterrupted, run_follow

    base = {"steps": 300, "network.layers": [2], "checkpoint_every": 100}
    spec = parse_spec({"base": base, "grid": {"seed": [0]}})
    planned = spec.expand()[0]
    store = ResultStore(tmp_path / "sw")

    def stop(loop: object, done: int) -> None:
        if done >= 200:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):  # as a sweep worker killed by Ctrl-C leaves it
        run_follow(planned.config, store.run_dir(planned.run_id), on_chunk=stop)
    run_sweep(spec, tmp_path / "sw", jobs=1)
    row = store.load().iloc[0]
    assert row["status"] == "ok", row["error_message"]
    assert json.loads(row["summary_json"])["resumed_from"] == 200
    assert row["steps_run"] == 300


def test_a_worker_failing_outside_any_run_is_a_sweep_error(tmp_path: Path) -> None:
    spec = parse_spec({"base": BASE, "grid": {"seed": [0, 1]}})
    with pytest.raises(SweepError, match="a worker failed outside any run"):
        # a lambda cannot be sent to a spawned worker
        run_sweep(spec, tmp_path / "sw", run_fn=lambda cfg, out: fake_run(cfg, out), jobs=2)
    with pytest.raises(SweepError, match="'sweep_fakes:CALLS_ENV' is not a function"):
        run_sweep(spec, tmp_path / "sw", run_fn="sweep_fakes:CALLS_ENV", jobs=2)


def test_conform_orders_casts_fills_and_keeps_extra_columns() -> None:
    """A part read back is conformed to the schema: columns in its order, a column of another
    type cast, a missing one null, an extra one kept at the end; matching columns as they are."""
    import pyarrow as pa

    from sarlearn.store import store

    schema = pa.schema([("run_id", pa.string()), ("seed", pa.int64()), ("lr", pa.float64())])
    part = pa.table(
        {
            "extra": pa.array([1.5, 2.5]),
            "seed": pa.array([3, 4], pa.int32()),
            "run_id": pa.array(["a", "b"]),
        }
    )
    out = store.conform(part, schema)
    assert out.schema.names == ["run_id", "seed", "lr", "extra"]
    assert out.schema.field("seed").type == pa.int64() and out["seed"].to_pylist() == [3, 4]
    assert out["lr"].null_count == 2 and out["run_id"].equals(part["run_id"])
    assert out["extra"].to_pylist() == [1.5, 2.5]


def _outcomes(tmp_path: Path, rules: tuple[str, ...] = ("sar", "gdm")) -> list:
    spec = parse_spec({"base": BASE, "grid": {"seed": [0, 1, 2], "rule.name": list(rules)}})
    tasks = plan_tasks(spec, ResultStore(tmp_path / "plan"))
    return execute_runs(tasks, fake_run)


def _files(out: Path) -> tuple[object, object]:
    import pyarrow.parquet as pq

    return pq.read_table(out / "results.parquet"), pq.read_table(out / "traces.parquet")


@pytest.mark.parametrize("trace_memory", [64 * 2**20, 40_000, 0])
def test_a_unit_is_stored_as_one_part_and_compacted_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trace_memory: int
) -> None:
    """add_many writes one record part and one trace part for all its runs; the compaction
    of a store that wrote them (from memory, as far as TRACE_MEMORY allows) makes the same
    files as one that reads them."""
    from sarlearn.store import store as store_module

    monkeypatch.setattr(store_module, "TRACE_MEMORY", trace_memory)
    outcomes = _outcomes(tmp_path)
    items = [(o.record, o.trace) for o in outcomes]
    mem, disk = ResultStore(tmp_path / "mem"), ResultStore(tmp_path / "disk")
    mem.add_many(items)
    disk.add_many(items)
    assert len(list((tmp_path / "mem" / "results").glob("part-*.parquet"))) == 1
    assert len(list((tmp_path / "mem" / "traces").glob("part-*.parquet"))) == 1
    mem.compact()
    ResultStore(tmp_path / "disk").compact()  # another store object: reads the parts back
    (res_m, tr_m), (res_d, tr_d) = _files(tmp_path / "mem"), _files(tmp_path / "disk")
    assert res_m.equals(res_d) and tr_m.equals(tr_d)
    assert res_m.num_rows == 6 and set(tr_m["run_id"].to_pylist()) == set(
        res_m["run_id"].to_pylist()
    )
    assert not list((tmp_path / "mem" / "results").glob("part-*.parquet"))
    assert len(list((tmp_path / "mem" / "results" / "compacted").glob("part-*.parquet"))) == 1
    assert not list((tmp_path / "mem" / "traces").glob("part-*"))
    # several parts (and an existing compacted file) merge the same way too
    more = [(o.record, o.trace) for o in _outcomes(tmp_path / "more", ("sar",))]
    for store in (mem, disk):
        store.add_many(more[:2])
        store.add(*more[2])
    mem.compact()
    ResultStore(tmp_path / "disk").compact()
    (res_m, tr_m), (res_d, tr_d) = _files(tmp_path / "mem"), _files(tmp_path / "disk")
    assert res_m.equals(res_d) and tr_m.equals(tr_d) and res_m.num_rows == 9
    latest = set(mem.load()["attempt_id"])  # the newer sar attempts replaced the older ones
    assert len(latest) == 6 and set(tr_m["attempt_id"].to_pylist()) == latest
    pd.testing.assert_frame_equal(mem.load(), ResultStore(tmp_path / "disk").load())


def test_finished_ids_pick_the_latest_attempt(tmp_path: Path) -> None:
    """finished_ids (Arrow) agrees with the latest attempts that load() keeps, with retried
    and failed runs, records in parts and in the compacted file."""
    from sarlearn.store.store import _Finished

    out = tmp_path / "sw"
    spec = parse_spec({"base": BASE, "grid": {"seed": [0, 1, 2], "rule.name": ["sar", "boom"]}})
    run_sweep(spec, out, run_fn=fake_run, jobs=1)
    run_sweep(spec, out, run_fn=fake_run, jobs=1, retry_failed=True)  # boom fails again
    store = ResultStore(out)
    for o in _outcomes(tmp_path, ("sar",))[:2]:  # a newer attempt, left as a part
        store.add(o.record, o.trace)
    assert len(store.load(latest=False)) == 11
    for include_failed in (True, False):
        expected = _Finished.finished_ids(store, include_failed=include_failed)  # pandas
        assert store.finished_ids(include_failed=include_failed) == expected
    assert len(store.finished_ids()) == 6 and len(store.finished_ids(False)) == 3


def test_a_trace_given_as_columns_is_stored_as_its_dataframe_would_be() -> None:
    """Engine populations hand their traces over as columns: stored as the same table as
    the DataFrame of those columns (NaN as null); records keep RESULT_SCHEMA."""
    import numpy as np

    from sarlearn.store import records as store

    outcomes = _outcomes(Path("/nonexistent"), ("sar", "boom"))
    records = [o.record for o in outcomes]
    built = store.records_table(records)
    assert built.schema == store.RESULT_SCHEMA and built.num_rows == len(records)
    assert store.records_table([]).num_rows == 0
    rng = np.random.default_rng(0)
    n = 50
    cols = {
        "step": np.arange(0, 10 * n, 10, dtype=np.int64),
        "error": np.where(rng.random(n) < 0.2, np.nan, rng.standard_normal(n)),
        "off_track": rng.random(n) < 0.5,
        "speed": rng.standard_normal(n).astype(np.float32),
        "count": rng.integers(0, 9, n).astype(np.int32),
        "abs_error": np.abs(rng.standard_normal(n)),
    }
    rec = records[0]
    from_columns = store.trace_table(rec, cols)
    from_frame = store.trace_table(rec, pd.DataFrame(cols))
    assert from_columns.equals(from_frame.replace_schema_metadata(None))
    assert from_columns["error"].null_count == int(np.isnan(cols["error"]).sum()) > 0
    assert store.trace_rows(cols) == store.trace_rows(pd.DataFrame(cols)) == n


def test_block_means_equal_pandas_groupby_means() -> None:
    """The trace's abs_error without pandas: bit for bit pandas' groupby mean, NaN, inf and
    huge values included."""
    import numpy as np

    from sarlearn.store.records import block_means

    rng = np.random.default_rng(1)
    for trial in range(400):
        n, every = int(rng.integers(0, 120)), int(rng.integers(1, 25))
        x = rng.standard_normal(n) * 10.0 ** rng.integers(-200, 200, n)
        if trial % 3 == 1:
            x[rng.random(n) < 0.2] = np.nan
        if trial % 4 == 2:
            x[rng.random(n) < 0.1] = np.inf
        with np.errstate(invalid="ignore"):
            want = pd.Series(x).groupby(np.arange(n) // every).mean().to_numpy()
        got = block_means(x, every)
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(np.isnan(got), np.isnan(want))
        assert np.array_equal(
            got[~np.isnan(got)].view(np.int64), want[~np.isnan(want)].view(np.int64)
        )
