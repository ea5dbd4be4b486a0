"""Fuzzing the command line: generated options, config files, sweep specs and track images,
for every command (follow, sweep, report, bench, classify, rl-baseline, tracks).

Every case must end in a finished command (exit 0) or in exit 2 with a clear error: one
``error: ...`` line, or click's own usage error for a malformed option (a usage line, a hint
and the error). Never a traceback, an exit-1 crash, a hang (each case has a time limit), a
file written outside the output path, or exit 0 for input that is certainly bad (a case
carries that label when one of its values is: a NaN or infinite number, a list where a number
belongs, an unknown key, ...).

``--set`` values are drawn from the whole value space: every config key with values of every
TOML type and shape (numbers tiny, huge, negative, non-finite; strings; booleans; nested and
empty lists; tables) and text that is not TOML at all.

The cases run in a child process under an address-space limit (``resource.setrlimit``), so a
case that allocates beyond it fails as a crash (MemoryError) instead of slowing the machine:
what is too large must be refused by the command's own checks first. Inside the child the CLI
is driven in-process (typer's CliRunner) in a fresh folder per case, on a tmpfs when there is
one, with tiny runs (a few dozen steps, tiny networks, no figures). :data:`QUICK_CASES` run in
the normal suite; :data:`FULL_CASES` are a slow test (CI). Set ``SARLEARN_FUZZ_STATS=FILE`` to
write the tally (cases, finished, clear errors by kind) as JSON; docs/reliability.md quotes it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sys
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

#: Cases of the quick slice (SARLEARN_FUZZ_QUICK overrides it, for a shorter local loop).
QUICK_CASES = int(os.environ.get("SARLEARN_FUZZ_QUICK", "300"))
FULL_CASES = 2000
#: Seconds a case may take before it counts as a hang.
CASE_SECONDS = 60
#: Address space of the child process that runs the cases (beyond what it starts with).
MEMORY_LIMIT = 3 * 2**30
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
    #: Why the case is certainly bad input (exit 0 is then a failure), or "".
    bad: str = ""


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


# ---------------------------------------------------------------------- the --set value space


def _kinds() -> dict[str, str]:
    """Every config key and the kind of value it takes (from the defaults and annotations)."""
    from sarlearn.config import RunConfig

    special = {
        "rule.lr": "opt_float", "rule.layer_lr_scale": "opt_list", "rule.relevance.cap":
        "opt_float", "rule.step_norm": "opt_str", "rule.slope_gate": "opt_bool",
        "rule.weight_bound": "bound", "rule.hidden_weight_bound": "bound",
        "rule.hidden_bound_scaling": "opt_str", "network.init_gain": "opt_float",
        "network.init_align": "opt_float", "world.start": "opt_list", "settle_window":
        "opt_int", "load": "opt_str",
    }  # fmt: skip

    def walk(d: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
        for k, v in d.items():
            if isinstance(v, dict):
                yield from walk(v, f"{prefix}{k}.")
            else:
                name = f"{prefix}{k}"
                yield name, special.get(name, type(v).__name__)

    return dict(walk(RunConfig().model_dump()))


KINDS = _kinds()
#: Keys whose valid large values would make a case slow (many steps, or windows that keep a
#: run going): only small values are drawn for them.
SLOW_KEYS = {"steps", "checkpoint_every", "warmup", "success_window", "success_hold",
             "settle_window", "load"}  # fmt: skip
#: TOML text of values of every type and shape, and text that is not TOML.
SET_VALUES = [
    "0", "1", "-1", "2", "7", "0.5", "2.5", "-0.0", "1e-300", "5e-324", "1e308", "1e999",
    "-1e999", "nan", "inf", "-inf", "+inf", "-nan", str(2**70), str(-(2**63) - 1), "100000",
    "100000000", "1e12", "true", "false", '"x"', '""', '"10,2"', '"curvy"', '"sar"',
    '"camera"', "x", "10,2", " ", "[", "{", "[]", "[1]", "[2]", "[3, 2]", "[[1]]", "[2.5]",
    "[nan, 1]", "[1e9, 2]", "[1, 2, 3]", "[0]", "[-1]", '["a"]', "[inf]", "[1e999, 1]",
    "[[1.0, 2.0], [3.0, 4.0]]", "[[10.0, 5.0], [10.0, -5.0]]", "[10.0, 0.0, 0.0]",
    "[nan, 0, 0]", "[1e300, 1e300, 0]", "[100000, 2]", "[1, 100000000]", "{}", "{a = 1}",
    "1979-05-27", "0x10", "1_000",
]  # fmt: skip
SMALL_VALUES = ["1", "2", "5", "30", "0", "-1", "2.5", "nan", "inf", '"x"', "[2]", "{}"]


def _numbers(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        for v in value:
            yield from _numbers(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _numbers(v)
    else:
        yield value


def certainly_bad(key: str, text: str) -> str:
    """Why ``--set key=text`` is certainly invalid, or "" (when it may be valid)."""
    import math

    from sarlearn.config import parse_assignment

    if key not in KINDS:
        return "unknown key"
    _, value = parse_assignment(f"{key}={text}")
    kind = KINDS[key]
    floats = [v for v in _numbers(value) if isinstance(v, float)]
    unbounded = kind == "bound" and value == math.inf  # inf: no bound
    if any(not math.isfinite(v) for v in floats) and not unbounded:
        return "a non-finite number"
    container = isinstance(value, list | dict)
    scalar_kinds = ("int", "float", "bool", "opt_float", "opt_int", "opt_bool", "bound")
    if kind in scalar_kinds and container:
        return "a list or table for a single value"
    if kind in ("str", "opt_str") and container:
        return "a list or table for a name"
    if kind in ("list", "opt_list") and not isinstance(value, list):
        return "not a list"
    if kind in ("int", "opt_int") and isinstance(value, float) and not value.is_integer():
        return "a fraction for an integer"
    if kind in ("int", "float", "opt_int", "opt_float", "bound") and isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return "text for a number"
    sizes_ok = isinstance(value, list) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in value
    )
    if key == "network.layers" and isinstance(value, list) and not (value and sizes_ok):
        return "layer sizes that are not positive integers"
    return ""


@st.composite
def set_item(draw: st.DrawFn) -> tuple[str, str]:
    """(``KEY=VALUE``, why it is certainly bad or "") over every key and the whole value
    space; sometimes an unknown key or a malformed assignment."""
    key = draw(st.sampled_from([*sorted(KINDS), "no.such.key", "world", "rule.relevance"]))
    pool = SMALL_VALUES if key in SLOW_KEYS else SET_VALUES
    value = draw(st.sampled_from(pool))
    shape = draw(st.sampled_from(["kv", "kv", "kv", "kv", "kv", "kv", "bare", "novalue"]))
    if shape == "bare":
        return key, "no '='"
    if shape == "novalue":
        return f"={value}", "no key"
    return f"{key}={value}", certainly_bad(key, value)


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
    if draw(st.integers(0, 2)) == 0:  # one value from the whole space, after the others
        item, bad = draw(set_item())
        a += ["--set", item]
        case.bad = bad
    if draw(st.integers(0, 4)) == 0:
        case.files["in/config.toml"] = draw(config_file())
        a += ["--config", "in/config.toml"]
    elif draw(st.integers(0, 9)) == 0:
        a += ["--config", draw(st.sampled_from(["in/none.toml", "in", ""]))]
    outs = ["out", "out/a/b"] + ([] if clean else ["", "in/file", "in", "x" * 300])
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
    out = draw(st.sampled_from(["out", "out", "out", "out", "", "in/file", "ro/out"]))
    case = Case(["sweep", "--out", out, "--jobs", "1", "--no-progress"], kind="sweep")
    _out_files(case, out)
    a = case.args
    a += ["--steps", draw(st.sampled_from(["20", "30", "0", "x"]))]
    for rule in draw(st.lists(st.sampled_from([*RULES, "bogus"]), max_size=2)):
        a += ["--rule", rule]
    for lr in draw(st.lists(st.sampled_from(["1e-4", "1e-3", "0", "-1", "x"]), max_size=2)):
        a += ["--lr", lr]
    a += maybe(
        draw,
        "--lr-range",
        st.sampled_from(["1e-5:1e-3:2", "1:0:2", "a:b:c", "1e-5:1e-3", "1e-5:1e-3:100000000"]),
    )
    a += ["--layers", draw(st.sampled_from(["2", "3,2", "0", "x"]))]
    a += maybe(draw, "--seeds", st.sampled_from(["1", "2", "0", "-1", "100000000"]))
    a += maybe(draw, "--track", st.sampled_from(["circle", "oval", "nope", "in/missing.png"]))
    for item in draw(st.lists(assignment(), max_size=2)):
        a += ["--set", item]
    if draw(st.booleans()):
        item, case.bad = draw(set_item())
        a += ["--set", item]
    a += maybe(
        draw, "--grid", st.sampled_from(["world.speed=[30, 40]", "world.speed=30", "x=[1]", "=",
                                         "seed={range = [0, 100000000]}", "world.speed=[nan]",
                                         "rule.lr={logspace = [-6, -3, 100000000]}"])
    )  # fmt: skip
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


def _out_files(case: Case, out: str) -> None:
    """The files an output path of the case needs: a file in the way, a read-only folder."""
    if out.startswith("in/file"):
        case.files["in/file"] = b"x"
    if out.startswith("ro/"):
        case.dirs.append("ro")  # made read-only by run_case
    if out in ("", "in/file") or (out.startswith("ro/") and ROOTLESS):
        case.bad = case.bad or "an output path that cannot be written"


#: Permissions bind this user (root writes into a read-only folder all the same).
ROOTLESS = os.geteuid() != 0
OUTS = ["out", "out", "out", "", "in/file", "ro/out", "x" * 300, "out/" + "y" * 300]


@st.composite
def classify_case(draw: st.DrawFn) -> Case:
    """Tiny trainings on digits (a few dozen images, one epoch) with options good and bad."""
    out = draw(st.sampled_from(OUTS))
    case = Case(["classify", "--no-progress", "--no-plot", "--out", out], kind="classify")
    _out_files(case, out)
    a = case.args
    a += ["--epochs", draw(st.sampled_from(["1", "1", "1", "0", "-1", "x"]))]
    a += ["--train-subset", draw(st.sampled_from(["40", "40", "64", "0", "-5", "1", "x"]))]
    a += ["--test-subset", draw(st.sampled_from(["20", "20", "0", "-1"]))]
    a += maybe(draw, "--lr", st.sampled_from(["1e-3", "0.1", "1e300", "inf", "nan", "0", "-1"]))
    a += maybe(draw, "--threads", st.sampled_from(["1", "2", "0", "-3"]))
    a += maybe(draw, "--width", st.sampled_from(["8", "16", "0", "-1", "1000000000"]))
    a += maybe(draw, "--depth", st.sampled_from(["1", "2", "0", "-1"]))
    a += maybe(draw, "--batch-size", st.sampled_from(["8", "32", "0", "100000"]))
    a += maybe(draw, "--rule", st.sampled_from(["sar", "bp", "fa", "bogus"]))
    a += maybe(draw, "--model", st.sampled_from(["mlp", "lenet", "bogus"]))
    a += maybe(draw, "--optimiser", st.sampled_from(["adam", "sgd", "bogus"]))
    a += maybe(draw, "--dataset", st.sampled_from(["digits", "mnist", "bogus"]))
    if draw(st.integers(0, 5)) == 0:
        case.files["in/data.npz"] = draw(st.sampled_from([b"", b"\x89PNG\r\n", b"PK\x03\x04"]))
        a += ["--data", "in/data.npz"]
    for opt, bad in (("--epochs", ("0", "-1")), ("--train-subset", ("0", "-5")),
                     ("--test-subset", ("0", "-1")), ("--lr", ("1e300", "inf", "nan", "0", "-1")),
                     ("--threads", ("0", "-3")), ("--width", ("0", "-1", "1000000000")),
                     ("--batch-size", ("0",)), ("--rule", ("bogus",)), ("--model", ("bogus",)),
                     ("--optimiser", ("bogus",)), ("--dataset", ("bogus",))):  # fmt: skip
        if opt in a and a[a.index(opt) + 1] in bad:
            case.bad = case.bad or f"{opt} {a[a.index(opt) + 1]}"
    return case


#: --hp values that no hyper-parameter takes.
BAD_HP = {'"x"', "x", "[", "{", "nan", "inf", "-inf", "+inf", "-nan", "1e999", "-1e999", "{}",
          '""', "{a = 1}", "1979-05-27", '["a"]', "[[1]]"}  # fmt: skip


@st.composite
def rl_case(draw: st.DrawFn) -> Case:
    """rl-baseline with one bad option (a training would take minutes): seeds, a --hp, the
    algorithm, steps, the output folder, the observation or the track."""
    case = Case(["rl-baseline"], kind="rl-baseline")
    a = case.args
    bad = draw(st.sampled_from(["seeds", "hp", "algo", "steps", "out", "observation", "track"]))
    out = draw(st.sampled_from(["", "in/file", "x" * 300] if bad == "out" else ["out"]))
    a += ["--out", out]
    _out_files(case, out)
    wrong = ["-1", "0-100000000000", "x", "3-1", "", "99999999999"]
    a += ["--seeds", draw(st.sampled_from(wrong if bad == "seeds" else ["0", "0-1"]))]
    if bad == "hp":
        key = draw(st.sampled_from(["learning_rate", "n_envs", "gamma", "net_arch", "nope"]))
        value = draw(st.sampled_from(sorted(BAD_HP)))
        a += ["--hp", f"{key}={value}"]
    a += ["--algo", draw(st.sampled_from(["dqn", "", "PPO"] if bad == "algo" else ["ppo", "sac"]))]
    a += ["--steps", draw(st.sampled_from(["0", "-5", "x"] if bad == "steps" else ["100"]))]
    a += ["--eval-every", "100"]
    if bad == "observation":
        a += ["--observation", draw(st.sampled_from(["bogus", ""]))]
    if bad == "track":
        a += ["--track", draw(st.sampled_from(["nope", "", "in/missing.png"]))]
    case.bad = f"rl-baseline with a bad {bad}"
    return case


@st.composite
def bench_case(draw: st.DrawFn) -> Case:
    """bench: mostly bad options; sometimes a tiny measurement (one mode, 10 steps)."""
    # None: no --json at all; "": an empty path, which is bad
    json_path = draw(st.sampled_from([None, "out.json", "", "ro/b.json", "in", "o/" + "z" * 300]))
    case = Case(["bench", "--no-bandwidth", "--warmup", "0", "--repeats", "1"], kind="bench")
    if json_path is not None:
        case.args += ["--json", json_path]
        if json_path == "in":
            case.dirs.append("in")
        if json_path.startswith("ro/"):
            case.dirs.append("ro")
    a = case.args
    a += ["--steps", draw(st.sampled_from(["10", "0", "-1", "x"]))]
    a += ["--population", draw(st.sampled_from(["2", "0", "-2"]))]
    a += ["--mode", draw(st.sampled_from(["single", "learner", "bogus", ""]))]
    a += ["--rule", draw(st.sampled_from(["sar", "bogus"]))]
    a += ["--dtype", draw(st.sampled_from(["float64", "float16"]))]
    if draw(st.integers(0, 4)) == 0:
        case.files["in/c.toml"] = draw(config_file())
        a += ["--config", "in/c.toml"]
    options = a[6:] if json_path is None else a[8:]  # the values after --json's
    bad = [v for v in ("0", "-1", "x", "-2", "bogus", "", "float16") if v in options]
    unwritable = json_path is not None and (json_path in ("", "in") or json_path.startswith("o/"))
    if bad or unwritable or (json_path == "ro/b.json" and ROOTLESS):
        case.bad = f"bench with {bad or json_path!r}"
    return case


@st.composite
def report_case(draw: st.DrawFn) -> Case:
    """report on a small sweep folder (copied from a fixture), a broken one or none."""
    which = draw(st.sampled_from(["sweep", "sweep", "huge-lr", "empty", "missing", "file",
                                  "corrupt"]))  # fmt: skip
    case = Case(["report", f"in/{which}"], kind="report")
    case.dirs.append(f"@{which}")  # run_case copies the fixture
    out = draw(st.sampled_from(["", "rep", "rep", "in/file", "ro/rep", "x" * 300, None]))
    if out is not None:
        case.args += ["--out", out]
        _out_files(case, out)
    if which in ("empty", "missing", "file"):
        case.bad = case.bad or f"a {which} sweep folder"
    return case


CASES = st.one_of(
    follow_case(), follow_case(), follow_case(), tracks_case(), sweep_case(), sweep_case(),
    classify_case(), rl_case(), bench_case(), report_case(),
)  # fmt: skip


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
    if case.kind == "bench":
        return case.args[case.args.index("--json") + 1] if "--json" in case.args else "-"
    if case.kind == "report" and "--out" not in case.args:
        return f"{case.args[1]}/report"
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
        assert not case.bad, f"{where} exited 0 on bad input ({case.bad}):\n{text}"
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


@contextmanager
def no_report_figures() -> Iterator[None]:
    """Reports skip their figures (seconds each; tested on their own, an axis over 1e300
    included): the fuzz is about the options and the folders."""
    from sarlearn.reports import report

    original = report.draw_figures
    report.draw_figures = lambda *args, **kw: []  # type: ignore[assignment]
    try:
        yield
    finally:
        report.draw_figures = original  # type: ignore[assignment]


def run_case(case: Case, tally: Counter[str], root: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-", dir=root))
    cwd = os.getcwd()
    try:
        for name, data in case.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(data)
        for name in case.dirs:
            if name.startswith("@"):  # a report's sweep folder, copied from the fixtures
                make_report_input(folder / "in" / name[1:], name[1:])
            else:
                (folder / name).mkdir(parents=True, exist_ok=True)
        if "ro" in case.dirs:
            (folder / "ro").chmod(0o555)  # read-only (for a user other than root)
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
        tally[f"{case.kind} seconds"] += round(time.monotonic() - started, 3)
        tally[f"{case.kind} cases"] += 1
        tally["cases"] += 1
    finally:
        if (folder / "ro").is_dir():
            (folder / "ro").chmod(0o755)
        shutil.rmtree(folder, ignore_errors=True)


#: Sweep folders the report cases read, made once per fuzz process (see make_fixtures).
FIXTURES: dict[str, Path] = {}


def make_fixtures(root: Path) -> None:
    """Two tiny sweeps made with the sweep tests' fake run (no simulation): an ordinary one,
    and one whose learning rates reach 1e300 (axes and tables must cope)."""
    from sarlearn.sweeps.spec import parse_spec
    from sarlearn.sweeps.sweep import run_sweep

    specs = {
        "sweep": {"grid": {"rule.lr": [1e-5, 1e-4, 3e-4], "seed": [0, 1]}},
        "huge-lr": {"grid": {"rule.lr": [1e-4, 1e300], "seed": [0, 1]}},
    }
    for name, spec in specs.items():
        FIXTURES[name] = root / name
        run_sweep(parse_spec(spec), root / name, run_fn="sweep_fakes:fake_run", jobs=1,
                  progress=False)  # fmt: skip


def make_report_input(path: Path, which: str) -> None:
    """The report case's input folder ``which`` at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if which in FIXTURES:
        shutil.copytree(FIXTURES[which], path)
    elif which == "corrupt":
        shutil.copytree(FIXTURES["sweep"], path)
        (path / "results.parquet").write_bytes(b"PAR1 not really")
    elif which == "empty":
        path.mkdir()
    elif which == "file":
        path.write_bytes(b"x")


