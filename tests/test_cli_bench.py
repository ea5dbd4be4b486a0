"""`sarlearn bench`: table, JSON, option errors (tiny step counts; float64 kernel only)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sarlearn.cli import app
from sarlearn.config import RunConfig
from sarlearn.engine.bench import network_bytes, roofline

runner = CliRunner()

TINY = ["--steps", "30", "--population", "3", "--repeats", "2", "--rule", "sar",
        "--dtype", "float64", "--no-bandwidth", "--warmup", "40"]  # fmt: skip


def test_bench_prints_a_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", *TINY, "--mode", "single", "--mode", "population-dense", "--mode", "numpy"]
    result = runner.invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "steps/s" in result.output
    assert "numpy" in result.output
    assert "CPU:" in result.output and "[3/3] sar float64 numpy" in result.output  # progress
    data = json.loads(out.read_text())
    assert {"machine", "settings", "results"} <= set(data)
    assert data["machine"]["cores"] >= 1 and data["machine"]["numba"]
    modes = [r["mode"] for r in data["results"]]
    assert modes == ["single", "population-dense", "numpy"]
    for r in data["results"]:
        assert r["median"] > 0 and len(r["rates"]) == 2
    dense = data["results"][1]
    assert dense["population"] == 3 and dense["update_fraction"] > 0.5
    assert data["settings"]["warmup"] == 40
    assert "sar float64 single/numpy" in data["ratios"]


def test_bench_learner_and_cpp_modes(tmp_path: Path) -> None:
    """The learner alone; the C++ library when installed, else a row saying why it was skipped."""
    out = tmp_path / "bench.json"
    args = ["bench", *TINY, "--mode", "learner", "--mode", "cpp", "--json", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    learner, cpp = data["results"]
    assert learner["mode"] == "learner" and learner["median"] > 0
    assert cpp["mode"] == "cpp"
    try:
        import feedforward_closedloop_learning  # noqa: F401
    except ImportError:
        assert "not installed" in cpp["skipped"] and "skipped" in result.output
    else:
        assert cpp["median"] > 0 and "sar float64 learner/cpp" in data["ratios"]


def test_bench_rejects_bad_options() -> None:
    for bad in (["--dtype", "float16"], ["--mode", "warp"], ["--rule", "nope"]):
        result = runner.invoke(app, ["bench", *bad])
        assert result.exit_code == 2, result.output
        assert "error" in result.output


def test_roofline_counts_every_weight_twice() -> None:
    b = network_bytes(720, [10] * 10 + [2], 8)
    assert b["n_weights"] == 720 * 10 + 9 * 100 + 10 * 2
    assert b["bytes_per_agent_step"] > 2 * b["weight_bytes"]
    roof = roofline(RunConfig(), bandwidth_gbs=20.0)
    assert roof["float32"]["bound_agent_steps_per_s"] > roof["float64"]["bound_agent_steps_per_s"]
