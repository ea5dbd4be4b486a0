"""Reports: the numbers in report.md are recomputed here from results.parquet directly."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sarlearn.reports.report import FIGURES, ReportError, make_report
from sarlearn.store.store import MergedStore, ResultStore
from sarlearn.sweeps.spec import parse_spec
from sarlearn.sweeps.sweep import run_sweep
from sweep_fakes import fake_run, no_trace_run


def report_spec() -> object:
    """sar and gdm at their own lrs, two depths, five seeds, and a rule that always raises."""
    return parse_spec(
        {
            "base": {"steps": 1200},
            "grid": {"seed": {"range": [0, 5]}, "network.layers": [[2], [10, 10, 10, 2]]},
            "cases": [
                {"rule.name": "sar", "rule.lr": {"logspace": [-6, -4, 3]}},
                {"rule.name": "gdm", "rule.lr": [3e-5, 1e-4, 1e-3]},
                {"rule.name": "boom", "rule.lr": [1e-4]},
            ],
        }
    )


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "sw"
    run_sweep(report_spec(), out, run_fn=fake_run, jobs=1, trace_every=20)
    return out


@pytest.fixture(scope="module")
def made(sweep_dir: Path) -> object:
    return make_report(sweep_dir)


def read_md_table(text: str, heading: str) -> pd.DataFrame:
    """The markdown table under ``## heading`` as strings."""
    block = text.split(f"## {heading}\n\n", 1)[1].split("\n\n", 1)[0]
    rows = [
        [c.strip() for c in line.strip().strip("|").split(" | ")]
        for line in block.splitlines()
        if not line.startswith("|---")
    ]
    return pd.DataFrame(rows[1:], columns=rows[0])


def num(cell: str) -> float:
    return math.nan if cell == "" else float(cell)


def independent_stats(results: pd.DataFrame) -> pd.DataFrame:
    """Per (rule, layers, lr): n, successes, median/q1/q3 with plain numpy."""
    rows = []
    for (rule, layers, lr), g in results.groupby(["rule", "layers", "lr"]):
        steps = g["steps_to_success"].dropna().to_numpy(dtype=float)
        q1, med, q3 = np.percentile(steps, [25, 50, 75]) if len(steps) else [math.nan] * 3
        rows.append(
            {
                "group": f"{rule} layers={layers}",
                "lr": lr,
                "n": len(g),
                "n_success": len(steps),
                "n_error": int((g["status"] == "error").sum()),
                "median": med,
                "q1": q1,
                "q3": q3,
            }
        )
    return pd.DataFrame(rows)


def test_report_tables_match_results_parquet(sweep_dir: Path, made: object) -> None:
    results = pd.read_parquet(sweep_dir / "results.parquet")
    want = independent_stats(results).sort_values(["group", "lr"], ignore_index=True)
    text = made.markdown.read_text()
    got = read_md_table(text, "Steps to success per group and learning rate")
    assert len(got) == len(want) == 2 * (3 + 3) + 2
    for (_, g), (_, w) in zip(got.iterrows(), want.iterrows(), strict=True):
        assert g["group"] == w["group"]
        assert float(g["lr"]) == pytest.approx(w["lr"], rel=1e-2)
        assert (int(g["n"]), int(g["n success"]), int(g["n error"])) == (
            w["n"], w["n_success"], w["n_error"],
        )  # fmt: skip
        for col in ("median", "q1", "q3"):
            if math.isnan(w[col]):
                assert g[col] == ""  # never succeeded: no number, certainly not 0
            else:
                assert num(g[col]) == pytest.approx(w[col], abs=0.01)
    # the CSV holds the same numbers at full precision
    csv = pd.read_csv(made.out_dir / "table_lr.csv").sort_values(["group", "lr"], ignore_index=True)
    np.testing.assert_allclose(csv["median"], want["median"])
    np.testing.assert_allclose(csv["q3"], want["q3"])


