"""Sweep reliability: a bad plan stops before anything runs, infrastructure errors are never
results, damaged files are reported and rebuilt, the lock is atomic, and kill -9 of the
sweep's parent or of a worker, at random moments, loses nothing, duplicates nothing and
leaves no process behind."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sarlearn.cli import app
from sarlearn.store.store import (
    LOCK,
    ResultStore,
    StoreCorruptError,
    StoreLockedError,
)
from sarlearn.sweeps.spec import parse_spec
from sarlearn.sweeps.sweep import SweepError, SweepInfraError, run_sweep
from sweep_fakes import disk_full_run, fake_run

HAS_PROC = Path("/proc/self/stat").exists()
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="reads the process table from /proc (Linux)")

SRC = Path(__file__).resolve().parents[1] / "src"
TESTS = Path(__file__).resolve().parent
CLI = "import sys; from sarlearn.cli import main; sys.exit(main())"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
COLS = [
    "run_id", "status", "error_type", "rule", "lr", "seed", "steps_run", "success",
    "steps_to_success", "mean_abs_error_first_1000", "mean_abs_error_last_1000",
]  # fmt: skip
runner = CliRunner()


def invoke(*args: str | Path) -> object:
    return runner.invoke(app, [str(a) for a in args])


def spec(seeds: int = 2) -> object:
    return parse_spec(
        {
            "base": {"steps": 300},
            "grid": {"seed": list(range(seeds)), "rule.name": ["sar", "gdm"]},
            "cases": [{"rule.lr": [1e-4]}, {"rule.name": "boom", "rule.lr": [1e-4]}],
        }
    )


def rows(out: Path) -> pd.DataFrame:
    return ResultStore(out).load().sort_values("run_id", ignore_index=True)


# -- the plan is checked before anything runs ------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rule", "bogus"], "unknown rule 'bogus'"),
        (["--track", "no/such/track.png"], "no/such/track.png"),
    ],
)
def test_a_plan_that_cannot_run_exits_2_before_any_run(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    out = tmp_path / "sw"
    result = invoke("sweep", "--out", out, "--seeds", "2", "--steps", "50", *flags, "--jobs", "2")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (out / "results").exists() and not (out / "runs").exists()


def test_infrastructure_errors_are_not_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "sw"
    monkeypatch.setenv("SARLEARN_FAKE_DISK_FULL", "1")
    summary = run_sweep(spec(), out, run_fn=disk_full_run, jobs=1)
    assert (summary.ok, summary.failed, summary.infra) == (2, 1, 3)  # seed 0's boom: a result
    assert "No space left on device" in summary.infra_errors[0]
    assert set(rows(out)["seed"]) == {0} and len(rows(out)) == 3
    monkeypatch.delenv("SARLEARN_FAKE_DISK_FULL")
    again = run_sweep(spec(), out, run_fn=disk_full_run, jobs=1)
    assert (again.skipped, again.ok, again.failed, again.infra) == (3, 2, 1, 0)  # the lost runs
    # the CLI: exit 1 and says so
    monkeypatch.setenv("SARLEARN_FAKE_DISK_FULL", "1")
    cli = invoke(
        "sweep", "--out", tmp_path / "cli", "--seeds", "2", "--steps", "300", "--rule", "sar",
        "--run-fn", "sweep_fakes:disk_full_run", "--jobs", "1", "--no-progress",
    )  # fmt: skip
    assert cli.exit_code == 1 and "NOT recorded" in cli.output, cli.output
    # results that cannot be written stop the sweep: a SweepInfraError, nothing half-recorded
    monkeypatch.delenv("SARLEARN_FAKE_DISK_FULL")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ResultStore, "_write_part", full)  # under add and add_many
    with pytest.raises(SweepInfraError, match="cannot write the results"):
        run_sweep(spec(), tmp_path / "full", run_fn=fake_run, jobs=1)


# -- damaged files ---------------------------------------------------------------------------


def test_a_damaged_results_file_is_reported_and_rebuilt(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    run_sweep(spec(), out, run_fn=fake_run, jobs=1)
    good = rows(out)
    data = (out / "results.parquet").read_bytes()
    (out / "results.parquet").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(StoreCorruptError, match=r"results\.parquet is unreadable"):
        ResultStore(out).load()
    result = invoke("report", out)
    assert result.exit_code == 2 and "--repair" in result.output, result.output
    assert "Traceback" not in result.output
    result = invoke("report", out, "--repair")
    assert result.exit_code == 0 and "rebuilt from 6 run parts" in result.output, result.output
    pd.testing.assert_frame_equal(rows(out)[COLS], good[COLS])
    # resume repairs by itself and runs nothing again
    (out / "results.parquet").write_bytes(b"garbage")
    (out / "sweep.json").write_bytes(b"\xff\xfe not json")
    summary = run_sweep(spec(), out, run_fn=fake_run, jobs=1)
    assert summary.skipped == 6 and summary.ran == 0
    assert any("results.parquet" in line for line in summary.repaired)
    pd.testing.assert_frame_equal(rows(out)[COLS], good[COLS])


def test_a_bad_sweep_json_or_traces_file_is_reported(tmp_path: Path) -> None:
    out = tmp_path / "sw"
    run_sweep(spec(), out, run_fn=fake_run, jobs=1)
    (out / "sweep.json").write_text("{not json")
    result = invoke("report", out)
    assert result.exit_code == 2 and "sweep.json is unreadable" in result.output
    (out / "traces.parquet").write_bytes(b"PAR1" + b"\0" * 50)
    result = invoke("report", out, "--repair")
    assert result.exit_code == 0, result.output
    assert "traces.parquet was unreadable" in result.output
    assert "sweep.json was unreadable" in result.output
    assert len(rows(out)) == 6


def test_out_pointing_at_a_file_is_a_clear_error(tmp_path: Path) -> None:
    afile = tmp_path / "f.txt"
    afile.write_text("x")
    result = invoke("sweep", "--out", afile, "--seeds", "1", "--steps", "50")
    assert result.exit_code == 2 and "is an existing file" in result.output
    run_sweep(spec(1), tmp_path / "sw", run_fn=fake_run, jobs=1)
    result = invoke("report", tmp_path / "sw", "--out", afile)
    assert result.exit_code == 2 and "is an existing file" in result.output


# -- the lock --------------------------------------------------------------------------------


def _take(root: str, barrier: object, results: object) -> None:
    barrier.wait()
    try:
        with ResultStore(root).lock():
            results.put(1)
            time.sleep(0.2)  # hold it while the other tries
    except StoreLockedError:
        results.put(0)


def test_the_lock_is_atomic_and_never_empty(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    wins = []
    for trial in range(12):
        root = tmp_path / f"t{trial}"
        root.mkdir()
        if trial % 2:  # half the trials race to take over a dead process's lock
            (root / LOCK).write_text(f"{socket.gethostname()} 999999999")
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_take, args=(str(root), barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        wins.append(results.get(timeout=5) + results.get(timeout=5))
    assert wins == [1] * 12  # exactly one winner every time
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / LOCK).write_text("")  # an empty lock is not a dead one
    with pytest.raises(StoreLockedError), ResultStore(tmp_path / "empty").lock():
        pass


# -- scripts ---------------------------------------------------------------------------------


@pytest.mark.slow  # three Python processes: ~5 s
def test_an_unguarded_script_gets_a_clear_message(tmp_path: Path) -> None:
    script = tmp_path / "sweep_script.py"
    body = f"""
        from sarlearn.sweeps.spec import parse_spec
        from sarlearn.sweeps.sweep import run_sweep
        spec = parse_spec({{"base": {{"steps": 300}}, "grid": {{"seed": [0, 1]}}}})
        run_sweep(spec, {str(tmp_path / "sw")!r}, run_fn="sweep_fakes:fake_run", jobs=2)
    """
    script.write_text(textwrap.dedent(body))
    proc = subprocess.run(
        [sys.executable, str(script)], env=ENV, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0
    assert 'if __name__ == "__main__":' in proc.stderr


# -- kill -9 at random moments ---------------------------------------------------------------

FLAGS = ["--rule", "sar", "--rule", "gdm", "--lr", "1e-4", "--seeds", "6", "--steps", "300"]


def start_sweep(out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-c", CLI, "sweep", "--out", str(out), *FLAGS, "--no-progress"]
    return subprocess.Popen(
        [*cmd, *extra], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def wait_for_parts(out: Path, n: int, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        parts = out / "results"
        if parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= n:
            return
        time.sleep(0.02)


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(state, parent pid, command line) of a live process, None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return None if state == "Z" else (state, int(ppid), cmd)


def children(pid: int, recursive: bool = True) -> list[tuple[int, str]]:
    """(pid, command line) of the live children (and their children) of ``pid``."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (info := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = info
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [(p, i[2]) for p, i in table.items() if i[1] == parent]
        found += kids
        if recursive:
            frontier += [p for p, _ in kids]
    return found


