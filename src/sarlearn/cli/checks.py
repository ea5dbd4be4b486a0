"""Checks of command-line values shared by the commands, made before any work starts.

Each raises :class:`~sarlearn.errors.ConfigError` with a message that names the option, so the
command prints one ``error: ...`` line and exits 2 instead of failing after the work (or with a
traceback): an output path that is empty, too long, a file where a folder is needed, or on a
read-only or unwritable file system; a count that must be positive.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from sarlearn.errors import ConfigError

#: Used where the file system does not say (``pathconf``): Linux's limits.
NAME_MAX, PATH_MAX = 255, 4096


def check_output_path(
    path: Path | str, option: str = "--out", folder: bool = True, what: str = "the output"
) -> Path:
    """``path`` as a Path, if a folder (``folder=True``) or a file can be written there.

    Refused: an empty path, a name longer than the file system allows (or a path longer than
    PATH_MAX), a file where a folder is needed (or a folder where a file is), and a nearest
    existing folder that is read-only or not writable. Nothing is created.
    """
    text = str(path)
    if not text.strip():
        raise ConfigError(f"{option} is empty; give the path to write to")
    if "\x00" in text:
        raise ConfigError(f"{option} contains a NUL character")
    p = Path(text)
    existing = _existing_parent(p)
    name_max = _pathconf(existing, "PC_NAME_MAX", NAME_MAX)
    for part in p.parts:
        if len(os.fsencode(part)) > name_max:
            raise ConfigError(
                f"{option}: the name {part[:40]}... is {len(os.fsencode(part)):,} bytes long; "
                f"the file system allows {name_max}"
            )
    if len(os.fsencode(str(p.absolute()))) >= _pathconf(existing, "PC_PATH_MAX", PATH_MAX):
        raise ConfigError(f"{option}: the path is longer than the file system allows")
    if _exists(p):
        if folder and not p.is_dir():
            raise ConfigError(f"{option} {p} is an existing file; give a folder")
        if not folder and p.is_dir():
            raise ConfigError(f"{option} {p} is a folder; give a file name")
    where = p if _exists(p) and p.is_dir() else existing
    if not where.is_dir():
        raise ConfigError(
            f"cannot write {what} {p} ({option}): {where} is a file, so nothing can be made "
            "inside it"
        )
    if _read_only(where):
        raise ConfigError(
            f"cannot write {what} {p} ({option}): {where} is on a Read-only file system"
        )
    if not os.access(where, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {what} {p} ({option}): {where}: Permission denied")
    return p


def check_positive(value: float | None, option: str, allow_none: bool = True) -> None:
    """Refuse a count or size that is not a positive finite number (``--threads 0``)."""
    if value is None and allow_none:
        return
    if value is None or not math.isfinite(value) or value < 1:
        raise ConfigError(f"{option} must be at least 1, got {value}")


def _exists(path: Path) -> bool:
    """``path.exists()``, False where the name itself is impossible (too long, ...)."""
    try:
        return path.exists()
    except OSError:
        return False


def _existing_parent(path: Path) -> Path:
    p = path.absolute()
    while not _exists(p) and p.parent != p:
        p = p.parent
    return p


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        return int(os.pathconf(path if path.is_dir() else path.parent, name))
    except (OSError, ValueError):
        return default


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


__all__ = ["check_output_path", "check_positive"]
