#!/usr/bin/env python3
"""Bootstrap and run sarlearn with nothing installed but Python.

    python3 dev.py follow [sarlearn follow options]   # main job on built-in defaults
    python3 dev.py test   [pytest options]            # lint + the whole test suite
    python3 dev.py sarlearn ARGS...                   # any sarlearn command inside .venv

The first call creates ``.venv`` next to this file and installs the package into it
(editable, with the test extras); later calls reuse it and reinstall only when
``pyproject.toml`` changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".sarlearn-installed"


def _run(cmd: list[str]) -> int:
    return subprocess.call(cmd, cwd=ROOT)


def ensure_env() -> None:
    """Create the virtual environment and install the package if needed."""
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want and PY.exists():
        return
    if not PY.exists():
        print(f"[dev] creating virtual environment in {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    print("[dev] installing sarlearn and its dependencies (first run only)", flush=True)
    quiet = ["-q"] if os.environ.get("CI") else []
    if _run([str(PY), "-m", "pip", "install", *quiet, "--upgrade", "pip"]) != 0:
        sys.exit("pip upgrade failed")
    if _run([str(PY), "-m", "pip", "install", *quiet, "-e", ".[test]"]) != 0:
        sys.exit("installing sarlearn failed")
    STAMP.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    ensure_env()
    task, rest = argv[0], argv[1:]
    if task == "follow":
        return _run([str(BIN / "sarlearn"), "follow", *rest])
    if task == "test":
        rc = _run([str(PY), "-m", "ruff", "check", "src", "tests", "benchmarks", "examples"])
        rc |= _run([str(PY), "-m", "ruff", "format", "--check", "src", "tests", "benchmarks", "examples"])
        if rc:
            print("[dev] ruff found problems (see above)", flush=True)
        rc_tests = _run([str(PY), "-m", "pytest", *rest])
        return rc_tests or rc
    if task == "sarlearn":
        return _run([str(BIN / "sarlearn"), *rest])
    print(f"unknown task {task!r}; expected follow, test or sarlearn", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