def assert_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _stat(p) is not None]
        time.sleep(0.1)
    assert not alive, f"processes left behind: {alive}"


def reference(tmp_path: Path) -> pd.DataFrame:
    out = tmp_path / "reference"
    plan = parse_spec(
        {
            "base": {"steps": 300},
            "grid": {"rule.name": ["sar", "gdm"], "rule.lr": [1e-4], "seed": list(range(6))},
        }
    )
    run_sweep(plan, out, run_fn=fake_run, jobs=1)
    return rows(out)


@needs_proc
@pytest.mark.slow
def test_kill_9_of_the_parent_or_a_worker_loses_nothing(tmp_path: Path) -> None:
    """Trials at random moments (seeded): kill the sweep's parent, check that every worker
    (and the resource tracker) exits, resume; or kill one worker and let the sweep finish.
    Every time the results equal an uninterrupted sweep's, one record per run."""
    rng = random.Random(12)
    expected = reference(tmp_path)
    fake = ["--run-fn", "sweep_fakes:slow_run", "--jobs", "2"]
    for trial in range(2):  # more trials: benchmarks/sweep_reliability.py
        out = tmp_path / f"trial{trial}"
        proc = start_sweep(out, *fake)
        wait_for_parts(out, rng.randint(0, 6), proc)
        time.sleep(rng.uniform(0, 0.4))
        assert proc.poll() is None, proc.stderr.read().decode()
        family = [p for p, _ in children(proc.pid)]
        if trial % 2 == 0:  # the parent
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            assert_gone(family)
            resumed = start_sweep(out, *fake)
            assert resumed.wait(120) == 0, resumed.stderr.read().decode()
        else:  # a worker (not the resource tracker: a worker runs the sweep's code)
            workers = [p for p, cmd in children(proc.pid, False) if "resource_tracker" not in cmd]
            os.kill(rng.choice(workers), signal.SIGKILL)
            assert proc.wait(120) == 0, proc.stderr.read().decode()
            assert_gone(family)
        everything = ResultStore(out).load(latest=False)
        assert len(everything) == 12 and everything["run_id"].is_unique, trial
        pd.testing.assert_frame_equal(rows(out)[COLS], expected[COLS])


