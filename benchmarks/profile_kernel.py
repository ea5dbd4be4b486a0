"""Where the compiled kernel spends its time, instruction by instruction (Linux ``perf``).

numba's machine code lives in anonymous memory, so ``perf report`` shows it as unnamed
addresses. This script closes that gap: it compiles the engine afresh into a temporary numba
cache (so that the kernel's object code is available; about a minute) and writes that object
code; a second process loads the kernel from that cache and writes the address of each of its
functions; the script samples that running workload with ``perf record`` (not the
compilation), maps every sample in the kernel onto its function and instruction (``objdump``)
and prints the functions' shares and the hottest stretches of code::

    taskset -c 1 python benchmarks/profile_kernel.py [--mode learner|world] [--rule sar] \
        [--seconds 5] [--top 12] [--keep DIR]

``--mode learner`` is the learner alone, every step learning (``sarlearn bench --mode
learner``); ``--mode world`` the default world, one agent. Shares are of the samples that
fall in the kernel's code (the rest is Python, the start-up and the C library's ``exp``,
which ``perf report`` names itself). Needs ``perf`` (and permission to use it) and
``objdump``.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BLOCK = 40  # instructions per reported stretch of code


def workload(mode: str, rule: str, seconds: float, out: Path) -> None:
    """Run the workload for ``seconds`` after writing the kernel's function addresses.

    The first call in a fresh numba cache compiles the kernel and writes its object code
    (``kernel.o``) and returns; run again, the kernel is loaded from that cache, so the code
    that runs is exactly that object code (a freshly compiled kernel runs code compiled
    separately from the object written for the cache, which need not match byte for byte)."""
    from sarlearn.config import RunConfig
    from sarlearn.engine import FastClosedLoop
    from sarlearn.engine import kernels as K
    from sarlearn.engine.bench import learner_inputs

    cfg = RunConfig().with_overrides({"rule.name": rule})
    loop = FastClosedLoop.from_config(cfg, 1)
    if mode == "learner":
        pred, err = learner_inputs(2000, n_in=loop.agent.bank.n_predictors)
        p3, e2 = pred[:, None, :], err[:, None]

        def chunk() -> None:
            loop.step_agents(p3, e2)
    else:

        def chunk() -> None:
            loop.run(2000, sync=False)

    chunk()  # compile, or load from the cache
    lib = K.run_chunk.overloads[K.run_chunk.signatures[0]].library
    if not (out / "kernel.o").exists():
        (out / "kernel.o").write_bytes(lib._get_compiled_object())
        dis = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", str(out / "kernel.o")],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        (out / "kernel.dis").write_text(dis)
        return
    dis = (out / "kernel.dis").read_text()
    with open(out / "addresses.txt", "w") as f:
        for name in re.findall(r"^[0-9a-f]+ <([^>]+)>:", dis, re.M):
            with contextlib.suppress(Exception):  # a symbol numba does not expose
                f.write(f"{lib.get_pointer_to_function(name):x} {name}\n")
    (out / "ready").touch()  # the parent now attaches perf for ``seconds``
    t = time.perf_counter()
    while time.perf_counter() - t < seconds + 2.0:
        chunk()


def functions(dis: str) -> dict[str, list[tuple[int, str]]]:
    """Each function's instructions in an ``objdump -d`` listing, as (offset from the
    function's start, text). Offsets, not addresses: in an object file every section's
    addresses start at 0, so functions of different sections overlap."""
    out: dict[str, list[tuple[int, str]]] = {}
    name, start = "", 0
    for line in dis.splitlines():
        m = re.match(r"^([0-9a-f]+) <([^>]+)>:", line)
        if m:
            name, start = m[2], int(m[1], 16)
            out[name] = []
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", line)
        if m and name:
            out[name].append((int(m[1], 16) - start, m[2]))
    return out


def attribute(
    ips: list[int], addresses: list[tuple[int, str]], sizes: dict[str, int]
) -> tuple[collections.Counter[str], collections.Counter[tuple[str, int]], int]:
    """Samples per function and per (function, offset); and how many fell in the kernel.

    ``addresses``: (runtime address, name) of the kernel's functions; ``sizes``: each
    function's length in bytes (a sample beyond it is outside the kernel)."""
    addresses = sorted(addresses)
    starts = [a for a, _ in addresses]
    per_fn: collections.Counter[str] = collections.Counter()
    per_ins: collections.Counter[tuple[str, int]] = collections.Counter()
    inside = 0
    for ip in ips:
        i = bisect.bisect_right(starts, ip) - 1
        if i < 0:
            continue
        start, name = addresses[i]
        if ip - start >= sizes.get(name, 0):
            continue
        inside += 1
        per_fn[name] += 1
        per_ins[(name, ip - start)] += 1
    return per_fn, per_ins, inside


