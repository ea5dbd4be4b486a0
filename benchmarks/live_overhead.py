"""What the live view (``sarlearn follow --live``) costs the loop.

One process, runs interleaved (off, on, off, on, ...), each ``--steps`` steps of the default
run (deep SaR on curvy) through ``run_follow`` with the engine of ``--engine``. Throughput is
measured from the end of the first chunk to the end of the last (``on_chunk`` timestamps), so
it includes everything the loop does between chunks: the view's ``observe`` and any time the
server threads take from the loop (the GIL) while answering the page.

Conditions:

- ``off``: no view;
- ``poll``: the view, with a client thread fetching ``/state.json`` every 500 ms, as the page
  does;
- ``chromium``: the view, with the real page open in headless Chromium (if installed; the
  browser's drawing also competes for the CPU, which on a busy 2-core machine is part of the
  price).

It also times the view's own work apart from the machine's load: ``observe`` per chunk and
one ``/state.json`` answer with full series.

Usage::

    PYTHONPATH=src python benchmarks/live_overhead.py [--steps 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from sarlearn.config import RunConfig
from sarlearn.runs.live import POLL_MS, LiveView
from sarlearn.runs.run import run_follow
from sarlearn.stages.world.tracks import load_track


def one_run(cfg: RunConfig, mode: str, tmp: Path) -> float:
    """Steps per second of one run in ``mode``."""
    stamps: list[tuple[float, int]] = []
    view = None
    stop = threading.Event()
    browser = None
    if mode != "off":
        view = LiveView(load_track(cfg.world.track), cfg.steps, rule=cfg.rule.name)
        url = view.start()
        if mode == "poll":

            def poll() -> None:
                while not stop.is_set():
                    urllib.request.urlopen(url + "state.json", timeout=5).read()
                    stop.wait(POLL_MS / 1000)

            threading.Thread(target=poll, daemon=True).start()
        else:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from browser import Browser

            browser = Browser()
            browser.open(url)
    try:
        run_follow(
            cfg,
            tmp / f"{mode}-{time.time_ns()}",
            figures=False,
            on_records=view.observe if view is not None else None,
            on_chunk=lambda loop, done: stamps.append((time.perf_counter(), done)),
        )
    finally:
        stop.set()
        if browser is not None:
            seen = browser.evaluate("window.sarlearnSeen.length")
            browser.close()
            if not seen:
                raise RuntimeError("the page never updated")
        if view is not None:
            view.stop()
    (t0, s0), (t1, s1) = stamps[0], stamps[-1]
    return (s1 - s0) / (t1 - t0)


def unit_costs(chunk: int = 250, n: int = 400) -> tuple[float, float]:
    """Median seconds of ``observe`` per chunk and of one ``/state.json`` answer (snapshot and
    JSON encoding) with full series: the view's own work, apart from the machine's load."""
    import json

    import numpy as np

    view = LiveView(None, 10**7)
    rng = np.random.default_rng(0)
    obs, ans = [], []
    for k in range(n):
        rec = {
            "step": np.arange(k * chunk, (k + 1) * chunk),
            "error": rng.normal(size=(1, chunk)),
            "x": rng.uniform(0, 250, (1, chunk)),
            "y": rng.uniform(0, 250, (1, chunk)),
            "heading": rng.uniform(-3, 3, (1, chunk)),
        }
        t = time.perf_counter()
        view.observe(rec)
        obs.append(time.perf_counter() - t)
        t = time.perf_counter()
        json.dumps(view.state.snapshot())
        ans.append(time.perf_counter() - t)
    return statistics.median(obs), statistics.median(ans[n // 2 :])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engine", default="auto", choices=["auto", "fast", "numpy"])
    ap.add_argument("--modes", default="off,poll,chromium")
    args = ap.parse_args()
    modes = args.modes.split(",")
    cfg = RunConfig().with_overrides({"steps": args.steps, "engine": args.engine})
    rates: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp:
        one_run(cfg.with_overrides({"steps": 1000}), "off", Path(tmp))  # warm-up / compile
        for _ in range(args.repeats):
            for mode in modes:
                try:
                    rates[mode].append(one_run(cfg, mode, Path(tmp)))
                except FileNotFoundError as exc:  # no chromium
                    print(f"{mode}: skipped ({exc})")
    observe, answer = unit_costs()
    print(
        f"observe: {observe * 1e6:,.0f} us per 250-step chunk; one /state.json answer: "
        f"{answer * 1e6:,.0f} us"
    )
    base = statistics.median(rates["off"])
    print(f"engine {args.engine}, {args.steps:,} steps, {args.repeats} repeats (medians)")
    for mode, vals in rates.items():
        if vals:
            med = statistics.median(vals)
            # Each run against the 'off' run just before it: the load of a shared machine
            # drifts between repeats more than within one.
            paired = statistics.median(v / o for v, o in zip(vals, rates["off"], strict=False))
            print(
                f"{mode:9s} {med:10,.0f} steps/s  {med / base:6.3f} x off (medians), "
                f"{paired:6.3f} x off (median of paired ratios)   "
                f"(runs: {', '.join(f'{v:,.0f}' for v in vals)})"
            )


if __name__ == "__main__":
    main()
