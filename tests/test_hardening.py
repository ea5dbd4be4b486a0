"""Bad input ends in one clear line (exit 2); runs survive SIGTERM, resume cleanly and cost in
proportion to their length; the robot path works without a Pi."""

from __future__ import annotations

import json
import os
import signal
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sarlearn.cli import app
from sarlearn.config import ConfigError, RunConfig
from sarlearn.errors import TrackError
from sarlearn.runs import outputs
from sarlearn.runs.run import (
    TERMINATED,
    RunInterrupted,
    run_follow,
    terminate_as_interrupt,
)

ROOT = Path(__file__).resolve().parents[1]
TINY_ANY_LR = ["--steps", "30", "--layers", "2", "--track", "circle", "--no-progress"]
TINY_ANY_LR += ["--set", "engine=numpy"]
# sar's default rate is tuned for 10 x 10 + 2: on a network without hidden layers it would be
# warned about (saturating), which adds a line to every output checked here.
TINY = [*TINY_ANY_LR, "--lr", "0.01"]


def cfg_of(**over: Any) -> RunConfig:
    base = {
        "world.track": "circle",
        "network.layers": [2],
        "rule.name": "gdm",
        "rule.lr": 1e-4,
        "engine": "numpy",  # no compilation for these short runs
    }
    return RunConfig().with_overrides({**base, "steps": 300, **over})


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def one_clear_line(res: Any) -> str:
    """The run ended with exit 2 and a single ``error: ...`` line (no traceback)."""
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "Traceback" not in res.output
    return lines[0]


# ---------------------------------------------------------------------- bad options


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seed", "-1"], "seed"),
        (["--set", "world.arena=1e-9"], "below the minimum"),
        (["--set", "world.arena=1e6"], "GiB of memory"),
        (["--set", "world.track_seed=-3"], "track_seed"),
        (["--steps", "1000000000000"], "too long for one run"),
    ],
)
def test_impossible_settings_are_clear_errors(tmp_path: Path, args: list[str], needle: str) -> None:
    line = one_clear_line(invoke("follow", *TINY, *args, "--out", str(tmp_path / "o")))
    assert needle in line
    assert not (tmp_path / "o").exists()


def test_a_non_utf8_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"steps = 10\n# caf\xe9 \xff\xfe\n")
    line = one_clear_line(invoke("follow", *TINY, "--config", str(bad), "--out", str(tmp_path)))
    assert "not UTF-8" in line and "bad.toml" in line


