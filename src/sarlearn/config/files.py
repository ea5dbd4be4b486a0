"""Reading TOML files and ``--set KEY=VALUE`` assignments into plain dicts."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from sarlearn.errors import ConfigError


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file raises ConfigError naming ``what``."""
    path = Path(path)
    problem = file_problem(path)
    if problem:
        raise ConfigError(f"{what} {problem}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8 TOML"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file ("not found: x", "x is a folder, not a file",
    ...), or None. A fifo or device is refused without opening it (reading one would block)."""
    import stat

    if not str(path).strip():
        return "is an empty path"
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"not found: {path}"
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    if stat.S_ISDIR(mode):
        return f"{path} is a folder, not a file"
    if not stat.S_ISREG(mode):
        return f"{path} is not a regular file (a fifo, socket or device)"
    return None


def parse_assignment(text: str, flag: str = "--set") -> tuple[str, Any]:
    """``"rule.relevance.gain=2"`` -> ``("rule.relevance.gain", 2)``; the value is read as TOML
    (numbers, booleans, ``[10, 2]``, ``{logspace = [-6, -3, 4]}``), else taken as a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{flag} {text!r}: expected KEY=VALUE, e.g. rule.lr=1e-5")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()  # bare words such as curvy or sar
    return key, value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``key='a.b'``; unknown paths raise ConfigError."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
            raise ConfigError(f"unknown config field {key!r}")
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise ConfigError(f"unknown config field {key!r}")
    node[parts[-1]] = value


__all__ = ["file_problem", "parse_assignment", "read_toml", "set_dotted"]