def test_settling_columns_match_results_parquet(sweep_dir: Path, made: object) -> None:
    results = pd.read_parquet(sweep_dir / "results.parquet")
    # the store carries the settling measures of every ok run
    ok = results[results["status"] == "ok"]
    assert ok["settled"].notna().all() and ok["settle_window"].eq(1200).all()
    assert (ok["settled"] == ok["settled_step"].notna()).all()
    assert ok.loc[ok["seed"] == 4, "dead_layers"].eq(1).all()
    assert (results.loc[results["status"] == "error", "settled"] == False).all()  # noqa: E712
    got = read_md_table(made.markdown.read_text(), "Steps to success per group and learning rate")
    for _, row in got.iterrows():
        rule, layers = row["group"].split(" layers=")
        g = results[
            (results["rule"] == rule)
            & (results["layers"] == layers)
            & np.isclose(results["lr"], float(row["lr"]), rtol=1e-2)
        ]
        settled = g[g["settled"]]
        assert int(row["n settled"]) == len(settled)
        if len(settled):
            assert num(row["settled step"]) == pytest.approx(settled["settled_step"].median())
        else:
            assert row["settled step"] == ""
        assert int(row["dead layer"]) == int((g["dead_layers"] > 0).sum())
        relapses = g.loc[g["success"], "relapses"]
        if len(relapses):
            assert num(row["relapses"]) == pytest.approx(relapses.median())
    assert "settled (their last settle_window steps" in made.markdown.read_text()
    best = read_md_table(made.markdown.read_text(), "Best learning rate per group, by settling")
    assert set(best["group"]) == set(got["group"])
    csv = pd.read_csv(made.out_dir / "table_best_lr_settled.csv")
    assert {"n_settled", "settled_rate", "settled_median", "flips_median"} <= set(csv.columns)


def test_best_lr_per_group(sweep_dir: Path, made: object) -> None:
    results = pd.read_parquet(sweep_dir / "results.parquet")
    stats = independent_stats(results)
    stats["rate"] = stats["n_success"] / stats["n"]
    got = read_md_table(made.markdown.read_text(), "Best learning rate per group")
    for _, row in got.iterrows():
        g = stats[stats["group"] == row["group"]]
        top = g[g["rate"] == g["rate"].max()]
        top = top[top["median"] == top["median"].min()] if top["median"].notna().any() else top
        if g["rate"].max() > 0:
            assert float(row["best_lr"]) == pytest.approx(top["lr"].iloc[0], rel=1e-2)
    assert set(got["group"]) == set(stats["group"])
    sar = got[got["group"] == "sar layers=2"].iloc[0]
    assert float(sar["best_lr"]) == pytest.approx(1e-5)


def test_depth_table_and_all_figures(made: object) -> None:
    assert sorted(p.name for p in made.figures) == sorted(FIGURES)
    for fig in made.figures:
        assert fig.stat().st_size < 200_000  # small PNGs
        assert fig.read_bytes()[:4] == b"\x89PNG"
    depth = read_md_table(
        made.markdown.read_text(), "Depth (at the best learning rate of each depth)"
    )
    assert set(depth["n_hidden"]) == {"0", "3"}
    # the fake's deep nets fail with odd seeds: 3 of 5 succeed
    deep_sar = depth[(depth["depth_group"] == "sar") & (depth["n_hidden"] == "3")].iloc[0]
    assert (deep_sar["n"], deep_sar["n success"]) == ("5", "3")


def test_errors_are_listed(made: object) -> None:
    text = made.markdown.read_text()
    assert "| ValueError | 10 | fake failure at lr=0.0001 |" in text  # 2 depths x 5 seeds
    assert "10 raised an error" in text