def short(name: str) -> str:
    """A readable name for a numba-mangled symbol (``_ZN8sarlearn6engine7kernels12_agent_steps
    B3v60...`` -> ``sarlearn.engine.kernels._agent_steps``)."""
    i = name.find("_ZN")
    if i < 0:
        return name[:60]
    i += 3
    words = []
    while i < len(name) and name[i].isdigit():
        j = i
        while name[j].isdigit():
            j += 1
        n = int(name[i:j])
        words.append(name[j : j + n])
        i = j + n
    return ".".join(words) or name[:60]


def report(out: Path, perf_data: Path, top: int) -> str:
    """The functions' shares and the ``top`` hottest stretches of kernel code, as text."""
    raw = subprocess.run(
        ["perf", "script", "-i", str(perf_data), "-F", "ip"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    ips = [int(x, 16) for x in raw]
    addresses = []
    for line in (out / "addresses.txt").read_text().splitlines():
        a, name = line.split(" ", 1)
        addresses.append((int(a, 16), name))
    code = functions((out / "kernel.dis").read_text())
    sizes = {name: (ins[-1][0] + 16 if ins else 0) for name, ins in code.items()}
    per_fn, per_ins, inside = attribute(ips, addresses, sizes)
    total = max(inside, 1)
    lines = [f"{len(ips)} samples, {inside} in the kernel's code ({inside / max(len(ips), 1):.0%})"]
    for name, n in per_fn.most_common(8):
        lines.append(f"  {n / total:6.1%}  {short(name)}")
    blocks: collections.Counter[tuple[str, int]] = collections.Counter()
    for name, ins in code.items():
        for k, (off, _) in enumerate(ins):
            n = per_ins.get((name, off), 0)
            if n:
                blocks[(name, k // BLOCK)] += n
    for (name, b), n in blocks.most_common(top):
        lines.append(f"-- {n / total:.1%} of the kernel: {short(name)}, instructions {b * BLOCK}-")
        for off, text in code[name][b * BLOCK : (b + 1) * BLOCK]:
            share = per_ins.get((name, off), 0) / total
            if share >= 0.002:
                lines.append(f"   {share:5.1%}  +{off:<6x} {text[:80]}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=["learner", "world"], default="learner")
    ap.add_argument("--rule", default="sar")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--keep", type=Path, help="keep the object code and perf data in this folder")
    ap.add_argument("--workload", type=Path, help=argparse.SUPPRESS)  # the child's job
    a = ap.parse_args()
    if a.workload is not None:
        workload(a.mode, a.rule, a.seconds, a.workload)
        return
    for tool in ("perf", "objdump"):
        if shutil.which(tool) is None:
            sys.exit(f"profile_kernel: needs {tool!r} on the PATH")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) if a.keep is None else a.keep
        out.mkdir(parents=True, exist_ok=True)
        for stale in ("kernel.o", "kernel.dis", "addresses.txt", "ready"):
            (out / stale).unlink(missing_ok=True)
        shutil.rmtree(out / "numba-cache", ignore_errors=True)  # the first run must compile
        env = {**os.environ, "NUMBA_CACHE_DIR": str(out / "numba-cache")}
        cmd = [sys.executable, __file__, "--mode", a.mode, "--rule", a.rule]
        cmd += ["--seconds", str(a.seconds), "--workload", str(out)]
        perf_data = out / "perf.data"
        subprocess.run(cmd, env=env, check=True)  # compile, write the object code
        child = subprocess.Popen(cmd, env=env)  # load it from the cache and run
        while not (out / "ready").exists():  # loading and warming up: not sampled
            if child.poll() is not None:
                sys.exit("profile_kernel: the workload failed before it was ready")
            time.sleep(0.2)
        rec = ["perf", "record", "-F", "10000", "-p", str(child.pid), "-o", str(perf_data)]
        rec += ["--", "sleep", str(a.seconds)]
        done = subprocess.run(rec, capture_output=True, text=True)
        child.wait()
        if done.returncode != 0:  # e.g. kernel.perf_event_paranoid forbids it
            sys.exit(f"profile_kernel: perf record failed:\n{done.stderr.strip()}")
        print(f"mode {a.mode}, rule {a.rule}, {a.seconds:g} s")
        print(report(out, perf_data, a.top))


if __name__ == "__main__":
    main()
