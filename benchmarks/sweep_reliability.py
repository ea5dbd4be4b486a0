"""Fault figures of docs/sweeps.md "Reliability": kill -9 of a sweep at random moments.

Trials (seeded moments):

- ``parent``: ``kill -9`` of ``sarlearn sweep --jobs 2`` while runs are in flight; checks that
  every process it started (workers, resource tracker) is gone within 10 s, then resumes;
- ``worker``: ``kill -9`` of one worker; the sweep must finish by itself;
- ``lock``: two processes race for a sweep folder's lock (fresh, or held by a dead process);
  exactly one may win.

After each kill trial the folder must hold exactly one record per planned run, equal (every
metric column) to an uninterrupted sweep's. Uses the fake run function of ``tests/sweep_fakes``
(0.4 s per run, 12 runs), so it measures the sweep machinery, not the engine. Linux (/proc).

Usage::

    PYTHONPATH=src:tests python benchmarks/sweep_reliability.py [--trials 10] [--locks 200]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys; from sarlearn.cli import main; sys.exit(main())"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")])}
FLAGS = ["--rule", "sar", "--rule", "gdm", "--lr", "1e-4", "--seeds", "6", "--steps", "300"]
FAKE = ["--run-fn", "sweep_fakes:slow_run", "--jobs", "2", "--no-progress"]
COLS = ["run_id", "status", "steps_to_success", "mean_abs_error_last_1000"]


def _stat(pid: int) -> tuple[int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    state, ppid = stat.rsplit(")", 1)[1].split()[:2]
    return None if state == "Z" else (int(ppid), cmd)


def descendants(pid: int) -> list[tuple[int, str]]:
    table = {int(e.name): i for e in Path("/proc").iterdir() if e.name.isdigit()
             if (i := _stat(int(e.name))) is not None}  # fmt: skip
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [(p, i[1]) for p, i in table.items() if i[0] == parent]
        found += kids
        frontier += [p for p, _ in kids]
    return found


def sweep(out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-c", CLI, "sweep", "--out", str(out), *FLAGS, *FAKE]
    return subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rows(out: Path) -> object:
    from sarlearn.store.store import ResultStore

    return ResultStore(out).load(latest=False).sort_values("run_id", ignore_index=True)


def kill_trial(kind: str, out: Path, rng: random.Random, expected: object) -> dict:
    proc = sweep(out)
    deadline = time.monotonic() + 120
    want = rng.randint(0, 8)
    while time.monotonic() < deadline and proc.poll() is None:
        parts = out / "results"
        if parts.is_dir() and len(list(parts.glob("part-*.parquet"))) >= want:
            break
        time.sleep(0.02)
    time.sleep(rng.uniform(0, 0.4))
    if proc.poll() is not None:
        return {"kind": kind, "skipped": "finished before the kill"}
    family = descendants(proc.pid)
    stored_before = len(list((out / "results").glob("part-*.parquet")))
    if kind == "parent":
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    else:
        workers = [p for p, cmd in family if "resource_tracker" not in cmd and _stat(p)
                   and _stat(p)[0] == proc.pid]  # fmt: skip
        os.kill(rng.choice(workers), signal.SIGKILL)
        proc.wait(180)
    t0 = time.monotonic()
    alive = [p for p, _ in family]
    while alive and time.monotonic() - t0 < 10:
        alive = [p for p in alive if _stat(p) is not None]
        time.sleep(0.05)
    gone_after = time.monotonic() - t0
    if kind == "parent" and sweep(out).wait(180) != 0:
        return {"kind": kind, "ok": False, "why": "resume failed"}
    got = rows(out)
    same = len(got) == len(expected) and got["run_id"].is_unique
    same = same and got[COLS].equals(expected[COLS])
    return {"kind": kind, "ok": bool(same and not alive), "stored_before_kill": stored_before,
            "left_behind": len(alive), "gone_within_s": round(gone_after, 2)}  # fmt: skip


def _take(root: str, barrier: object, results: object) -> None:
    from sarlearn.store.store import ResultStore, StoreLockedError

    barrier.wait()
    try:
        with ResultStore(root).lock():
            results.put(1)
            time.sleep(0.05)
    except StoreLockedError:
        results.put(0)


def lock_trials(n: int, tmp: Path) -> dict:
    ctx = multiprocessing.get_context("fork")
    double = none = 0
    for trial in range(n):
        root = tmp / f"lock{trial}"
        root.mkdir()
        if trial % 2:
            (root / ".sweep.lock").write_text(f"{socket.gethostname()} 999999999")
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_take, args=(str(root), barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        wins = results.get(timeout=5) + results.get(timeout=5)
        double += wins == 2
        none += wins == 0
    return {"trials": n, "two_winners": double, "no_winner": none}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10, help="kill trials of each kind")
    parser.add_argument("--locks", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="sarlearn-reliability-"))
    ref = tmp / "reference"
    if subprocess.run([sys.executable, "-c", CLI, "sweep", "--out", str(ref), *FLAGS,
                       "--run-fn", "sweep_fakes:fake_run", "--jobs", "1", "--no-progress"],
                      env=ENV).returncode:  # fmt: skip
        raise SystemExit("the reference sweep failed")
    expected = rows(ref)
    trials = []
    for i in range(args.trials):
        for kind in ("parent", "worker"):
            res = kill_trial(kind, tmp / f"{kind}{i}", rng, expected)
            print(json.dumps(res), flush=True)
            trials.append(res)
    summary = {
        kind: {
            "trials": sum(1 for t in trials if t["kind"] == kind and "skipped" not in t),
            "exact": sum(1 for t in trials if t["kind"] == kind and t.get("ok")),
            "processes_left": sum(t.get("left_behind", 0) for t in trials if t["kind"] == kind),
            "max_exit_s": max(
                (t.get("gone_within_s", 0) for t in trials if t["kind"] == kind), default=0
            ),
        }
        for kind in ("parent", "worker")
    }
    summary["lock"] = lock_trials(args.locks, tmp)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