@pytest.fixture(scope="module")
def shard_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The sweep of ``sweep_dir`` split in three shards, each in its own folder."""
    root = tmp_path_factory.mktemp("shards")
    dirs = [root / f"shard-{i}" for i in range(3)]
    for i, d in enumerate(dirs):
        run_sweep(report_spec(), d, run_fn=fake_run, jobs=1, trace_every=20, shard=(i, 3))
    return dirs


def test_report_of_shards_equals_report_of_the_whole_sweep(
    sweep_dir: Path, made: object, shard_dirs: list[Path], tmp_path: Path
) -> None:
    merged = make_report(shard_dirs, tmp_path / "rep")
    assert merged.out_dir == tmp_path / "rep"
    for name in ("lr", "best_lr", "depth"):
        pd.testing.assert_frame_equal(
            pd.read_csv(merged.out_dir / f"table_{name}.csv"),
            pd.read_csv(made.out_dir / f"table_{name}.csv"),
        )
    whole, parts = made.markdown.read_text(), merged.markdown.read_text()
    for heading in ("Steps to success per group and learning rate", "Errors"):
        pd.testing.assert_frame_equal(read_md_table(parts, heading), read_md_table(whole, heading))
    assert "3 folders merged" in parts and "shard-0, shard-1, shard-2" in parts
    assert "shards are not in this report" not in parts
    assert [p.name for p in merged.figures] == [p.name for p in made.figures]
    # traces merge too: the same rows as the unsharded sweep's
    key = ["run_id", "step"]
    want = ResultStore(sweep_dir).load_traces().sort_values(key, ignore_index=True)
    got = MergedStore(shard_dirs).load_traces().sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(got[want.columns], want)


def test_report_names_missing_shards(shard_dirs: list[Path], tmp_path: Path) -> None:
    two = make_report(shard_dirs[:2], tmp_path / "two").markdown.read_text()
    assert "1 of 3 shards are not in this report: 2/3." in two
    one = make_report(shard_dirs[2]).markdown.read_text()  # default: DIR/report
    assert "2 of 3 shards are not in this report: 0/3, 1/3." in one
    assert (shard_dirs[2] / "report" / "report.md").exists()


def test_several_folders_must_all_exist(shard_dirs: list[Path], tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no sweep folder at"):
        make_report([shard_dirs[0], tmp_path / "typo"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(ReportError, match="none of the 2 folders holds results"):
        make_report([tmp_path / "a", tmp_path / "b"])


def test_only_supported_figures(tmp_path: Path) -> None:
    # one lr per rule, one depth, no traces, no weight change: nothing to plot
    spec = parse_spec({"base": {"steps": 1100, "network.layers": [2]}, "grid": {"seed": [0, 1, 2]}})
    run_sweep(spec, tmp_path / "sw", run_fn=no_trace_run, jobs=1)
    made = make_report(tmp_path / "sw")
    assert made.figures == []
    assert made.depth_table is None
    assert "## Depth" not in made.markdown.read_text()
    assert "## Figures" not in made.markdown.read_text()


def test_stale_figures_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    spec = parse_spec(
        {"base": {"steps": 1100, "network.layers": [2]}, "grid": {"rule.lr": [1e-5, 1e-4]}}
    )
    run_sweep(spec, out, run_fn=fake_run, jobs=1)
    first = make_report(out, tmp_path / "rep")
    assert (tmp_path / "rep" / "steps_vs_lr.png") in first.figures
    (tmp_path / "rep" / "mine.png").write_bytes(b"not ours")
    # the same folder reported again after the sweep lost its second lr
    import shutil

    shutil.rmtree(out)
    run_sweep(spec.override(grid={"rule.lr": [1e-5]}), out, run_fn=fake_run, jobs=1)
    make_report(out, tmp_path / "rep")
    assert not (tmp_path / "rep" / "steps_vs_lr.png").exists()
    assert (tmp_path / "rep" / "mine.png").exists()  # never touch files we did not make


def test_group_labels_name_varying_fields(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "base": {"steps": 1100, "network.layers": [2]},
            "grid": {"rule.relevance.gain": [1.0, 2.0], "rule.lr": [1e-5, 1e-4]},
        }
    )
    run_sweep(spec, tmp_path / "sw", run_fn=fake_run, jobs=1)
    made = make_report(tmp_path / "sw")
    assert set(made.best_lr["group"]) == {
        "sar rule.relevance.gain=1.0",
        "sar rule.relevance.gain=2.0",
    }


def test_a_field_unset_in_some_cases_still_labels_its_group(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "base": {"steps": 1100, "network.layers": [10, 2], "rule.lr": 1e-5},
            "grid": {"seed": [0, 1]},
            "cases": [{}, {"rule.layer_lr_scale": [[0, 1]]}],
        }
    )
    run_sweep(spec, tmp_path / "sw", run_fn=fake_run, jobs=1)
    made = make_report(tmp_path / "sw")
    assert set(made.best_lr["group"]) == {
        "sar rule.layer_lr_scale=default",
        "sar rule.layer_lr_scale=0.0,1.0",
    }


def test_the_reflex_alone_has_no_learning_rate(tmp_path: Path) -> None:
    spec = parse_spec(
        {
            "base": {"steps": 1100, "network.layers": [2], "rule.lr": 1e-5},
            "grid": {"seed": [0, 1]},
            "cases": [{"rule.name": "reflex"}, {"rule.name": "sar"}],
        }
    )
    run_sweep(spec, tmp_path / "sw", run_fn=fake_run, jobs=1)
    best = make_report(tmp_path / "sw").best_lr.set_index("group")
    assert np.isnan(best.loc["reflex", "best_lr"]) and best.loc["reflex", "n"] == 2
    assert best.loc["sar", "best_lr"] == 1e-5


def test_nothing_to_report(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no sweep folder"):
        make_report(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="holds no results"):
        make_report(tmp_path / "empty")
