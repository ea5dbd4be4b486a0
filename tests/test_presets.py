"""Named configurations (``--preset``): one name for a configuration the docs talk about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sarlearn.cli import app
from sarlearn.config import PRESETS, ConfigError, RunConfig, preset

runner = CliRunner()


def test_relevance_only_shallow_is_the_rule_on_a_network_without_hidden_layers() -> None:
    cfg = RunConfig().with_overrides(preset("relevance-only-shallow"))
    assert cfg.rule.name == "relevance-only" and cfg.network.layers == [2]
    assert RunConfig().with_overrides({"rule.name": "relevance-only"}).network.layers[:-1]


def test_every_preset_is_a_valid_config_and_unknown_names_are_config_errors() -> None:
    for name in PRESETS:
        RunConfig().with_overrides(preset(name))
    with pytest.raises(ConfigError, match="relevance-only-shallow"):
        preset("shallow")


def test_follow_with_a_preset_under_the_flags(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["follow", "--preset", "relevance-only-shallow", "--track", "circle", "--lr", "0.05"]
    result = runner.invoke(app, [*args, "--steps", "50", "--no-progress", "--out", str(out)])
    assert result.exit_code == 0, result.output
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["rule"]["name"] == "relevance-only" and cfg["network"]["layers"] == [2]
    assert cfg["rule"]["lr"] == 0.05  # the flag wins over the preset


def test_an_unknown_preset_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["follow", "--preset", "nope", "--steps", "5", "--no-progress"])
    assert result.exit_code == 2 and "unknown preset" in result.output
    assert "Traceback" not in result.output