@needs_proc
@pytest.mark.slow
def test_kill_9_of_a_population_sweep_resumes_exactly(tmp_path: Path) -> None:
    """The real run function (engine populations in two workers): kill -9 of the parent
    mid-run, no process left, the resumed sweep equals an uninterrupted one."""
    flags = ["--steps", "2000", "--jobs", "2", "--population", "3"]
    ref = tmp_path / "ref"
    done = subprocess.run(
        [sys.executable, "-c", CLI, "sweep", "--out", str(ref), *FLAGS[:-2], *flags,
         "--no-progress"],
        env=ENV, capture_output=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    out = tmp_path / "killed"
    proc = start_sweep(out, *flags)
    wait_for_parts(out, 3, proc, timeout=200)
    assert proc.poll() is None, proc.stderr.read().decode()
    family = [p for p, _ in children(proc.pid)]
    assert family
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert_gone(family)
    resumed = start_sweep(out, *flags)
    assert resumed.wait(300) == 0, resumed.stderr.read().decode()
    everything = ResultStore(out).load(latest=False)
    assert len(everything) == 12 and everything["run_id"].is_unique
    pd.testing.assert_frame_equal(rows(out)[COLS], rows(ref)[COLS])


def test_workers_watch_their_parent() -> None:
    """The initializer of every pool worker: a dead parent (here: a wrong pid) ends it."""
    ctx = multiprocessing.get_context("spawn")
    from sarlearn.sweeps.sweep import watch_parent

    proc = ctx.Process(target=watch_parent, args=(1,))  # pid 1 is never our parent
    proc.start()
    proc.join(30)
    assert proc.exitcode == 1


def test_backend_flags_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "sw"
    result = invoke("sweep", "--out", out, "--seeds", "1", "--backend", "spark")
    assert result.exit_code == 2 and "--backend 'spark'" in result.output
    result = invoke("sweep", "--out", out, "--seeds", "1", "--address", "auto")
    assert result.exit_code == 2 and "--address needs --backend ray" in result.output
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(SweepError, match=r"sarlearn\[ray\]"):
        run_sweep(spec(1), out, run_fn=fake_run, backend="ray")
    assert ResultStore(out).load().empty


def test_a_spec_that_is_not_text_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "spec.toml"
    bad.write_bytes(b"\xff\xfe[grid]\nseed = [0]\n")
    result = invoke("sweep", bad, "--out", tmp_path / "sw")
    assert result.exit_code == 2 and "not UTF-8" in result.output, result.output
    result = invoke("sweep", tmp_path, "--out", tmp_path / "sw")
    assert result.exit_code == 2 and "is a folder" in result.output, result.output
