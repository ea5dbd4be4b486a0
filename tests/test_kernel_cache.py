"""The kernels' disk cache follows the stage modules they inline (sarlearn.engine.cache)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sarlearn.engine import cache


def _fake_package(tmp_path: Path) -> tuple[Path, Path]:
    package = tmp_path / "sarlearn"
    engine = package / "engine"
    (package / "world").mkdir(parents=True)
    engine.mkdir()
    for name in ("kernels.py", "world_step.py", "stage_learn.py", "codes.py", "fast_loop.py"):
        (engine / name).write_text(f"# {name}\n")
    for name in cache.SHARED_SOURCES:
        (package / name).write_text(f"# {name}\n")
    return engine, package


def _age(path: Path) -> None:
    os.utime(path, (1_000_000_000, 1_000_000_000))


def test_a_stage_edit_touches_the_kernel_files(tmp_path: Path) -> None:
    engine, package = _fake_package(tmp_path)
    assert cache.refresh(engine, package)  # first check: no stamp yet
    for name in cache.KERNEL_FILES:
        _age(engine / name)
    assert not cache.refresh(engine, package)  # nothing changed
    assert (engine / "kernels.py").stat().st_mtime == 1_000_000_000

    (engine / "stage_learn.py").write_text("# an edited equation\n")
    assert cache.refresh(engine, package)
    for name in cache.KERNEL_FILES:
        assert (engine / name).stat().st_mtime > 1_000_000_000
    assert not cache.refresh(engine, package)


def test_shared_formulas_count_and_non_inlined_modules_do_not(tmp_path: Path) -> None:
    engine, package = _fake_package(tmp_path)
    cache.refresh(engine, package)
    (engine / "fast_loop.py").write_text("# Python side only\n")
    assert not cache.refresh(engine, package)
    (package / "motor.py").write_text("# the command formula changed\n")
    assert cache.refresh(engine, package)


def test_a_read_only_install_is_left_alone(tmp_path: Path) -> None:
    engine, package = _fake_package(tmp_path)
    os.chmod(engine, 0o555)
    try:
        if os.access(engine, os.W_OK):  # root ignores the mode
            return
        assert not cache.refresh(engine, package)
    finally:
        os.chmod(engine, 0o755)
        shutil.rmtree(engine / "__pycache__", ignore_errors=True)


def test_the_real_engine_lists_its_stages() -> None:
    names = {p.name for p in cache.inlined_sources()}
    assert {"stage_learn.py", "stage_forward.py", "codes.py", "motor.py", "robot.py"} <= names
    assert not names & set(cache.KERNEL_FILES)
