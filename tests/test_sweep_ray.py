"""Sweeps on a real local Ray cluster (started and stopped here): the same rows as the local
pool, a killed worker retried, a killed driver resumed without redoing finished runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sarlearn.store.store import ResultStore
from sarlearn.sweeps.spec import parse_spec
from sarlearn.sweeps.sweep import run_sweep
from sweep_fakes import CALLS_ENV, DIE_ENV

ray = pytest.importorskip("ray", reason="Ray cannot be imported: pip install 'sarlearn[ray]'")

pytestmark = pytest.mark.slow  # starting Ray takes 5-15 s

SRC = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent
CLI = "import sys; from sarlearn.cli import main; sys.exit(main())"
METRICS = [
    "run_id", "status", "run_status", "run_message", "error_type", "error_message", "rule",
    "lr", "seed", "steps_run", "success", "steps_to_success", "mean_abs_error_first_1000",
    "mean_abs_error_last_1000", "off_track_steps", "config_json", "params_json",
]  # fmt: skip


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path | str]]:
    """One local Ray cluster for the module: 2 CPUs, workers that import src/ and tests/,
    and the fakes' call and die folders in their environment."""
    root = tmp_path_factory.mktemp("ray")
    dirs = {"calls": root / "calls", "die": root / "die"}
    for d in dirs.values():
        d.mkdir()
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", CALLS_ENV, DIE_ENV)}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS)])
    os.environ[CALLS_ENV], os.environ[DIE_ENV] = str(dirs["calls"]), str(dirs["die"])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield {**dirs, "address": ray.get_runtime_context().gcs_address}
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def rows(out: Path) -> pd.DataFrame:
    return ResultStore(out).load().sort_values("run_id", ignore_index=True)


def test_ray_gives_the_rows_of_the_local_pool(tmp_path: Path, cluster: dict) -> None:
    # the real run function, batched as populations on both backends
    spec = parse_spec(
        {
            "base": {"steps": 1200, "network.layers": [10, 2], "world.track": "oval"},
            "grid": {"seed": [0, 1, 2], "rule.name": ["sar", "gdm"], "rule.lr": [1e-3]},
        }
    )
    local = run_sweep(spec, tmp_path / "local", jobs=1)
    on_ray = run_sweep(spec, tmp_path / "ray", backend="ray")
    assert (on_ray.ok, on_ray.failed, on_ray.infra) == (local.ok, local.failed, 0) == (6, 0, 0)
    a, b = rows(tmp_path / "local"), rows(tmp_path / "ray")
    pd.testing.assert_frame_equal(a[METRICS], b[METRICS])
    pairs = zip(a["weight_change"], b["weight_change"], strict=True)
    assert all(np.array_equal(x, y) for x, y in pairs)
    ta, tb = (
        ResultStore(tmp_path / d).load_traces().sort_values(["run_id", "step"], ignore_index=True)
        for d in ("local", "ray")
    )
    pd.testing.assert_frame_equal(ta, tb)
    # failures come back as records with their traceback, as locally
    fails = parse_spec(
        {"base": {"steps": 300}, "grid": {"rule.name": ["boom", "gdm"], "rule.lr": [1e-4]}}
    )
    run_sweep(fails, tmp_path / "f-local", run_fn="sweep_fakes:fake_run", jobs=1)
    run_sweep(fails, tmp_path / "f-ray", run_fn="sweep_fakes:fake_run", backend="ray")
    a, b = rows(tmp_path / "f-local"), rows(tmp_path / "f-ray")
    pd.testing.assert_frame_equal(a[METRICS], b[METRICS])
    assert "ValueError: fake failure" in b.set_index("rule").loc["boom", "error_traceback"]


def test_a_killed_worker_is_retried(tmp_path: Path, cluster: dict) -> None:
    spec = parse_spec(
        {"base": {"steps": 300}, "grid": {"seed": [0, 1, 2], "rule.name": ["sar", "gdm"]}}
    )
    summary = run_sweep(spec, tmp_path / "sw", run_fn="sweep_fakes:die_once_run", backend="ray")
    killed = sorted(p.name for p in Path(cluster["die"]).iterdir())
    assert len(killed) == 2  # one worker process killed mid-run per rule (seed 1)
    assert (summary.ok, summary.failed, summary.infra) == (6, 0, 0)
    df = ResultStore(tmp_path / "sw").load(latest=False)
    assert len(df) == 6 and df["run_id"].is_unique and (df["status"] == "ok").all()


def test_a_killed_driver_resumes_without_redoing_finished_runs(
    tmp_path: Path, cluster: dict
) -> None:
    out = tmp_path / "sw"
    calls = Path(cluster["calls"])
    for f in calls.iterdir():
        f.unlink()
    args = ["--rule", "sar", "--rule", "gdm", "--lr", "1e-4", "--seeds", "8", "--steps", "300"]
    cmd = [
        sys.executable, "-c", CLI, "sweep", "--out", str(out), *args, "--backend",
        "ray", "--address", str(cluster["address"]), "--run-fn", "sweep_fakes:slow_run",
        "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    parts = out / "results"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        if parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= 3:
            break
        time.sleep(0.05)
    assert driver.poll() is None, driver.communicate()[0].decode()[-2000:]
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = set(ResultStore(out).load()["run_id"])
    assert 3 <= len(before) < 16
    summary = run_sweep(
        parse_spec(
            {
                "base": {"steps": 300},
                "grid": {"rule.name": ["sar", "gdm"], "rule.lr": [1e-4], "seed": list(range(8))},
            }
        ),
        out,
        run_fn="sweep_fakes:slow_run",
        backend="ray",
    )
    assert summary.skipped == len(before) and summary.ran == 16 - len(before)
    everything = ResultStore(out).load(latest=False)
    assert len(everything) == 16 and everything["run_id"].is_unique  # nothing lost or twice
    per_run = pd.Series([f.name.rsplit("-", 1)[0] for f in calls.iterdir()]).value_counts()
    done_before = ResultStore(out).load().set_index("run_id").loc[sorted(before)]
    for rule, lr, seed in done_before[["rule", "lr", "seed"]].itertuples(index=False):
        assert per_run[f"{rule}-{lr}-{seed}"] == 1  # a stored run never ran again
    # and the rows are those of an uninterrupted local sweep
    run_sweep(
        parse_spec(
            {
                "base": {"steps": 300},
                "grid": {"rule.name": ["sar", "gdm"], "rule.lr": [1e-4], "seed": list(range(8))},
            }
        ),
        tmp_path / "ref",
        run_fn="sweep_fakes:fake_run",
        jobs=1,
    )
    ref, got = rows(tmp_path / "ref"), rows(out)
    cols = [c for c in METRICS if c not in ("config_json",)]
    pd.testing.assert_frame_equal(ref[cols], got[cols])
