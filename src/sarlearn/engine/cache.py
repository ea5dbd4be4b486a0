"""Keep numba's on-disk cache of the kernels in step with the code they inline.

numba keys a cached function on its own source file only (its modification time and size).
The kernels (:mod:`sarlearn.engine.kernels`, :mod:`sarlearn.engine.world_step`) inline the
stage modules and the shared formulas, so an edit of ``stage_learn.py`` alone would leave the
old compiled kernel in use. :func:`refresh` (run when :mod:`sarlearn.engine` is imported)
hashes those sources and, when the hash differs from the one recorded with the cache, touches
the kernel files, which makes numba recompile them. A read-only install cannot be touched, and
need not be: its files only change by reinstalling, which rewrites the kernel files too.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

ENGINE = Path(__file__).resolve().parent
PACKAGE = ENGINE.parent

#: Files holding cached kernels that inline other modules.
KERNEL_FILES: tuple[str, ...] = ("kernels.py", "world_step.py")

#: Modules outside the engine whose functions or constants the kernels compile in.
SHARED_SOURCES: tuple[str, ...] = ("motor.py", "world/robot.py", "metrics.py")

STAMP = "kernel-sources.sha256"


def inlined_sources(engine: Path = ENGINE, package: Path = PACKAGE) -> list[Path]:
    """The source files the kernels inline: the stages, the codes and the shared formulas."""
    own = [*sorted(engine.glob("stage_*.py")), engine / "codes.py"]
    return own + [package / name for name in SHARED_SOURCES if (package / name).exists()]


def sources_digest(paths: list[Path]) -> str:
    """SHA-256 over the files' names and contents, in the given order."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def refresh(engine: Path = ENGINE, package: Path = PACKAGE) -> bool:
    """Touch the kernel files if the inlined sources changed since the last check.

    Returns whether the kernel files were touched (and the new digest recorded).
    """
    digest = sources_digest(inlined_sources(engine, package))
    stamp = engine / "__pycache__" / STAMP
    with contextlib.suppress(OSError):
        if stamp.read_text() == digest:
            return False
    try:
        for name in KERNEL_FILES:
            if (engine / name).exists():
                os.utime(engine / name)
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(digest)
        os.replace(tmp, stamp)
    except OSError:  # a read-only install: its sources do not change in place
        return False
    return True


__all__ = ["KERNEL_FILES", "SHARED_SOURCES", "inlined_sources", "refresh", "sources_digest"]
