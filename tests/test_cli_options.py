"""The options `sarlearn follow` and `sarlearn drive` share are defined once (cli/options.py)."""

from __future__ import annotations

import inspect
from typing import get_type_hints

from typer.testing import CliRunner

from sarlearn.cli import app, options
from sarlearn.cli.follow import follow
from sarlearn.cli.robot import drive

SHARED = ("rule", "steps", "seed", "lr", "layers", "out", "config", "stop_at_success",
          "resume", "set_", "load", "freeze", "progress")  # fmt: skip


def test_follow_and_drive_take_the_shared_options_from_one_definition() -> None:
    aliases = {
        name: value
        for name, value in vars(options).items()
        if name.endswith("Option") and name[0].isupper()
    }
    for command in (follow, drive):
        hints = get_type_hints(command, include_extras=True)
        for name in SHARED:
            assert any(hints[name] == alias for alias in aliases.values()), (command, name)
    f, d = inspect.signature(follow).parameters, inspect.signature(drive).parameters
    assert all(f[n].default == d[n].default for n in SHARED)


def test_run_flags_are_the_dotted_overrides_of_both_commands() -> None:
    flags = options.run_flags("sar", None, 100, 3, None, "rows", None, freeze=False)
    assert flags == {"rule.name": "sar", "world.track": None, "steps": 100, "seed": 3,
                     "rule.lr": None, "world.inputs": "rows", "stop_at_success": None,
                     "freeze": None}  # fmt: skip
    assert options.run_flags(None, None, None, None, None, None, None, freeze=True)["freeze"]


def test_both_commands_show_the_same_help_for_a_shared_option() -> None:
    runner = CliRunner()
    for command in ("follow", "drive"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "Output folder (default: a new folder under runs/)." in result.output
        assert "Start from a saved network" in result.output
