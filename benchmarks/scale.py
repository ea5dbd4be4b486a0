"""Wall time and peak memory of long runs and large sweeps, against their size.

Each measurement is one fresh ``sarlearn`` process (``follow``, ``sweep`` or ``report``); its
peak resident memory is the kernel's ``ru_maxrss`` of that process (``os.wait4``), so a sweep
counts its driver, not its worker processes (whose memory is bounded by one work unit each).
``follow`` also reports the loop's own seconds (``steps / loop_steps_per_second`` of its
summary), the target being ``wall <= 1.5 * loop + 10 s``::

    PYTHONPATH=src python benchmarks/scale.py --follow 1e6 5e6 20e6 \
        --sweep 2000 20000 100000 --out /tmp/scale --json benchmarks/results/scale.json \
        --plot docs/img/scale.png

Sweeps are ``sarlearn sweep --rule sar --rule gdm --seeds N/2 --steps S`` (``--sweep-steps``,
default 3000), then ``sarlearn report`` on the result. Sizes run in the order given; a size
that exceeds ``--budget`` seconds of wall time ends the list for its kind. ``--jobs J`` passes
``--jobs J`` (worker processes even for a small sweep); ``--backend ray`` runs the sweeps on
a private local Ray of ``J`` CPUs (``--backend ray --jobs J``)::

    PYTHONPATH=src python benchmarks/scale.py --sweep 2000 20000 --sweep-steps 50 --jobs 2 \
        --backend ray --json benchmarks/results/scale-intel-xeon-2core-shared.json

Besides the ``sarlearn`` process's own peak, every measurement samples the proportional set
size (PSS: shared pages split between the processes that map them) of the whole process tree
once a second, and keeps its largest total (``tree_peak_pss_mb``): the driver with its worker
processes, or with Ray's raylet, GCS, object store and workers. A row marked
``"before": true`` (by hand) was measured with earlier code: it stays in the file and is drawn
as a cross.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

#: The ``sarlearn`` command of this interpreter (it honours PYTHONPATH, e.g. ``src``).
SARLEARN = [str(Path(sys.executable).with_name("sarlearn"))]


def _descendants(root: int) -> list[int]:
    """``root`` and every process below it (Ray's raylet and GCS, pool and Ray workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_pss_mb(root: int) -> float:
    """The proportional set size of ``root``'s process tree, MB (0 where /proc has none)."""
    total = 0
    for pid in _descendants(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                total += sum(int(line.split()[1]) for line in fh if line.startswith("Pss:"))
        except (OSError, ValueError, IndexError):
            continue
    return total / 1024


def measure(cmd: list[str], timeout: float) -> dict[str, Any]:
    """Run ``cmd``; its wall seconds, peak RSS (MB), its process tree's peak PSS (MB, sampled
    once a second) and exit status."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = t0 + timeout
    tree_peak, next_sample = 0.0, t0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.perf_counter()
        if now > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        if now >= next_sample:
            tree_peak = max(tree_peak, tree_pss_mb(proc.pid))
            next_sample = now + 1.0
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "tree_peak_pss_mb": round(tree_peak, 1),
        "exit": proc.returncode,
        "stderr_tail": err.strip().splitlines()[-3:] if proc.returncode else [],
    }


def follow(steps: int, out: Path, timeout: float) -> dict[str, Any]:
    folder = out / f"follow-{steps}"
    shutil.rmtree(folder, ignore_errors=True)
    cmd = [*SARLEARN, "follow", "--steps", str(steps), "--no-progress", "--out", str(folder)]
    row: dict[str, Any] = {"kind": "follow", "size": steps, **measure(cmd, timeout)}
    summary = folder / "summary.json"
    if summary.is_file():
        s = json.loads(summary.read_text())
        loop = s["steps"] / s["loop_steps_per_second"] if s["loop_steps_per_second"] else None
        row["loop_s"] = round(loop, 2) if loop else None
        row["run_seconds"] = round(s["run_seconds"], 2)
        row["status"] = s["status"]
        row["target_wall_s"] = round(1.5 * loop + 10, 1) if loop else None
        trace = folder / "trace.parquet"
        row["trace_mb"] = round(trace.stat().st_size / 1e6, 1) if trace.exists() else None
    shutil.rmtree(folder, ignore_errors=True)
    return row


def sweep(
    runs: int,
    steps: int,
    out: Path,
    timeout: float,
    backend: str = "local",
    jobs: int | None = None,
    report: bool = True,
) -> list[dict[str, Any]]:
    folder = out / f"sweep-{runs}"
    shutil.rmtree(folder, ignore_errors=True)
    cmd = [*SARLEARN, "sweep", "--rule", "sar", "--rule", "gdm", "--seeds", str(runs // 2)]
    cmd += ["--steps", str(steps), "--out", str(folder), "--no-progress"]
    if backend != "local":
        cmd += ["--backend", backend]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    row: dict[str, Any] = {"kind": "sweep", "size": runs, "steps": steps, "backend": backend}
    row.update(jobs=jobs, **measure(cmd, timeout))
    row["runs_per_s"] = round(runs / row["wall_s"], 1)
    rows = [row]
    if row["exit"] == 0 and report:
        rep = [*SARLEARN, "report", str(folder), "--out", str(folder / "report")]
        rows.append({"kind": "report", "size": runs, "steps": steps, **measure(rep, timeout)})
    shutil.rmtree(folder, ignore_errors=True)
    return rows


def key(row: dict[str, Any]) -> tuple[Any, ...]:
    """What a row measures: rows of the same key replace each other in the JSON file."""
    return (
        row["kind"],
        row["size"],
        row.get("steps"),
        row.get("backend", "local"),
        bool(row.get("before")),
    )


def label(row: dict[str, Any]) -> str:
    """A curve of the plot: the kind, and for sweeps their run length and backend."""
    if row["kind"] == "follow":
        return "follow"
    ray = ", ray" if row.get("backend", "local") != "local" else ""
    return f"{row['kind']} ({row.get('steps')} steps{ray})"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Wall time and peak memory against size: runs (steps) above, sweeps (runs) below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 8), layout="constrained")
    panels = (("follow",), ("sweep", "report"))
    for (ax_t, ax_m), kinds in zip(axes, panels, strict=True):
        curves = sorted({label(r) for r in rows if r["kind"] in kinds and not r.get("before")})
        for name in curves:
            pts = sorted(
                ((r["size"], r) for r in rows if label(r) == name and not r.get("before")),
                key=lambda p: p[0],
            )
            pts = [p for p in pts if p[1]["exit"] == 0]
            if not pts:
                continue
            x = [p[0] for p in pts]
            ax_t.loglog(x, [p[1]["wall_s"] for p in pts], marker="o", label=f"{name}: wall")
            ax_m.semilogx(x, [p[1]["peak_rss_mb"] for p in pts], marker="o", label=name)
            loops = [(p[0], p[1]["loop_s"]) for p in pts if p[1].get("loop_s")]
            if loops:
                lx, ly = zip(*loops, strict=True)
                ax_t.loglog(lx, ly, ls=":", marker=".", label="follow: loop alone")
                ax_t.loglog(lx, [1.5 * v + 10 for v in ly], ls="--", color="0.6", label="target")
        # rows marked "before": measured with the code before a fix, drawn as crosses
        for r in rows:
            if r["kind"] in kinds and r.get("before") and r["exit"] == 0:
                ax_m.semilogx(r["size"], r["peak_rss_mb"], "kx", ms=8)
                ax_m.annotate(
                    f"{label(r)}, before",
                    (r["size"], r["peak_rss_mb"]),
                    xytext=(-4, 4),
                    textcoords="offset points",
                    ha="right",
                    fontsize=7,
                )
        unit = "steps of the run" if kinds == ("follow",) else "runs of the sweep"
        for ax in (ax_t, ax_m):
            ax.set_xlabel(unit)
            ax.grid(alpha=0.3)
        ax_t.set_ylabel("wall seconds")
        ax_m.set_ylabel("peak resident memory (MB)")
        ax_m.axhline(1024, color="0.6", ls="--", label="1 GB")
        top = max([r["peak_rss_mb"] for r in rows if r["kind"] in kinds] + [1100])
        ax_m.set_ylim(0, top * 1.1)
        ax_t.legend(fontsize=7)
        ax_m.legend(fontsize=7)
    fig.suptitle("sarlearn at scale (shared 2-core machine, one measurement per size)")
    fig.savefig(path, dpi=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--follow", type=float, nargs="*", default=[], help="steps of each run")
    ap.add_argument("--sweep", type=int, nargs="*", default=[], help="runs of each sweep")
    ap.add_argument("--sweep-steps", type=int, default=3000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/sarlearn-scale"))
    ap.add_argument("--json", type=Path, help="write the rows here (appended to if it exists)")
    ap.add_argument("--plot", type=Path, help="draw wall and memory against size here")
    ap.add_argument("--budget", type=float, default=1800.0, help="seconds per measurement")
    ap.add_argument("--backend", choices=("local", "ray"), default="local", help="of the sweeps")
    ap.add_argument("--jobs", type=int, help="worker processes (Ray: CPUs) of the sweeps")
    ap.add_argument("--no-report", action="store_true", help="measure the sweeps only")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    if args.json and args.json.exists():
        rows = json.loads(args.json.read_text())["rows"]
    for steps in args.follow:
        row = follow(int(steps), args.out, args.budget)
        print(json.dumps(row), flush=True)
        rows = [r for r in rows if key(r) != key(row)] + [row]
        if row["exit"]:
            break
    for runs in args.sweep:
        new = sweep(
            runs,
            args.sweep_steps,
            args.out,
            args.budget,
            args.backend,
            args.jobs,
            report=not args.no_report,
        )
        for row in new:
            print(json.dumps(row), flush=True)
        keys = {key(r) for r in new}
        rows = [r for r in rows if key(r) not in keys] + new
        if new[0]["exit"]:
            break
    if args.json:
        meta = {"machine": platform.processor() or platform.machine(), "cpus": os.cpu_count()}
        meta["python"] = platform.python_version()
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
