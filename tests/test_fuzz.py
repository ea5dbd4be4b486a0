"""Fuzzing the command line: generated options, config files, sweep specs and track images.

Every case must end in a finished run (exit 0) or in exit 2 with a clear error: one
``error: ...`` line, or click's own usage error for a malformed option (a usage line, a hint
and the error). Never a traceback, an exit-1 crash, a hang (each case has a time limit) or a
file written outside the output path.

The CLI is driven in-process (typer's CliRunner) in a fresh folder per case, on a tmpfs when
there is one, with tiny runs (a few dozen steps, tiny networks, no figures), so a case costs
tens of milliseconds. A slice of :data:`QUICK_CASES` runs in the normal suite; the full
:data:`FULL_CASES` is a slow test (CI). Set ``SARLEARN_FUZZ_STATS=FILE`` to write the tally
(cases, finished runs, clear errors by kind) as JSON; docs/reliability.md quotes it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sarlearn.cli import app

QUICK_CASES = 60
FULL_CASES = 1000
#: Seconds a case may take before it counts as a hang.
CASE_SECONDS = 60
#: Cases slower than this are listed (in the stats file), to keep the suite cheap.
SLOW_CASE_SECONDS = 3.0
SLOW: list[tuple[float, list[str]]] = []

RULES = ["sar", "gdm", "fa", "dfa", "sign-only", "sar-local", "reflex"]
TRACKS = ["circle", "oval", "curvy", "random", "figure8"]


# ---------------------------------------------------------------------- inputs on disk


@dataclass
class Case:
    """One generated command line and the files it reads (written into its folder first)."""

    args: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    dirs: list[str] = field(default_factory=list)
    kind: str = "follow"


def image_bytes(draw: st.DrawFn) -> bytes:
    """A track image: random size, mode, bit depth and format; a line, noise or garbage."""
    from PIL import Image

    shape = draw(st.sampled_from(["garbage", "truncated", "image", "image", "image", "empty"]))
    if shape == "garbage":
        return draw(st.binary(min_size=0, max_size=300))
    if shape == "empty":
        return b""
    w = draw(st.one_of(st.integers(1, 64), st.integers(64, 400), st.just(2600)))
    h = draw(st.one_of(st.integers(1, 64), st.integers(64, 400), st.just(30)))
    mode = draw(st.sampled_from(["1", "L", "P", "RGB", "RGBA", "LA", "I;16", "I", "F", "CMYK"]))
    content = draw(st.sampled_from(["line", "line", "noise", "black", "white"]))
    grey = np.full((h, w), 255.0)
    if content == "line":
        grey[h // 3 : h // 3 + max(1, h // 20), :] = 0.0
        grey[:, w // 3 : w // 3 + max(1, w // 20)] = 0.0
    elif content == "noise":
        grey = np.random.default_rng(w * 7 + h).uniform(0, 255, (h, w))
    elif content == "black":
        grey[:] = 0.0
    img = Image.fromarray(grey.astype(np.uint8), "L")
    if mode in ("I;16", "I"):
        img = Image.fromarray((grey * 257).astype(np.uint16 if mode == "I;16" else np.int32))
    elif mode == "F":
        img = Image.fromarray((grey / 255).astype(np.float32), "F")
    else:
        img = img.convert(mode)
    fmt = draw(st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"]))
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        buf = io.BytesIO()
        img.save(buf, format="TIFF")  # this mode cannot be written as fmt
    data = buf.getvalue()
    if shape == "truncated":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return data


def toml_value() -> st.SearchStrategy[str]:
    """A value as TOML text: sensible, extreme, of the wrong type, or not TOML at all."""
    return st.one_of(
        st.sampled_from(
            ["0", "1", "-1", "2", "3", "10", "0.5", "1e-9", "1e9", "1e308", "-0.0", "nan", "inf"]
        ),
        st.sampled_from(['"curvy"', '"sar"', '"bogus"', "true", "[2]", "[3, 2]", "[]", "{}"]),
        st.sampled_from(["[1, [2]]", '"', "=", "[[", "\u00e9", "1 2", "'x'"]),
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=False).map(lambda f: repr(f)),
    )


#: Config keys the fuzz sets (bounded so that no case allocates more than a few MB: the sizes
#: are drawn from small values, the limits of what is refused are tested in test_hardening).
KEYS = [
    "seed",
    "steps",
    "warmup",
    "success_window",
    "success_threshold",
    "checkpoint_every",
    "dtype",
    "engine",
    "stop_at_success",
    "rule.name",
    "rule.lr",
    "rule.relevance.gain",
    "rule.relevance.lowpass",
    "rule.relevance.mode",
    "rule.relevance.normalise",
    "network.layers",
    "network.activation",
    "network.init",
    "network.init_gain",
    "network.bias",
    "network.zero_output",
    "filters.kind",
    "filters.n_filters",
    "filters.f_min",
    "filters.f_max",
    "filters.q",
    "world.track",
    "world.arena",
    "world.line_width",
    "world.speed",
    "world.dt",
    "world.error_gain",
    "world.net_gain",
    "world.axle",
    "world.predictor_spacing",
    "world.off_track_after",
    "world.random_start",
    "world.start",
    "world.inputs",
    "world.camera.width",
    "world.camera.grid_cols",
    "world.camera.tilt_deg",
    "no.such.key",
    "world",
]
#: Keys whose large values cost memory or time: only small values are drawn for them.
SMALL_ONLY = {
    "steps": ["0", "1", "5", "30", "-1", "1e3", '"x"'],
    "network.layers": ["[2]", "[3, 2]", "[1]", "[0]", "[]", "[2, 3]", '"2"', "[-1]"],
    "filters.n_filters": ["0", "1", "2", "5", "-1", "2.5"],
    "world.camera.width": ["0", "1", "2", "8", "32"],
    "world.camera.grid_cols": ["0", "1", "2", "3", "4"],
    "warmup": ["0", "1", "10", "-5"],
    "success_window": ["0", "1", "10"],
    "world.off_track_after": ["0", "1", "10", "200"],
}


#: Values that make a valid run, so that many cases get past validation and run.
VALID = {
    "seed": ["0", "7", str(2**70)],
    "warmup": ["0", "10"],
    "checkpoint_every": ["1", "7", "1000"],
    "dtype": ['"float32"', '"float64"'],
    "engine": ['"numpy"', '"auto"'],
    "stop_at_success": ["true"],
    "rule.lr": ["1e-4", "1e-2", "1e9"],
    "rule.relevance.gain": ["0", "2"],
    "rule.relevance.lowpass": ["0.5"],
    "rule.relevance.mode": ['"forward"'],
    "rule.relevance.normalise": ["true"],
    "network.activation": ['"tanh"', '"linear"'],
    "network.init": ['"uniform"', '"symmetric"'],
    "network.bias": ["true"],
    "network.zero_output": ["false"],
    "filters.kind": ['"ico"', '"delay"'],
    "filters.n_filters": ["1", "3"],
    "world.arena": ["100", "250", "30"],
    "world.line_width": ["1", "3", "12"],
    "world.speed": ["0", "60"],
    "world.dt": ["0.01", "0.2"],
    "world.error_gain": ["0", "-50", "1e6"],
    "world.net_gain": ["0", "50"],
    "world.random_start": ["false"],
    "world.start": ["[20.0, 20.0, 1.0]", "[1e9, 0.0, 0.0]"],
    "world.inputs": ['"camera"'],
    "world.camera.width": ["8"],
    "world.off_track_after": ["1", "10"],
}


@st.composite
def assignment(draw: st.DrawFn, valid: bool = False) -> str:
    if valid:
        key = draw(st.sampled_from(sorted(VALID)))
        return f"{key}={draw(st.sampled_from(VALID[key]))}"
    key = draw(st.sampled_from(KEYS))
    pool = SMALL_ONLY.get(key)
    value = draw(st.sampled_from(pool)) if pool else draw(toml_value())
    return draw(st.sampled_from([f"{key}={value}", f"{key}={value}", key, f"={value}", ""]))


@st.composite
def config_file(draw: st.DrawFn) -> bytes:
    """A --config file: TOML of random assignments, or bytes in the wrong encoding, or junk."""
    kind = draw(st.sampled_from(["toml", "toml", "toml", "latin1", "utf16", "bytes", "empty"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "empty":
        return b""
    lines = []
    for item in draw(st.lists(assignment(), max_size=5)):
        key, _, value = item.partition("=")
        section, _, leaf = key.rpartition(".")
        lines.append((f"[{section}]\n" if section else "") + f"{leaf or 'x'} = {value or '1'}")
    text = "\n".join(lines) + ("\n# café" if kind != "toml" else "")
    return text.encode({"toml": "utf-8", "latin1": "latin-1", "utf16": "utf-16"}[kind])


def maybe(draw: st.DrawFn, flag: str, values: st.SearchStrategy[str]) -> list[str]:
    return [flag, draw(values)] if draw(st.booleans()) else []


def pick(draw: st.DrawFn, clean: bool, good: list[str], bad: list[str]) -> str:
    """A good value, or (unless the case is clean) a good or a bad one."""
    return draw(st.sampled_from(good if clean else good + bad))


@st.composite
def follow_case(draw: st.DrawFn) -> Case:
    case = Case(["follow", "--no-progress"], kind="follow")
    a = case.args
    # Half the cases have well-formed options (the values they set may still be impossible),
    # so that they get past parsing; runs are small, so they finish in tens of milliseconds.
    clean = draw(st.booleans())
    a += ["--steps", pick(draw, clean, ["20", "30", "40", "1"], ["0", "-3", "abc", "1e3"])]
    a += ["--layers", pick(draw, clean, ["2", "3,2", "2,2,2", "4,3"], ["1,0", "a", "", "0"])]
    a += maybe(draw, "--rule", st.sampled_from([*RULES, *([] if clean else ["bogus", "", "SAR"])]))
    track = draw(st.sampled_from([*TRACKS, "in/track.png", "nope", "in/missing.png", "in"]))
    if track == "in/track.png":
        case.files["in/track.png"] = image_bytes(draw)
    a += ["--track", track]
    seeds = ["0", "1", str(2**70)] + ([] if clean else ["-1", "x", "1.5"])
    a += maybe(draw, "--seed", st.sampled_from(seeds))
    rates = ["1e-4", "1e-2", "1e9"] + ([] if clean else ["0", "-1", "nan", "inf", "x"])
    a += maybe(draw, "--lr", st.sampled_from(rates))
    a += maybe(draw, "--inputs", st.sampled_from(["rows", "camera", *([] if clean else ["x"])]))
    for item in draw(st.lists(assignment(valid=clean), max_size=3)):
        a += ["--set", item]
    if draw(st.integers(0, 4)) == 0:
        case.files["in/config.toml"] = draw(config_file())
        a += ["--config", "in/config.toml"]
    elif draw(st.integers(0, 9)) == 0:
        a += ["--config", draw(st.sampled_from(["in/none.toml", "in", ""]))]
    outs = ["out", "out/a/b"] + ([] if clean else ["", "in/file", "in"])
    out = draw(st.sampled_from(outs))
    if out == "in/file":
        case.files["in/file"] = b"x"
    if out == "in":
        case.dirs.append("in")
    a += ["--out", out]
    a += draw(st.sampled_from([[], [], [], ["--stop-at-success"], ["--record-sensors"]]))
    return case


@st.composite
def tracks_case(draw: st.DrawFn) -> Case:
    case = Case(["tracks"], kind="tracks")
    if draw(st.integers(0, 5)) == 0:
        return case  # the list
    write = draw(st.sampled_from([*TRACKS, "nope", "in/track.png", ""]))
    if write == "in/track.png":
        case.files["in/track.png"] = image_bytes(draw)
    case.args += ["--write", write]
    case.args += ["--out", draw(st.sampled_from(["out.png", "out.jpg", "out", "", "o/t.png"]))]
    case.args += maybe(draw, "--seed", st.sampled_from(["0", "3", "-1", "x"]))
    case.args += maybe(draw, "--arena", st.sampled_from(["250", "10", "0", "-1", "1e9", "nan"]))
    case.args += maybe(
        draw, "--resolution", st.sampled_from(["1", "0.5", "0", "1000", "-2", "1e-9", "inf"])
    )
    case.args += maybe(draw, "--line-width", st.sampled_from(["3", "0", "20", "-1", "1e9"]))
    if draw(st.booleans()):
        case.args.append("--show-start")
    return case


@st.composite
def sweep_case(draw: st.DrawFn) -> Case:
    case = Case(["sweep", "--out", "out", "--jobs", "1", "--no-progress"], kind="sweep")
    a = case.args
    a += ["--steps", draw(st.sampled_from(["20", "30", "0", "x"]))]
    for rule in draw(st.lists(st.sampled_from([*RULES, "bogus"]), max_size=2)):
        a += ["--rule", rule]
    for lr in draw(st.lists(st.sampled_from(["1e-4", "1e-3", "0", "-1", "x"]), max_size=2)):
        a += ["--lr", lr]
    a += maybe(draw, "--lr-range", st.sampled_from(["1e-5:1e-3:2", "1:0:2", "a:b:c", "1e-5:1e-3"]))
    a += ["--layers", draw(st.sampled_from(["2", "3,2", "0", "x"]))]
    a += maybe(draw, "--seeds", st.sampled_from(["1", "2", "0", "-1"]))
    a += maybe(draw, "--track", st.sampled_from(["circle", "oval", "nope", "in/missing.png"]))
    for item in draw(st.lists(assignment(), max_size=2)):
        a += ["--set", item]
    a += maybe(
        draw, "--grid", st.sampled_from(["world.speed=[30, 40]", "world.speed=30", "x=[1]", "="])
    )
    a += maybe(draw, "--trace-every", st.sampled_from(["0", "10", "-1"]))
    if draw(st.integers(0, 3)) == 0:
        spec = draw(
            st.sampled_from(
                [
                    b'[base]\nsteps = 20\n"network.layers" = [2]\n[grid]\n"rule.name" = ["gdm"]\n',
                    b"[grid]\nseed = [0, 1]\n",
                    b"[grid]\nseed = 3\n",
                    b"[nope]\n",
                    b"\xff\xfe[grid]",
                    b"",
                ]
            )
        )
        case.files["in/spec.toml"] = spec if draw(st.booleans()) else draw(st.binary(max_size=80))
        a.insert(1, "in/spec.toml")
    if draw(st.booleans()):
        a.append("--dry-run")
    return case


CASES = st.one_of(follow_case(), follow_case(), tracks_case(), sweep_case())


# ---------------------------------------------------------------------- running one case


class CaseTimeout(BaseException):
    """A case ran longer than CASE_SECONDS (a BaseException: the CLI must not catch it)."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: Any) -> None:
        raise CaseTimeout(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def scratch_root() -> str | None:
    """A tmpfs for the cases' folders when there is one (fsync is free there)."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def out_of(case: Case) -> str | None:
    """The output path the case names (None: the default runs/ folder)."""
    if "--out" not in case.args:
        return None
    return case.args[case.args.index("--out") + 1]


USAGE_MARKERS = ("Usage:", "Try '")


class _Runner(CliRunner):
    """typer's CliRunner, building the click command once rather than once per case (that
    reads every option's annotations again: ~0.2 s)."""

    def invoke(self, app: Any, args: Any = None, **kw: Any) -> Any:
        import typer.testing

        cached = getattr(self, "_command", None)
        if cached is None:
            cached = self._command = typer.testing._get_command(app)
        original = typer.testing._get_command
        typer.testing._get_command = lambda _app: cached
        try:
            return super().invoke(app, args, **kw)
        finally:
            typer.testing._get_command = original


RUNNER = _Runner()


def judge(case: Case, res: Any, new_files: set[str], tally: Counter[str]) -> None:
    """Assert the outcome of a case is a finished run or a clear error; count it."""
    text = res.output
    where = f"sarlearn {' '.join(case.args)!r}"
    assert "Traceback" not in text, f"{where} printed a traceback:\n{text}"
    exc = res.exception
    assert exc is None or isinstance(exc, SystemExit), f"{where} raised {exc!r}:\n{text}"
    assert res.exit_code in (0, 2), f"{where} exited {res.exit_code}:\n{text}"
    if res.exit_code == 2:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if lines and lines[0].startswith(USAGE_MARKERS):
            tally["usage error"] += 1  # click's own: a malformed option
        else:
            errors = [ln for ln in lines if ln.startswith("error:")]
            assert len(errors) == 1, f"{where} did not end in one error line:\n{text}"
            assert len(lines) - sum(ln.startswith("warning:") for ln in lines) == 1, (
                f"{where} printed more than one line of error:\n{text}"
            )
            tally["clear error"] += 1
    else:
        tally["finished"] += 1
    # Nothing outside the output path (or the default runs/ folder, without --out).
    out = out_of(case)
    allowed = out.strip().rstrip("/") if out and out.strip() else "runs"
    stray = {
        p
        for p in new_files
        if p != allowed and not p.startswith(allowed + "/") and not allowed.startswith(p + "/")
    }
    if case.kind == "tracks" and res.exit_code == 2:
        assert not new_files, f"{where} failed but wrote {sorted(new_files)}"
    assert not stray, f"{where} wrote outside {allowed!r}: {sorted(stray)}"


@contextmanager
def no_figures() -> Iterator[None]:
    """Runs skip their figures (the fuzz is about options and inputs, not drawing)."""
    from sarlearn.runs import run

    original = run.run_follow

    def without_figures(*args: Any, **kw: Any) -> Any:
        kw["figures"] = False
        return original(*args, **kw)

    run.run_follow = without_figures  # type: ignore[assignment]
    try:
        yield
    finally:
        run.run_follow = original  # type: ignore[assignment]


def run_case(case: Case, tally: Counter[str], root: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-", dir=root))
    cwd = os.getcwd()
    try:
        for name, data in case.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        for name in case.dirs:
            (folder / name).mkdir(parents=True, exist_ok=True)
        before = snapshot(folder)
        started = time.monotonic()
        os.chdir(folder)
        try:
            with time_limit(CASE_SECONDS):
                res = RUNNER.invoke(app, case.args)
        finally:
            os.chdir(cwd)
        assert not isinstance(res.exception, CaseTimeout), f"hang: sarlearn {case.args}"
        if time.monotonic() - started > SLOW_CASE_SECONDS:
            tally["slow cases"] += 1
            SLOW.append((round(time.monotonic() - started, 1), case.args))
        judge(case, res, snapshot(folder) - before, tally)
        tally[f"{case.kind} cases"] += 1
        tally["cases"] += 1
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fuzz(n_cases: int) -> Callable[[], None]:
    tally: Counter[str] = Counter()
    root = scratch_root()

    @settings(
        max_examples=n_cases,
        deadline=None,
        derandomize=True,  # the same cases on every run: CI failures reproduce
        database=None,
        # No shrinking: a failing case is named in full by its assertion, and shrinking slow
        # cases can take many minutes.
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=CASES)
    def check(case: Case) -> None:
        run_case(case, tally, root)

    def run_all() -> None:
        from sarlearn.runs import run

        saved = run.MIN_CHECKPOINT_SECONDS
        with no_figures():
            try:
                check()
            finally:
                run.MIN_CHECKPOINT_SECONDS = saved
        stats = os.environ.get("SARLEARN_FUZZ_STATS")
        if stats:
            report = {**tally, "slowest": sorted(SLOW, reverse=True)[:10]}
            Path(stats).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        assert tally["cases"] >= n_cases * 0.9, tally  # hypothesis ran (almost) all of them
        assert tally["finished"] > 0 and tally["clear error"] > 0, tally

    return run_all


def test_fuzz_quick_slice() -> None:
    fuzz(QUICK_CASES)()


@pytest.mark.slow
def test_fuzz_full() -> None:
    fuzz(FULL_CASES)()