def test_output_folder_problems_are_clear_errors(tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert "--out is empty" in one_clear_line(invoke("follow", *TINY, "--out", ""))
    assert "existing file" in one_clear_line(invoke("follow", *TINY, "--out", str(a_file)))
    line = one_clear_line(invoke("follow", *TINY, "--out", str(a_file / "run")))
    assert "cannot write the run folder" in line
    assert a_file.read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_clear_error(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        line = one_clear_line(invoke("follow", *TINY, "--out", str(ro / "run")))
        assert "cannot write the run folder" in line
    finally:
        ro.chmod(0o700)


def test_tracks_refuses_a_huge_resolution_with_an_estimate(tmp_path: Path) -> None:
    line = one_clear_line(
        invoke(
            "tracks", "--write", "curvy", "--resolution", "1000", "--out", str(tmp_path / "t.png")
        )
    )
    assert "250,000 x 250,000" in line and "GiB" in line
    assert not (tmp_path / "t.png").exists()


# ---------------------------------------------------------------------- warnings


def test_settings_that_cannot_work_are_warned_about() -> None:
    from sarlearn.runs.preflight import setting_warnings

    assert setting_warnings(RunConfig()) == []
    wide = setting_warnings(RunConfig().with_overrides({"world.line_width": 20}))
    assert len(wide) == 1 and "world.line_width = 20" in wide[0]
    # (sar's default weight bound keeps even this rate from saturating: take gdm's plain step)
    huge = setting_warnings(RunConfig().with_overrides({"rule.name": "gdm", "rule.lr": 1e9}))
    assert len(huge) == 1 and "rule.lr = 1e+09" in huge[0] and "saturates" in huge[0]


@pytest.mark.parametrize("rule", ["sar", "sar-local", "gdm", "fa", "dfa", "sign-symmetry"])
def test_default_learning_rates_do_not_warn(rule: str) -> None:
    from sarlearn.runs.preflight import first_step_saturation

    for seed in range(3):
        cfg = RunConfig().with_overrides({"rule.name": rule, "seed": seed})
        assert first_step_saturation(cfg) is None


def test_the_cli_prints_the_warning_and_still_runs(tmp_path: Path) -> None:
    res = invoke(
        "follow", *TINY_ANY_LR, "--lr", "1e9", "--rule", "sar", "--out", str(tmp_path / "r")
    )
    assert res.exit_code == 0
    assert "warning: rule.lr = 1e+09 is too large" in res.output


def test_run_estimate_scales_with_steps_but_memory_is_bounded() -> None:
    from sarlearn.runs.preflight import estimate_run

    a, b = estimate_run(cfg_of(steps=1000)), estimate_run(cfg_of(steps=1_000_000))
    assert b.memory == a.memory and b.disk == 1000 * a.disk  # a run streams its records
    assert "years" in estimate_run(cfg_of(steps=10**11)).describe()


# ---------------------------------------------------------------------- run folder


def test_sigterm_leaves_an_interrupted_resumable_run(tmp_path: Path) -> None:
    cfg = cfg_of(checkpoint_every=100)

    def term(loop: Any, done: int) -> None:
        if done == 250:
            os.kill(os.getpid(), signal.SIGTERM)

    with terminate_as_interrupt(), pytest.raises(RunInterrupted) as info:
        run_follow(cfg, tmp_path / "cut", on_chunk=term, chunk=50, figures=False)
    s = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert s["status"] == "interrupted" and s["message"] == TERMINATED
    assert info.value.summary["steps"] == 250
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored
    resumed = run_follow(None, tmp_path / "cut", resume=True, figures=False)
    run_follow(cfg, tmp_path / "whole", figures=False)
    assert resumed["resumed_from"] == 200 and resumed["status"] == "finished"
    pd.testing.assert_frame_equal(
        outputs.read_trace(tmp_path / "cut" / "trace.parquet"),
        outputs.read_trace(tmp_path / "whole" / "trace.parquet"),
    )


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_summary_files_list_what_is_on_disk(tmp_path: Path) -> None:
    runs = {
        "finished": cfg_of(),
        "diverged": cfg_of(
            checkpoint_every=50, **{"network.activation": "linear", "rule.lr": 1e308}
        ),
        "off_track": cfg_of(**{"world.start": (20.0, 20.0, 3.9), "world.off_track_after": 30}),
    }
    for name, cfg in runs.items():
        s = run_follow(cfg, tmp_path / name, figures=name == "diverged")
        assert s["status"] == name, (name, s["message"])
        assert s["files"] == _listing(tmp_path / name), name
        on_disk = json.loads((tmp_path / name / "summary.json").read_text())
        assert on_disk["files"] == s["files"]


def test_a_successful_resume_removes_the_stale_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine_switch import force_numpy_engine
    from sarlearn.loop import ClosedLoop

    cfg = cfg_of(checkpoint_every=100)
    original = ClosedLoop.step

    def step_or_fail(self: ClosedLoop) -> dict[str, np.ndarray]:
        if self.t == 150:
            raise RuntimeError("motor on fire")
        return original(self)

    with monkeypatch.context() as m:
        force_numpy_engine(m)
        m.setattr(ClosedLoop, "step", step_or_fail)
        with pytest.raises(RuntimeError):
            run_follow(cfg, tmp_path, figures=False)
    assert "motor on fire" in (tmp_path / "error.txt").read_text()
    s = run_follow(None, tmp_path, resume=True, figures=False)
    assert s["status"] == "finished" and s["resumed_from"] == 100
    assert not (tmp_path / "error.txt").exists() and "error.txt" not in s["files"]


def test_checkpoints_are_at_least_min_seconds_apart(tmp_path: Path, monkeypatch) -> None:
    from sarlearn.runs import run

    monkeypatch.setattr(run, "MIN_CHECKPOINT_SECONDS", 3600.0)
    seen: list[bool] = []

    def look(loop: Any, done: int) -> None:
        seen.append((tmp_path / "r" / outputs.CHECKPOINT).exists())

    run_follow(cfg_of(checkpoint_every=50), tmp_path / "r", on_chunk=look, chunk=50, figures=False)
    assert seen and not any(seen)  # no checkpoint within the hour


def test_checkpoints_append_parts_and_resume_reads_them(tmp_path: Path) -> None:
    cfg = cfg_of(checkpoint_every=100)

    def stop(loop: Any, done: int) -> None:
        if done == 250:
            parts = sorted(p.name for p in (tmp_path / "r" / outputs.PARTS).iterdir())
            want = ["000000000000-000000000100", "000000000100-000000000200"]
            assert parts == [f"{name}.arrow" for name in want]
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        run_follow(cfg, tmp_path / "r", on_chunk=stop, chunk=50, figures=False)
    # A part written ahead of its checkpoint (a kill between the two) is discarded.
    stray = outputs.PARTS + "/000000000200-000000000300.arrow"
    (tmp_path / "r" / stray).write_bytes(b"not a part")
    s = run_follow(None, tmp_path / "r", resume=True, figures=False)
    assert s["status"] == "finished" and s["resumed_from"] == 200
    assert not (tmp_path / "r" / outputs.PARTS).exists()
    assert not (tmp_path / "r" / outputs.CHECKPOINT).exists()
    whole = run_follow(cfg, tmp_path / "whole", figures=False)
    assert s["weight_change"] == whole["weight_change"]


def test_a_kill_in_the_final_write_phase_resumes_from_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sarlearn.runs import run

    cfg = cfg_of(checkpoint_every=100)
    original = run._write_outputs

    def die_while_writing(*args: Any, **kw: Any) -> Any:
        if kw.get("final"):
            raise SystemExit("killed")  # nothing after this point runs, as with kill -9
        return original(*args, **kw)

    with monkeypatch.context() as m:
        m.setattr(run, "_write_outputs", die_while_writing)
        with pytest.raises(SystemExit):
            run_follow(cfg, tmp_path / "r", figures=False)
    assert (tmp_path / "r" / outputs.CHECKPOINT).is_file()
    s = run_follow(None, tmp_path / "r", resume=True, figures=False)
    assert s["resumed_from"] == 200 and s["status"] == "finished"
    run_follow(cfg, tmp_path / "whole", figures=False)
    pd.testing.assert_frame_equal(
        outputs.read_trace(tmp_path / "r" / "trace.parquet"),
        outputs.read_trace(tmp_path / "whole" / "trace.parquet"),
    )


# ---------------------------------------------------------------------- track images


def test_a_large_track_image_is_resampled_while_read(tmp_path: Path) -> None:
    from PIL import Image

    from sarlearn.stages.world import load_track

    img = np.full((3000, 2400), 255, np.uint8)
    img[1400:1440, 200:2200] = 0
    Image.fromarray(img).save(tmp_path / "big.png")
    track = load_track(tmp_path / "big.png", arena=250.0, resolution=4.0)
    assert track.shape == (1000, 800)  # arena * resolution on the longer side
    assert track.image.max() == 1.0 and track.height == 250.0
    # An image at most twice the simulation's resolution is kept as it is.
    small = load_track(tmp_path / "big.png", arena=250.0, resolution=8.0)
    assert small.shape == (3000, 2400)


def test_generated_tracks_have_a_size_limit() -> None:
    from sarlearn.stages.world import load_track

    with pytest.raises(TrackError, match="GiB"):
        load_track("curvy", resolution=1000.0)
    with pytest.raises(TrackError, match="below the minimum"):
        load_track("curvy", arena=1.0)


# ---------------------------------------------------------------------- robots


def test_pi_extra_installs_off_a_pi() -> None:
    from packaging.requirements import Requirement

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in meta["project"]["optional-dependencies"]["pi"]]
    pi = {"platform_system": "Linux", "platform_machine": "aarch64"}
    desktop = {"platform_system": "Linux", "platform_machine": "x86_64"}
    camera = next(r for r in reqs if r.name == "picamera2")
    assert camera.marker is not None
    assert camera.marker.evaluate(pi) and not camera.marker.evaluate(desktop)
    assert camera.marker.evaluate({**pi, "platform_machine": "armv7l"})
    assert not camera.marker.evaluate({**pi, "platform_machine": "arm"})
    assert {r.name for r in reqs} >= {"gpiozero", "pyserial"}


def test_the_pi_robot_opens_a_serial_url() -> None:
    pytest.importorskip("serial")
    from sarlearn.robots.raspberry_pi import HardwareError, RaspberryPiRobot

    with RaspberryPiRobot.open("loop://", camera=False, period=None) as robot:
        robot.set_wheel_speeds(np.array([60.0]), np.array([-30.0]))
        assert robot.motors.link.port.readline() == b"M 128 -64\n"
        with pytest.raises(HardwareError, match="answered"):
            robot.read_ground()  # the loopback echoes 'G' instead of answering
    with pytest.raises(HardwareError, match="Is the Arduino plugged in"):
        RaspberryPiRobot.open("/dev/tty-no-such-arduino", camera=False)


@pytest.mark.parametrize("inputs", ["rows", "camera"])
def test_replay_reproduces_a_recorded_run(tmp_path: Path, inputs: str) -> None:
    from sarlearn.runs.replay import replay_run

    cfg = cfg_of(steps=120, engine="numpy", **{"world.inputs": inputs, "world.track": "oval"})
    run_follow(cfg, tmp_path, record_ground=True, figures=False)
    assert (tmp_path / outputs.FRAMES).is_file() == (inputs == "camera")
    loop, rec = replay_run(tmp_path)
    trace = outputs.read_trace(tmp_path / "trace.parquet")
    np.testing.assert_array_equal(rec["steering"][0], trace["steering"])
    np.testing.assert_array_equal(rec["left"][0], trace["left"])
    assert loop.robot.commands[-1] == (trace["left"].iloc[-1], trace["right"].iloc[-1])


def test_a_config_error_is_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="existing file"):
        (tmp_path / "f").write_text("")
        run_follow(cfg_of(), tmp_path / "f", figures=False)


@pytest.mark.parametrize("resolution", ["inf", "nan", "1e308", "100"])
def test_tracks_refuses_impossible_resolutions_of_images(tmp_path: Path, resolution: str) -> None:
    """Found by the fuzz: an image track with an infinite resolution raised OverflowError."""
    from PIL import Image

    img = np.full((40, 40), 255, np.uint8)
    img[18:22, :] = 0
    Image.fromarray(img).save(tmp_path / "t.png")
    res = invoke(
        "tracks", "-w", str(tmp_path / "t.png"), "--out", str(tmp_path / "o.png"),
        "--resolution", resolution, "--show-start",
    )  # fmt: skip
    assert "resolution" in one_clear_line(res)
    assert not (tmp_path / "o.png").exists()
