"""The kernels' disk cache follows the stage modules they inline (sarlearn.engine.cache)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sarlearn.engine import cache

_FILES = (
    "engine/kernels.py",
    "engine/fast_loop.py",
    "stages/world/compiled_world.py",
    "stages/world/compiled_sensors.py",
    "stages/rules/compiled.py",
    "stages/rules/sar.py",
)


def _fake_package(tmp_path: Path) -> Path:
    package = tmp_path / "sarlearn"
    for name in (*_FILES, *cache.SHARED_SOURCES):
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(f"# {name}\n")
    return package


def _age(path: Path) -> None:
    os.utime(path, (1_000_000_000, 1_000_000_000))


def test_a_stage_edit_touches_the_kernel_files(tmp_path: Path) -> None:
    package = _fake_package(tmp_path)
    assert cache.refresh(package)  # first check: no stamp yet
    for name in cache.KERNEL_FILES:
        _age(package / name)
    assert not cache.refresh(package)  # nothing changed
    assert (package / "engine/kernels.py").stat().st_mtime == 1_000_000_000

    (package / "stages/rules/compiled.py").write_text("# an edited equation\n")
    assert cache.refresh(package)
    for name in cache.KERNEL_FILES:
        assert (package / name).stat().st_mtime > 1_000_000_000
    assert not cache.refresh(package)


def test_a_change_drops_the_numba_caches_an_old_layout_wrote(tmp_path: Path) -> None:
    package = _fake_package(tmp_path)
    cache.refresh(package)
    stale = [
        package / "engine/__pycache__/kernels.run_chunk-40.py311.nbi",
        package / "stages/rules/__pycache__/compiled.learn-12.py311.1.nbc",
    ]
    kept = package / "stages/rules/__pycache__/sar.cpython-311.pyc"
    for path in (*stale, kept):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"index pickled with types that have moved")
    assert not cache.refresh(package)  # nothing changed: the caches stay
    assert all(path.exists() for path in stale)
    (package / "stages/rules/compiled.py").write_text("# an edited equation\n")
    assert cache.refresh(package)
    assert not any(path.exists() for path in stale)
    assert kept.exists()


def test_shared_formulas_count_and_non_inlined_modules_do_not(tmp_path: Path) -> None:
    package = _fake_package(tmp_path)
    cache.refresh(package)
    (package / "engine/fast_loop.py").write_text("# Python side only\n")
    (package / "stages/rules/sar.py").write_text("# the numpy reference only\n")
    assert not cache.refresh(package)
    (package / "stages/motor/motor.py").write_text("# the command formula changed\n")
    assert cache.refresh(package)


def test_a_read_only_install_is_left_alone(tmp_path: Path) -> None:
    package = _fake_package(tmp_path)
    engine = package / "engine"
    os.chmod(engine, 0o555)
    try:
        if os.access(engine, os.W_OK):  # root ignores the mode
            return
        assert not cache.refresh(package)
    finally:
        os.chmod(engine, 0o755)
        shutil.rmtree(engine / "__pycache__", ignore_errors=True)


def test_the_real_engine_lists_its_stages() -> None:
    names = {p.relative_to(cache.PACKAGE).as_posix() for p in cache.inlined_sources()}
    expected = {
        "stages/rules/compiled.py",
        "stages/network/compiled.py",
        "stages/filters/compiled.py",
        "stages/perception/compiled.py",
        "stages/world/compiled_sensors.py",
        "stages/world/compiled_robot.py",
        "stages/motor/compiled.py",
        "stages/codes.py",
        "stages/motor/motor.py",
        "stages/world/robot.py",
    }
    assert expected <= names
    assert not names & set(cache.KERNEL_FILES)
