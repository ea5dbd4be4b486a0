"""`sarlearn sweep` and `sarlearn report` through the CLI (fake run function, one process)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sarlearn.cli import app

FAKE = ["--run-fn", "sweep_fakes:fake_run", "--jobs", "1", "--no-progress"]
SPEC = """
[sweep]
name = "small"
trace_every = 5

[base]
steps = 1100
"network.layers" = [[2]]

[grid]
seed = {range = [0, 3]}

[[cases]]
"rule.name" = "sar"
"rule.lr" = {logspace = [-6, -4, 3]}

[[cases]]
"rule.name" = ["gdm", "boom"]
"rule.lr" = [1e-4]
"""

runner = CliRunner()


def invoke(*args: str | Path) -> object:
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.toml"
    # "network.layers" in [base] is one value, not candidates: a plain list
    path.write_text(SPEC.replace('"network.layers" = [[2]]', '"network.layers" = [2]'))
    return path


def test_sweep_from_a_spec_file_then_resume(tmp_path: Path, spec_file: Path) -> None:
    out = tmp_path / "sw"
    result = invoke("sweep", spec_file, "--out", out, *FAKE)
    assert result.exit_code == 0, result.output
    assert "15 runs planned: 0 already done, 12 ran" in result.output
    assert "3 failed" in result.output and "--retry-failed" in result.output
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 15 and set(df["rule"]) == {"sar", "gdm", "boom"}
    assert set(pd.read_parquet(out / "traces.parquet")["step"]) >= {0, 5, 10}  # trace_every

    again = invoke("sweep", spec_file, "--out", out, *FAKE)
    assert again.exit_code == 0, again.output
    assert "15 runs planned: 15 already done, 0 ran" in again.output


def test_sweep_from_flags_only(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    result = invoke(
        "sweep", "--out", out, "--rule", "sar", "--rule", "gdm",
        "--lr", "1e-5", "--lr-range", "1e-5:1e-4:2", "--layers", "10,2", "--seeds", "3",
        "--steps", "1200", "--track", "oval", "--set", "rule.relevance.gain=2",
        "--grid", "world.speed=[30, 60]", *FAKE,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 2 * 2 * 3 * 2  # rules x lrs (1e-5 given twice) x seeds x speeds
    assert set(df["lr"]) == {1e-5, 1e-4}
    assert set(df["layers"]) == {"10,2"} and set(df["track"]) == {"oval"}
    assert set(df["steps"]) == {1200} and set(df["seed"]) == {0, 1, 2}
    configs = [json.loads(c) for c in df["config_json"]]
    assert {c["rule"]["relevance"]["gain"] for c in configs} == {2.0}
    assert {c["world"]["speed"] for c in configs} == {30.0, 60.0}


def test_dry_run_runs_nothing(tmp_path: Path, spec_file: Path) -> None:
    result = invoke("sweep", spec_file, "--out", tmp_path / "sw", "--dry-run", *FAKE)
    assert result.exit_code == 0, result.output
    assert "15 runs planned, 0 done, 15 to run" in result.output
    assert "rule.lr: [1e-06, 1e-05, 0.0001]" in result.output
    assert not (tmp_path / "sw" / "results.parquet").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("seed = {range", "sed = {range"), "unknown config field 'sed'"),
        (("{range = [0, 3]}", "{range = [3, 0]}"), "range [3, 0] is empty"),
        (("logspace = [-6, -4, 3]", "logspace = [-6, -4]"), "logspace needs [start, stop, n]"),
        (("steps = 1100", "steps = -5"), "steps: Input should be greater than or equal to 1"),
        (("[grid]", "[grd]"), "unknown table(s) ['grd']"),
        (("[grid]", "[grid"), "is not valid TOML"),
    ],
)
def test_bad_spec_is_a_clear_error_with_exit_code_2(
    tmp_path: Path, spec_file: Path, change: tuple[str, str], message: str
) -> None:
    spec_file.write_text(spec_file.read_text().replace(*change))
    result = invoke("sweep", spec_file, "--out", tmp_path / "sw", *FAKE)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "sw").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "rule.lrr=1"], "unknown config field 'rule.lrr'"),
        (["--set", "steps"], "expected KEY=VALUE"),
        (["--lr-range", "1e-6:1e-3"], "expected LO:HI:N"),
        (["--layers", "10,x"], "expected sizes like 10,10,2"),
        (["--lr", "-1"], "rule.lr"),
        (["--grid", "seed={range = [0]}"], "range [0] is empty"),
    ],
)
def test_bad_flags_exit_with_code_2(tmp_path: Path, flags: list[str], message: str) -> None:
    result = invoke("sweep", "--out", tmp_path / "sw", *flags, *FAKE)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_spec_and_missing_out(tmp_path: Path) -> None:
    result = invoke("sweep", tmp_path / "nope.toml", "--out", tmp_path / "sw", *FAKE)
    assert result.exit_code == 2 and "sweep spec not found" in result.output
    assert invoke("sweep", "--rule", "sar").exit_code == 2  # --out is required


def test_unloadable_run_function_exits_1(tmp_path: Path) -> None:
    result = invoke("sweep", "--out", tmp_path / "sw", "--run-fn", "no_such:thing", "--no-progress")
    assert result.exit_code == 1
    assert "cannot load the run function 'no_such:thing'" in result.output


def test_report_command(tmp_path: Path, spec_file: Path) -> None:
    out = tmp_path / "sw"
    assert invoke("sweep", spec_file, "--out", out, *FAKE).exit_code == 0
    result = invoke("report", out)
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report' / 'report.md'}" in result.output
    assert "steps_vs_lr.png" in result.output
    text = (out / "report" / "report.md").read_text()
    assert "| sar | 1e-05 | 3 | 3 | 0 | 1.000 |" in text

    elsewhere = invoke("report", out, "--out", tmp_path / "rep")
    assert elsewhere.exit_code == 0 and (tmp_path / "rep" / "report.md").exists()


def test_report_on_nothing_exits_2(tmp_path: Path) -> None:
    result = invoke("report", tmp_path / "missing")
    assert result.exit_code == 2
    assert "no sweep folder" in result.output and "Traceback" not in result.output


def test_sharded_sweep_and_merged_report(tmp_path: Path, spec_file: Path) -> None:
    dry = invoke("sweep", spec_file, "--out", tmp_path / "shard-1", "--shard", "1/2", "--dry-run")
    assert dry.exit_code == 0 and "shard 1/2: 7 runs planned, 0 done, 7 to run" in dry.output
    shards = [tmp_path / f"shard-{i}" for i in range(2)]
    for i, folder in enumerate(shards):
        result = invoke("sweep", spec_file, "--out", folder, "--shard", f"{i}/2", *FAKE)
        assert result.exit_code == 0, result.output
        assert f"shard {i}/2: {8 - i} runs planned: 0 already done" in result.output
    again = invoke("sweep", spec_file, "--out", shards[1], "--shard", "1/2", *FAKE)
    assert "shard 1/2: 7 runs planned: 7 already done, 0 ran" in again.output
    ids = [r for f in shards for r in pd.read_parquet(f / "results.parquet")["run_id"]]
    assert len(ids) == len(set(ids)) == 15

    whole = tmp_path / "whole"
    assert invoke("sweep", spec_file, "--out", whole, *FAKE).exit_code == 0
    assert invoke("report", whole).exit_code == 0
    result = invoke("report", *shards, "--out", tmp_path / "rep")
    assert result.exit_code == 0, result.output
    assert f"report: {tmp_path / 'rep' / 'report.md'}" in result.output
    for name in ("table_lr.csv", "table_best_lr.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(tmp_path / "rep" / name), pd.read_csv(whole / "report" / name)
        )
    assert "error_traces.png" in result.output  # traces of both shards


@pytest.mark.parametrize("value", ["2/2", "-1/2", "0/0", "3", "a/b", "1/2/3", "1/"])
def test_bad_shard_exits_2(tmp_path: Path, spec_file: Path, value: str) -> None:
    result = invoke("sweep", spec_file, "--out", tmp_path / "sw", f"--shard={value}", *FAKE)
    assert result.exit_code == 2, result.output
    assert f"--shard {value!r}: expected I/N with 0 <= I < N" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "sw").exists()


# ------------------------------------------------------------ what a sweep process imports
#: Never needed by `sarlearn sweep` (figures, videos, pictures, the optional extras).
NOT_FOR_A_SWEEP = ("matplotlib", "imageio", "PIL", "torch", "gymnasium", "ray", "sklearn")
_LOADED = (
    "import atexit, sys\n"
    "atexit.register(lambda: print(' '.join(sorted({m.split('.')[0] for m in sys.modules}))))\n"
)


def _top_level_modules(code: str, *args: str) -> set[str]:
    import os
    import subprocess
    import sys

    import sarlearn

    src = str(Path(sarlearn.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src, "NUMBA_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _LOADED + code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return set(done.stdout.splitlines()[-1].split())


def test_importing_the_cli_loads_no_heavy_library() -> None:
    """The command line starts light: each command imports what it needs when it runs."""
    loaded = _top_level_modules("import sarlearn.cli")
    heavy = (*NOT_FOR_A_SWEEP, "rich", "pandas", "pyarrow", "numba", "scipy")
    assert not loaded & set(heavy), sorted(loaded & set(heavy))


@pytest.mark.slow  # a fresh interpreter that loads the engine
def test_a_sweep_imports_no_plotting_video_or_optional_library(tmp_path: Path) -> None:
    code = "from sarlearn.cli import app\napp()"
    args = ["sweep", "--rule", "sar", "--rule", "gdm", "--seeds", "2", "--steps", "300"]
    loaded = _top_level_modules(code, *args, "--out", str(tmp_path / "s"), "--no-progress")
    assert {"numba", "pyarrow"} <= loaded  # it did run the engine and the store
    assert not loaded & set(NOT_FOR_A_SWEEP), sorted(loaded & set(NOT_FOR_A_SWEEP))
    assert len(pd.read_parquet(tmp_path / "s" / "results.parquet")) == 4
