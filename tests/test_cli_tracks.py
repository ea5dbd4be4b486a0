"""`sarlearn tracks`: listing, writing PNGs, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sarlearn.cli import app
from sarlearn.world import TRACK_NAMES, load_track
from sarlearn.world.tracks import style_of

runner = CliRunner()


def test_lists_the_built_in_tracks() -> None:
    result = runner.invoke(app, ["tracks"])
    assert result.exit_code == 0, result.output
    for name in TRACK_NAMES:
        assert name in result.output


@pytest.mark.parametrize("name", TRACK_NAMES)
def test_writes_each_track_as_a_png_that_loads_back(tmp_path: Path, name: str) -> None:
    out = tmp_path / f"{name}.png"
    result = runner.invoke(
        app, ["tracks", "--write", name, "--out", str(out), "--resolution", "1", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        width, height = style_of(name).size
        assert im.format == "PNG" and im.size == (width, height) and im.mode == "L"
    back = load_track(out, arena=max(width, height))
    original = load_track(name, seed=3, resolution=1.0)
    assert (back.width, back.height) == (original.width, original.height)
    assert np.abs(back.image - original.image).mean() < 0.01


def test_arena_option_and_start_picture(tmp_path: Path) -> None:
    out = tmp_path / "oval.png"
    result = runner.invoke(
        app, ["tracks", "-w", "oval", "-o", str(out), "--arena", "100", "--resolution", "2"]
    )
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.size == (200, 200)
    pic = tmp_path / "start.png"
    result = runner.invoke(app, ["tracks", "-w", str(out), "-o", str(pic), "--show-start"])
    assert result.exit_code == 0, result.output
    with Image.open(pic) as im:
        assert im.mode == "RGB"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--write", "spiral", "--out", "x.png"], "unknown track 'spiral'"),
        (["--write", "curvy"], "--out"),
        (["--out", "x.png"], "--write"),
        (["--write", "curvy", "--out", "x.jpg"], ".png"),
        (["--write", "missing.png", "--out", "x.png"], "file not found"),
    ],
)
def test_errors_exit_with_code_2_and_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["tracks", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.png").exists()


def test_an_unreadable_image_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_text("hello")
    result = runner.invoke(app, ["tracks", "-w", str(bad), "-o", str(tmp_path / "y.png")])
    assert result.exit_code == 2
    assert "not an image file" in result.output and "bad.png" in result.output


def test_the_app_leaves_the_objects_alive_at_its_end_to_the_process_exit() -> None:
    """Calling the app (a process's last act, standalone mode) freezes the objects alive at
    its end, so the interpreter's last garbage collection skips them; exit code unchanged."""
    import gc

    from sarlearn.cli import app

    gc.unfreeze()
    try:
        with pytest.raises(SystemExit) as done:
            app(["tracks"])
        assert done.value.code == 0 and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


def test_random_shows_what_was_drawn_and_the_oracle_verdict() -> None:
    result = runner.invoke(app, ["tracks", "--random", "5", "-r", "random:17,width=6,frame=true"])
    assert result.exit_code == 0, result.output
    for text in ("random:5", "random:17,width=6,frame=true", "width", "6.00", "frame",
                 "min radius", "oracle", "feasible"):  # fmt: skip
        assert text in result.output


def test_random_with_out_writes_a_png_that_loads_back(tmp_path: Path) -> None:
    out = tmp_path / "r.png"
    result = runner.invoke(
        app, ["tracks", "--random", "3,width=5", "--out", str(out), "--resolution", "2"]
    )
    assert result.exit_code == 0, result.output
    original = load_track("random:3,width=5", resolution=2.0)
    with Image.open(out) as im:
        assert im.size == (original.shape[1], original.shape[0])
    back = load_track(out, arena=original.arena, normalise=False)
    assert np.abs(back.image - original.image).max() < 0.01


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--random", "3,widht=5"], "unknown parameter 'widht'"),
        (["--random", "x"], "the seed must be an integer"),
        (["--random", "3", "--write", "oval", "--out", "x.png"], "not both"),
        (["--random", "3", "-r", "4", "--out", "x.png"], "give --random once"),
    ],
)
def test_random_errors_are_clear(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["tracks", *args])
    assert result.exit_code == 2
    assert message in result.output