def fuzz(n_cases: int) -> Callable[[], Counter[str]]:
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

    def run_all() -> Counter[str]:
        from sarlearn.runs import run

        saved = run.MIN_CHECKPOINT_SECONDS
        fixtures = Path(tempfile.mkdtemp(prefix="fuzz-fixtures-", dir=root))
        try:
            make_fixtures(fixtures)
            with no_figures(), no_report_figures():
                check()
        finally:
            run.MIN_CHECKPOINT_SECONDS = saved
            shutil.rmtree(fixtures, ignore_errors=True)
        return tally

    return run_all


def vm_size() -> int:
    """Bytes of address space this process uses now (Linux), 0 where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_in_limited_child(n_cases: int) -> Counter[str]:
    """Run :func:`fuzz` in a forked child whose address space is limited to what it has plus
    :data:`MEMORY_LIMIT`; the tally comes back, or the first failure is raised here."""
    import resource
    import traceback

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            os.close(read)
            # No case sends SIGTERM; a stray one (a process pool of an earlier test in this
            # process terminating a worker whose pid has since been reused: pids wrap at
            # 32,768 on busy machines) must not end a case. Blocked, it stays pending.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
            if "torch" in sys.modules:
                # An OpenMP thread pool does not survive a fork: after an earlier test ran
                # torch in this process, a parallel op in the child (a classify case) waits
                # forever on threads that only the parent has. One thread never waits.
                sys.modules["torch"].set_num_threads(1)
            limit = vm_size() + MEMORY_LIMIT
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
            result: dict[str, Any] = {"tally": fuzz(n_cases)(), "limit": limit}
        except BaseException as exc:  # reported to the parent, which fails the test
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
            code = 1
        result["slowest"] = sorted(SLOW, reverse=True)[:10]
        with os.fdopen(write, "w") as fh:
            fh.write(json.dumps(result, default=str))
        os._exit(code)
    os.close(write)
    with os.fdopen(read) as fh:
        data = json.loads(fh.read() or "{}")
    _, status = os.waitpid(pid, 0)
    assert "error" not in data, data.get("traceback", data)
    assert os.waitstatus_to_exitcode(status) == 0 and "tally" in data, (status, data)
    tally = Counter(data["tally"])
    stats = os.environ.get("SARLEARN_FUZZ_STATS")
    if stats:
        report = {**tally, "address_space_limit": data["limit"], "slowest": data["slowest"]}
        Path(stats).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    assert tally["cases"] >= n_cases * 0.9, tally  # hypothesis ran (almost) all of them
    assert tally["finished"] > 0 and tally["clear error"] > 0, tally
    return tally


def test_fuzz_quick_slice() -> None:
    """A seeded slice of the cases, in every test run."""
    run_in_limited_child(QUICK_CASES)


@pytest.mark.slow
def test_fuzz_full() -> None:
    run_in_limited_child(FULL_CASES)
