"""`sarlearn follow` on the command line: outputs, option layering, clear errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from sarlearn.cli import app
from sarlearn.cli.follow import build_config, parse_layers, parse_set
from sarlearn.config import ConfigError

runner = CliRunner()
FAST = ["--track", "circle", "--layers", "2", "--rule", "gdm", "--lr", "1e-4", "--no-progress"]


def follow(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["follow", *args])
    return result.exit_code, result.output


def test_every_output_file(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = follow(*FAST, "--steps", "300", "--out", str(out), "--video", "--seed", "3")
    assert code == 0, text
    for name in (
        "summary.json",
        "trace.parquet",
        "learning.png",
        "path.png",
        "weights.png",
        "config.json",
        "network.npz",
    ):
        assert (out / name).stat().st_size > 0, name
    assert (out / "run.mp4").is_file() or (out / "run.gif").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["steps"] == 300 and summary["status"] == "finished"
    trace = pd.read_parquet(out / "trace.parquet")
    assert {"step", "error", "steering", "left", "right", "x", "y", "heading"} <= set(trace)
    assert "outputs in" in text and "steps to success" in text


def test_default_folder_is_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = follow("--rule", "reflex", "--steps", "100", "--no-progress")
    assert code == 0, text
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("follow-reflex-curvy-s0-")
    assert folder.name in text.replace("\n", "")


def test_layering_defaults_file_flags_set(tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text(
        'steps = 40\nseed = 5\n[rule]\nname = "gdm"\nlr = 0.5\n[world]\ntrack = "oval"\n'
    )
    cfg = build_config(toml, {"seed": 7, "rule.lr": 0.25, "steps": None}, ["rule.lr=0.125"])
    assert (cfg.steps, cfg.seed, cfg.rule.name, cfg.world.track) == (40, 7, "gdm", "oval")
    assert cfg.rule.lr == 0.125  # --set beats the flag, which beats the file
    assert build_config(None, {"network.layers": [5, 3]}).readout == [1.0, 1.0, 1.0]
    raw = {"network.layers": [5, 2], "world.predictor_mode": "raw"}
    assert build_config(None, raw).readout == [1.0, 2.0]
    out = tmp_path / "run"
    code, text = follow(
        "--config",
        str(toml),
        "--layers",
        "2",
        "--out",
        str(out),
        "--set",
        "world.track=circle",
        "--no-progress",
    )
    assert code == 0, text
    saved = json.loads((out / "summary.json").read_text())["config"]
    assert saved["steps"] == 40 and saved["world"]["track"] == "circle"


def test_parsers() -> None:
    assert parse_layers("10, 10,2") == [10, 10, 2]
    assert parse_set(["a.b=1e-4", "c=[1, 2]", "d=oval", "e=true"]) == {
        "a.b": 1e-4,
        "c": [1, 2],
        "d": "oval",
        "e": True,
    }
    for bad in ("10,x", "0,2", "", "2,-1"):
        with pytest.raises(ConfigError, match="--layers"):
            parse_layers(bad)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_set(["novalue"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rule", "nope"], "unknown rule 'nope'"),
        (["--layers", "10,x"], "--layers must be"),
        (["--layers", "0,2"], "--layers must be"),
        (["--track", "no/such/track.png"], "no/such/track.png"),
        (["--track", "nosuchtrack"], "unknown track"),
        (["--config", "missing.toml"], "config file not found"),
        (["--set", "rule.nope=1"], "unknown config field"),
        (["--set", "rule.lr=-1"], "rule.lr"),
        (["--inputs", "sonar"], "--inputs"),
        (["--resume", "nowhere"], "cannot resume"),
        (["--resume", "nowhere", "--steps", "5"], "do not combine"),
    ],
)
def test_bad_options_exit_2_with_one_clear_line(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, text = (
        follow(*args, "--steps", "10", "--no-progress") if "--resume" not in args else follow(*args)
    )
    assert code == 2, text
    assert message in text.replace("\n", " ")
    assert "Traceback" not in text
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_unreadable_config_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("steps = = 3")
    code, text = follow("--config", str(bad))
    assert code == 2 and "not valid TOML" in text and "Traceback" not in text


@pytest.mark.usefixtures("numpy_engine")
def test_resume_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sarlearn.loop import ClosedLoop

    original = ClosedLoop.step

    def interrupt_at_250(self: ClosedLoop) -> object:
        if self.t == 250:
            raise KeyboardInterrupt
        return original(self)

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(ClosedLoop, "step", interrupt_at_250)
        code, text = follow(
            *FAST, "--steps", "400", "--set", "checkpoint_every=200", "--out", str(out)
        )
    assert code == 130 and "--resume" in text.replace("\n", " ")
    code, text = follow("--resume", str(out), "--no-progress")
    assert code == 0, text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 400 and summary["resumed_from"] == 200


@pytest.mark.usefixtures("numpy_engine")
def test_a_crash_is_one_line_and_exit_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sarlearn.loop import ClosedLoop

    def explode(self: ClosedLoop) -> object:
        raise RuntimeError("sensor cable cut")

    monkeypatch.setattr(ClosedLoop, "step", explode)
    out = tmp_path / "run"
    code, text = follow(*FAST, "--steps", "50", "--out", str(out))
    assert code == 1 and "sensor cable cut" in text and "Traceback" not in text
    assert str(out) in text.replace("\n", "")
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"
