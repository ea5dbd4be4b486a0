"""Faults a run must survive: ``kill -9`` at any moment of ``sarlearn follow`` (the final write
phase included), a full disk and a read-only file system.

Each time the resumed result equals the uninterrupted one: the same trace, step by step, with
no step lost or duplicated. The full-disk and read-only tests mount small tmpfs file systems,
so they need root and a system that allows mounting; otherwise they are skipped with the
reason.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sarlearn.cli import app
from sarlearn.runs import outputs
from summaries import VOLATILE

SRC = Path(__file__).resolve().parents[1] / "src"

#: A small run that still takes a few seconds in the reference loop, with many checkpoints.
RUN = [
    "follow",
    "--steps", "2000",
    "--layers", "2",
    "--track", "oval",
    "--rule", "sar",
    "--set", "engine=numpy",
    "--set", "checkpoint_every=100",
    "--no-progress",
]  # fmt: skip

#: Runs the CLI with checkpoints at every ``checkpoint_every`` steps (no 2-s gap, so that the
#: short test run has many), and with KILL_IN_FINAL=1 kills itself with SIGKILL as the final
#: outputs are being written (after trace.parquet, before the summary).
DRIVER = """
import os, signal, sys
from sarlearn.runs import outputs, run
run.MIN_CHECKPOINT_SECONDS = 0.0
if os.environ.get("KILL_IN_FINAL"):
    original = outputs.join_parquet
    def write_then_die(*args, **kw):
        original(*args, **kw)
        os.kill(os.getpid(), signal.SIGKILL)
    outputs.join_parquet = write_then_die
from sarlearn.cli import app
app(sys.argv[1:])
"""


def cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(args: list[str], env: dict[str, str] | None = None) -> None:
    proc = cli(args, env)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()


def resume_until_done(out: Path) -> dict:
    """What a user does after a kill: resume (or start again if nothing was written yet)."""
    if (out / outputs.CONFIG).is_file():
        finish(["follow", "--resume", str(out)])
    else:
        finish([*RUN, "--out", str(out)])
    return json.loads((out / outputs.SUMMARY).read_text())


def same_run(a: Path, b: Path) -> None:
    ta, tb = outputs.read_trace(a / outputs.TRACE), outputs.read_trace(b / outputs.TRACE)
    assert ta["step"].tolist() == list(range(len(tb)))  # nothing lost or duplicated
    pd.testing.assert_frame_equal(ta, tb)
    sa = json.loads((a / outputs.SUMMARY).read_text())
    sb = json.loads((b / outputs.SUMMARY).read_text())
    assert {k: v for k, v in sa.items() if k not in VOLATILE} == {
        k: v for k, v in sb.items() if k not in VOLATILE
    }
    assert not (a / outputs.CHECKPOINT).exists() and not (a / outputs.PARTS).exists()


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The uninterrupted run and how long it took."""
    out = tmp_path_factory.mktemp("whole") / "run"
    t = time.monotonic()
    finish([*RUN, "--out", str(out)])
    return out, time.monotonic() - t


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume(whole: tuple[Path, float], tmp_path: Path) -> None:
    reference, duration = whole
    rng = random.Random(12)
    moments = sorted(rng.uniform(0.2, 1.0) * duration for _ in range(3))
    for k, at in enumerate(moments):
        out = tmp_path / f"cut{k}"
        proc = cli([*RUN, "--out", str(out)])
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        resume_until_done(out)
        same_run(out, reference)


@pytest.mark.slow
def test_kill_9_in_the_final_write_phase_then_resume(
    whole: tuple[Path, float], tmp_path: Path
) -> None:
    reference, _ = whole
    out = tmp_path / "cut"
    proc = cli([*RUN, "--out", str(out)], env={"KILL_IN_FINAL": "1"})
    proc.wait(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    assert (out / outputs.CHECKPOINT).is_file()  # kept until the final summary is written
    assert json.loads((out / outputs.SUMMARY).read_text())["status"] == "running"
    s = resume_until_done(out)
    assert s["resumed_from"] == 1900  # the last checkpoint, not step 0
    same_run(out, reference)


# ---------------------------------------------------------------------- file systems


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs mounted at ``tmp_path / "disk"`` (skipped where mounting is not allowed)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# A rate that suits a network without hidden layers (sar's default, tuned for 10 x 10 + 2,
# would be warned about as saturating the output layer).
SMALL = ["--layers", "2", "--track", "circle", "--no-progress", "--set", "engine=numpy"]
SMALL += ["--lr", "0.01"]


@pytest.mark.slow
def test_a_full_disk_is_a_clear_error_and_the_run_resumes(
    small_tmpfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sarlearn.runs import preflight

    # The disk fills up during the run (another program writing, say): the check of free
    # space before the run, which would refuse it, is skipped here.
    monkeypatch.setattr(preflight, "check_run_size", lambda *a: preflight.estimate_run(a[0]))
    args = [*SMALL, "--steps", "4000", "--record-sensors", "--set", "checkpoint_every=250"]
    runner = CliRunner()
    res = runner.invoke(app, ["follow", *args, "--out", str(small_tmpfs / "run")])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "No space left on device" in lines[0], res.output
    # Space is freed (here: the file system grows), and the run continues where it stopped.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_tmpfs)], check=True)
    res = runner.invoke(app, ["follow", "--resume", str(small_tmpfs / "run"), "--no-progress"])
    assert res.exit_code == 0, res.output
    s = json.loads((small_tmpfs / "run" / outputs.SUMMARY).read_text())
    assert s["status"] == "finished" and s["resumed_from"] > 0
    assert runner.invoke(app, ["follow", *args, "--out", str(tmp_path / "whole")]).exit_code == 0
    same_run(small_tmpfs / "run", tmp_path / "whole")


def test_a_read_only_file_system_is_a_clear_error(small_tmpfs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    res = CliRunner().invoke(
        app, ["follow", *SMALL, "--steps", "20", "--out", str(small_tmpfs / "run")]
    )
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Read-only file system" in lines[0], res.output
