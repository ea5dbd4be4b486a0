"""Keep numba's on-disk cache of the kernels in step with the code they inline.

numba keys a cached function on its own source file only (its modification time and size).
The kernels (:mod:`sarlearn.engine.kernels`, :mod:`sarlearn.stages.world.compiled_world`)
inline every stage's compiled twin (``stages/*/compiled*.py``) and the shared formulas, so an
edit of ``stages/rules/compiled.py`` alone would leave the old compiled kernel in use.
:func:`refresh` (run when :mod:`sarlearn.engine` is imported) hashes those sources and, when
the hash differs from the one recorded with the cache, touches the kernel files, which makes
numba recompile them. A read-only install cannot be touched, and need not be: its files only
change by reinstalling, which rewrites the kernel files too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent

#: Files holding cached kernels that inline other modules (relative to the package).
KERNEL_FILES: tuple[str, ...] = ("engine/kernels.py", "stages/world/compiled_world.py")

#: Reference modules whose functions or constants the kernels compile in (relative to the
#: package), beside the compiled twins and the engine's codes.
SHARED_SOURCES: tuple[str, ...] = (
    "stages/codes.py",
    "stages/motor/motor.py",
    "stages/world/robot.py",
    "stages/world/sensors.py",
    "metrics.py",
)

STAMP = "kernel-sources.sha256"


def inlined_sources(package: Path = PACKAGE) -> list[Path]:
    """The source files the kernels inline: every stage's compiled twin and the shared
    formulas, in a fixed order."""
    kernels = {package / name for name in KERNEL_FILES}
    twins = [p for p in sorted(package.glob("stages/*/compiled*.py")) if p not in kernels]
    return twins + [package / name for name in SHARED_SOURCES if (package / name).exists()]


def sources_digest(paths: list[Path], package: Path = PACKAGE) -> str:
    """SHA-256 over the files' package-relative names and contents, in the given order."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.relative_to(package).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def refresh(package: Path = PACKAGE) -> bool:
    """Touch the kernel files and drop the compiled stages' numba caches if the inlined sources
    changed since the last check.

    Returns whether the kernel files were touched (and the new digest recorded).
    """
    digest = sources_digest(inlined_sources(package), package)
    stamp = package / "engine" / "__pycache__" / STAMP
    with contextlib.suppress(OSError):
        if stamp.read_text() == digest:
            return False
    try:
        for name in KERNEL_FILES:
            if (package / name).exists():
                os.utime(package / name)
        # numba unpickles a cache index (with the types of its signatures, by module path)
        # before it checks the index's stamp: an index written before a type moved cannot even
        # be read, so the compiled stages' caches go too.
        for path in [*inlined_sources(package), *(package / name for name in KERNEL_FILES)]:
            for entry in (path.parent / "__pycache__").glob(f"{path.stem}.*.nb[ic]"):
                entry.unlink(missing_ok=True)
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:  # a read-only install: its sources do not change in place
        return False
    return True


__all__ = ["KERNEL_FILES", "SHARED_SOURCES", "inlined_sources", "refresh", "sources_digest"]
