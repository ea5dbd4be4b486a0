#!/usr/bin/env python3
"""Bootstrap and run sarlearn with nothing installed but Python.

    python3 dev.py follow [sarlearn follow options]   # main job on built-in defaults
    python3 dev.py test   [pytest options]            # lint + the whole test suite
    python3 dev.py sarlearn ARGS...                   # any sarlearn command inside .venv
    python3 dev.py lock                               # refresh the pinned versions (on purpose)

The first call creates ``.venv`` next to this file and installs the package into it (editable)
with the versions pinned in ``constraints.txt``. ``follow`` installs the core only; ``test``
adds the test tools and every optional extra the tests exercise. Later calls reuse ``.venv`` and
reinstall only when ``pyproject.toml`` or ``constraints.txt`` changed. pip's output goes to
``.venv/install.log``; the console gets one line per phase.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".sarlearn-installed"
LOG = VENV / "install.log"
CONSTRAINTS = ROOT / "constraints.txt"

#: What each task installs (pyproject extras). ``test`` runs every optional part's tests too.
EXTRAS = {"follow": "", "sarlearn": "", "test": "dev"}
LINT_PATHS = ["src", "tests", "benchmarks", "examples"]
#: Versions the lock keeps whatever is newer: torch 2.13.0 is the CPU wheel these machines carry
#: (newer releases resolve to CUDA builds of several GB).
LOCK_HOLDS = ["torch==2.13.0"]


def _say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def _run(cmd: list[str]) -> int:
    return subprocess.call(cmd, cwd=ROOT)


def _pip(args: list[str], log: Path, python: Path = PY) -> None:
    """Run pip quietly into ``log``; on failure show the log's tail and where it is."""
    with log.open("a") as out:
        out.write(f"\n$ pip {' '.join(args)}\n")
        out.flush()
        rc = subprocess.call(
            [str(python), "-m", "pip", *args, "--disable-pip-version-check"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if rc != 0:
        tail = log.read_text(errors="replace").splitlines()[-25:]
        print("\n".join(tail), file=sys.stderr)
        sys.exit(f"[dev] pip failed (exit {rc}); the full log is {log}")


def _fingerprint(extras: str) -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    if CONSTRAINTS.exists():
        digest.update(CONSTRAINTS.read_bytes())
    return f"{digest.hexdigest()} extras={extras}"


def ensure_env(extras: str) -> None:
    """Create ``.venv`` and install the package (+ ``extras``) from the pinned versions."""
    want = _fingerprint(extras)
    have = STAMP.read_text() if STAMP.exists() else ""
    # An env installed for the tests also serves follow (a superset of extras).
    if PY.exists() and (have == want or (not extras and have.startswith(want.split()[0]))):
        return
    if not PY.exists():
        _say(f"creating a virtual environment in {VENV}")
        venv.create(VENV, with_pip=True)
    LOG.write_text("")
    what = f"sarlearn[{extras}]" if extras else "sarlearn"
    _say(f"installing {what} with pinned versions (first run only; log: {LOG})")
    pins = ["-c", str(CONSTRAINTS)] if CONSTRAINTS.exists() else []
    _pip(["install", "--upgrade", "pip", *pins], LOG)
    _pip(["install", "-e", f".[{extras}]" if extras else ".", *pins], LOG)
    STAMP.write_text(want)
    _say("installed")


def lock() -> int:
    """Resolve the newest versions of everything ``dev`` needs in a scratch env and write them
    to constraints.txt. Run it on purpose, then run the tests and commit the file."""
    with tempfile.TemporaryDirectory() as tmp:
        env = Path(tmp) / "env"
        log = Path(tmp) / "lock.log"
        _say("resolving the newest versions in a scratch environment")
        venv.create(env, with_pip=True)
        py = env / ("Scripts" if os.name == "nt" else "bin") / "python"
        _pip(["install", "--upgrade", "pip"], log, py)
        holds = Path(tmp) / "holds.txt"
        holds.write_text("\n".join(LOCK_HOLDS) + "\n")
        _pip(["install", f"{ROOT}[dev]", "-c", str(holds)], log, py)
        frozen = subprocess.run(
            [str(py), "-m", "pip", "freeze", "--all", "--exclude", "sarlearn"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    # A local label (torch's "+cpu") would pin one build that only some machines carry.
    lines = [
        ln.split("+")[0]
        for ln in frozen.splitlines()
        if ln and not ln.startswith(("-e", "setuptools"))
    ]
    header = (
        "# Pinned versions that dev.py and CI install (pip -c). Refresh on purpose with\n"
        "#   python3 dev.py lock\n"
        "# then run `python3 dev.py test` and commit this file.\n"
    )
    CONSTRAINTS.write_text(header + "\n".join(lines) + "\n")
    _say(f"wrote {len(lines)} pins to {CONSTRAINTS.name}")
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    task, rest = argv[0], argv[1:]
    if task == "lock":
        return lock()
    if task not in EXTRAS:
        print(f"unknown task {task!r}; expected follow, test, sarlearn or lock", file=sys.stderr)
        return 2
    ensure_env(EXTRAS[task])
    if task == "follow":
        return _run([str(BIN / "sarlearn"), "follow", *rest])
    if task == "sarlearn":
        return _run([str(BIN / "sarlearn"), *rest])
    rc = _run([str(PY), "-m", "ruff", "check", *LINT_PATHS])
    rc |= _run([str(PY), "-m", "ruff", "format", "--check", *LINT_PATHS])
    if rc:
        _say("ruff found problems (see above)")
    rc_tests = _run([str(PY), "-m", "pytest", *rest])
    return rc_tests or rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
