"""Learning with realism on against off: the runs and tables of docs/results.md ("Realism").

Usage (from the repository, with the package importable)::

    python docs/experiments/realism.py run main  --out DIR [--jobs 2]
    python docs/experiments/realism.py run sweep --out DIR [--jobs 2]
    python docs/experiments/realism.py run camera --out DIR [--jobs 2]
    python docs/experiments/realism.py run eval --out DIR [--jobs 2]
    python docs/experiments/realism.py table DIR/main.csv [--by-track]
    python docs/experiments/realism.py speed
    python docs/experiments/realism.py reflex-delay
    python docs/experiments/realism.py ablate --out DIR              # populations, see below
    python docs/experiments/realism.py ablate pmain --out DIR --robots 5 --tracks ...

``main``: SaR's default, GDM's default and the reflex alone on the seven settling built-in
tracks, seeds 0-4, 10,000 steps, realism ``off`` against the ``realistic`` preset.
``sweep``: one realism setting at a time (the rest off) on ``curvy`` and ``random``, the
seeds of ``--seeds`` (docs/results.md: 0 1 2), 4,000 steps. ``camera``: the camera
settings with camera inputs, the same grid. ``eval``:
off against ``realistic`` on the first four generated evaluation tracks (``random:1000000``
...), seeds 0-1, 6,000 steps. ``diag``: SaR at smaller rates under sensor noise 0.01,
``curvy`` and ``random``, seed 0. ``lowlr``: the realistic preset with SaR at η 0.1 on the
main tracks, seeds 0-1. Runs with realism on are the numpy loop (realism runs only there);
the learning runs with realism off run where ``engine='auto'`` puts them (the compiled
engine: the same recipe, one step agrees with the numpy loop to ~1e-12), the reflex alone on
the numpy loop. ``ablate``: each setting of :data:`ABLATE` (each flaw of the preset alone, the
robot's answers, the whole preset) on ``curvy`` with one population of independent robots per
rule on the numpy loop, strict settling over the last 5,000 of 7,000 steps; ``ablate pmain``:
realism off against the preset on the given tracks, the same way (docs/realism.md).

Per run: ``settled`` (the project's criterion on the error the robot sensed: the moving sum of
|e| below 0.1 at every step of the last window), ``settled_true`` (the same on the error of
the ideal sensors at the recorded poses, i.e. where the robot really was), the mean |e| of the
last window (sensed and true), steering sign flips per 1,000 steps over the window, and
``lost`` (the robot left the line: the run stops there). The harm ratio is a run's mean |e|
over the window divided by the reflex alone's on the same track, seed and setting.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

TRACKS7 = ("curvy", "hairpin", "random", "circle", "oval", "photo", "wide")
#: The first four generated evaluation tracks (all feasible by the centreline oracle).
EVAL_TRACKS = tuple(f"random:{s}" for s in range(1_000_000, 1_000_004))
RULES = ("reflex", "sar", "gdm")

#: One setting at a time (the rest off): name -> realism overrides (a dotted key: any field).
SWEEP: dict[str, dict[str, Any]] = {
    "off": {},
    "noise 0.003": {"sensor_noise": 0.003},
    "noise 0.01": {"sensor_noise": 0.01},
    "noise 0.03": {"sensor_noise": 0.03},
    "adc 10 bit": {"adc_bits": 10},
    "adc 6 bit": {"adc_bits": 6},
    "delay 1": {"delay": 1},
    "delay 2": {"delay": 2},
    # a slower reflex survives the delay (a dotted key is a config path of its own)
    "delay 1, gain 25": {"delay": 1, "world.error_gain": 25.0},
    "delay 2, gain 12.5": {"delay": 2, "world.error_gain": 12.5},
    "lag 0.1 s": {"motor_tau": 0.1},
    "lag 0.4 s": {"motor_tau": 0.4},
    "deadband 5": {"deadband": 5.0},
    "deadband 20": {"deadband": 20.0},
    "mismatch 0.05": {"wheel_mismatch": 0.05},
    "mismatch 0.2": {"wheel_mismatch": 0.2},
    "gradient 0.2": {"light_gradient": 0.2, "light_angle_deg": 30.0},
    "gradient 0.5": {"light_gradient": 0.5, "light_angle_deg": 30.0},
    "drift 0.2 / 1000": {"light_drift": 0.2, "light_drift_period": 1000},
}

#: SaR under sensor noise with smaller steps (is it the noise-driven random walk?).
DIAG: dict[str, dict[str, Any]] = {
    "noise 0.01, sar lr 0.3": {"sensor_noise": 0.01, "rule.lr": 0.3},
    "noise 0.01, sar lr 0.1": {"sensor_noise": 0.01, "rule.lr": 0.1},
    "noise 0.01, sar lr 0.03": {"sensor_noise": 0.01, "rule.lr": 0.03},
}

#: ``ablate``: each flaw of the realistic preset alone (the rest off), the whole preset, and
#: the robot's own countermeasures (its calibration's dead zone ``sensor_margin``, its
#: per-sensor floor estimate ``floor_tracking``) with the flaws they answer.
ABLATE: dict[str, dict[str, Any]] = {
    "off": {},
    "noise 0.01": {"sensor_noise": 0.01},
    "adc 10 bit": {"adc_bits": 10},
    "lag 0.1 s": {"motor_tau": 0.1},
    "deadband 5": {"deadband": 5.0},
    "mismatch 0.05": {"wheel_mismatch": 0.05},
    "gradient 0.2": {"light_gradient": 0.2, "light_angle_deg": 30.0},
    "drift 0.05": {"light_drift": 0.05},
    "realistic, no margin, no tracking": {
        "preset": "realistic",
        "sensor_margin": 0.0,
        "floor_tracking": 0.0,
    },
    "noise 0.01, margin 4": {"sensor_noise": 0.01, "sensor_margin": 4.0},
    "noise 0.01, margin 5": {"sensor_noise": 0.01, "sensor_margin": 5.0},
    "gradient 0.2, tracking 50": {
        "light_gradient": 0.2,
        "light_angle_deg": 30.0,
        "floor_tracking": 50.0,
    },
    "gradient 0.2, tracking 10": {
        "light_gradient": 0.2,
        "light_angle_deg": 30.0,
        "floor_tracking": 10.0,
    },
    "realistic, margin 5, no tracking": {"preset": "realistic", "floor_tracking": 0.0},
    "realistic": {"preset": "realistic"},
    # slower driving: the motors' lag costs less distance
    "lag 0.1 s, speed 20": {"motor_tau": 0.1, "world.speed": 20.0},
    "realistic, speed 20": {"preset": "realistic", "world.speed": 20.0},
    # a reflex tuned to slower motors (a lower proportional gain)
    "lag 0.1 s, reflex gain 25": {"motor_tau": 0.1, "world.error_gain": 25.0},
    "realistic, reflex gain 25": {"preset": "realistic", "world.error_gain": 25.0},
}

#: ``pmain``: realism off against the realistic preset (with the robot's calibration margin
#: and floor tracking, as the preset has them).
POPULATION_MAIN: dict[str, dict[str, Any]] = {"off": {}, "realistic": {"preset": "realistic"}}

CAMERA: dict[str, dict[str, Any]] = {
    "off": {},
    "blur 2 px": {"camera_blur": 2.0},
    "exposure 0.6": {"camera_exposure": 0.6},
    "exposure 1.5": {"camera_exposure": 1.5},
    "camera noise 0.05": {"camera_noise": 0.05},
    "realistic": {"preset": "realistic"},
}

FIELDS = (
    "set",
    "cond",
    "rule",
    "track",
    "seed",
    "steps",
    "window",
    "lost",
    "diverged",
    "settled",
    "settled_true",
    "settled_step",
    "mean_abs",
    "mean_abs_true",
    "flips",
    "seconds",
)


def jobs(
    name: str, seeds: tuple[int, ...] = (0,), only: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The runs of one experiment (``main``: reflex first, it is the cheapest)."""
    out = []
    if name == "main":
        conds = {"off": {}, "realistic": {"preset": "realistic"}}
        grid = [(c, r, t, s) for r in RULES for c in conds for t in TRACKS7 for s in range(5)]
        steps, window, inputs = 10_000, 5_000, "rows"
    elif name == "eval":
        conds = {"off": {}, "realistic": {"preset": "realistic"}}
        grid = [(c, r, t, s) for c in conds for r in RULES for t in EVAL_TRACKS for s in range(2)]
        steps, window, inputs = 6_000, 3_000, "rows"
    elif name == "lowlr":  # the realistic preset with SaR at a smaller rate
        conds = {"realistic, sar lr 0.1": {"preset": "realistic", "rule.lr": 0.1}}
        grid = [
            (c, r, t, s) for c in conds for r in ("reflex", "sar") for t in TRACKS7 for s in (0, 1)
        ]
        steps, window, inputs = 10_000, 5_000, "rows"
    elif name == "diag":  # SaR's rate under sensor noise
        conds = DIAG
        grid = [(c, r, t, 0) for c in conds for r in ("reflex", "sar") for t in ("curvy", "random")]
        steps, window, inputs = 4_000, 2_000, "rows"
    elif name in ("sweep", "camera"):
        conds = SWEEP if name == "sweep" else CAMERA
        tracks = ("curvy", "random")
        # setting by setting: an experiment cut short still has whole settings
        grid = [
            (c, r, t, s)
            for c in conds
            if not only or c in only
            for r in RULES
            for t in tracks
            for s in seeds
        ]
        steps, window = 4_000, 2_000
        inputs = "rows" if name == "sweep" else "camera"
    else:
        raise SystemExit(f"unknown experiment {name!r}: main, sweep, camera, eval, diag, lowlr")
    for cond, rule, track, seed in grid:
        out.append(
            {
                "set": name,
                "cond": cond,
                "realism": conds[cond],
                "rule": rule,
                "track": track,
                "seed": seed,
                "steps": steps,
                "window": window,
                "inputs": inputs,
            }
        )
    return out


def run_one(job: dict[str, Any]) -> dict[str, Any]:
    """One run; the measures of the module docstring."""
    from sarlearn.config import RunConfig
    from sarlearn.engine import make_closed_loop
    from sarlearn.errors import DivergenceError, NonFiniteError
    from sarlearn.metrics import SuccessCriterion, settled, steering_flips_per_1000
    from sarlearn.stages.world.sensors import reflex_pair
    from sarlearn.stages.world.tracks import load_track

    over = {k if "." in k else f"world.realism.{k}": v for k, v in job["realism"].items()}
    compiled = not job["realism"] and job["rule"] != "reflex"
    cfg = RunConfig().with_overrides(
        {
            "world.track": job["track"],
            "world.inputs": job["inputs"],
            "rule.name": job["rule"],
            "seed": job["seed"],
            "steps": job["steps"],
            "settle_window": job["window"],
            "engine": "auto" if compiled else "numpy",
            **over,
        }
    )
    crit = SuccessCriterion.from_config(cfg)
    loop = make_closed_loop(cfg, engine=cfg.engine)
    t0 = time.perf_counter()
    chunks: list[dict[str, np.ndarray]] = []
    lost = diverged = False
    with np.errstate(all="ignore"):
        while loop.t < cfg.steps:
            try:
                rec = loop.run(min(1000, cfg.steps - loop.t))
            except (DivergenceError, NonFiniteError):
                diverged = True
                break
            chunks.append(rec)
            if rec["off_track"].any():
                lost = True
                break
    row = {k: job[k] for k in ("set", "cond", "rule", "track", "seed", "steps", "window")}
    row.update(lost=lost, diverged=diverged, seconds=round(time.perf_counter() - t0, 1))
    if lost or diverged or not chunks:
        return row
    e = np.concatenate([c["error"][0] for c in chunks])
    y = np.concatenate([c["steering"][0] for c in chunks])
    pose = np.stack([np.concatenate([c[k][0] for c in chunks]) for k in ("x", "y", "heading")], 1)
    wc = cfg.world
    track = load_track(wc.track, wc.arena, wc.track_seed, wc.resolution, wc.line_width)
    ideal = reflex_pair(wc).read(track, pose)  # (T, 2): where it really was
    e_true = cfg.world.error_gain * (ideal[:, 0] - ideal[:, 1])
    w = job["window"]
    from sarlearn.metrics import settled_step

    row.update(
        settled=bool(settled(e, crit)),
        settled_true=bool(settled(e_true, crit)),
        settled_step=settled_step(e, crit),
        mean_abs=float(np.abs(e[-w:]).mean()),
        mean_abs_true=float(np.abs(e_true[-w:]).mean()),
        flips=float(steering_flips_per_1000(y, w)) if job["rule"] != "reflex" else 0.0,
    )
    return row


def ablate(
    out: Path,
    rules: tuple[str, ...] = ("reflex", "sar"),
    robots: int = 10,
    steps: int = 7_000,
    window: int = 5_000,
    tracks: tuple[str, ...] = ("curvy",),
    only: tuple[str, ...] = (),
    name: str = "ablate",
) -> None:
    """Populations: each setting of :data:`ABLATE` (``name = "ablate"``) or of
    :data:`POPULATION_MAIN` (``"pmain"``) on each of ``tracks`` with a population of
    ``robots`` independent robots (seed 0: their own start places, initial weights and
    noise) per rule, the numpy loop; one CSV row per robot in ``out/<name>.csv`` (what is
    already there is skipped). ``settled`` is the strict criterion over the last ``window``
    steps; a robot that ever lost the line counts as lost."""
    from sarlearn.config import RunConfig
    from sarlearn.loop import ClosedLoop
    from sarlearn.metrics import SuccessCriterion, settled, settled_step, steering_flips_per_1000
    from sarlearn.stages.world.sensors import reflex_pair
    from sarlearn.stages.world.tracks import load_track

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    done = set()
    if path.is_file():
        with path.open() as fh:
            done = {(r["cond"], r["rule"], r["track"]) for r in csv.DictReader(fh)}
    new = not path.is_file()
    conds = ABLATE if name == "ablate" else POPULATION_MAIN
    grid = [(c, r, t) for t in tracks for c in conds if not only or c in only for r in rules]
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, FIELDS)
        if new:
            writer.writeheader()
        for cond, rule, track in grid:
            over = conds[cond]
            if (cond, rule, track) in done:
                continue
            dotted = {k if "." in k else f"world.realism.{k}": v for k, v in over.items()}
            cfg = RunConfig().with_overrides(
                {"world.track": track, "rule.name": rule, "seed": 0, "steps": steps,
                 "settle_window": window, "engine": "numpy", **dotted}
            )  # fmt: skip
            crit = SuccessCriterion.from_config(cfg)
            loop = ClosedLoop.from_config(cfg, population=robots)
            t0 = time.perf_counter()
            with np.errstate(all="ignore"):
                chunks = [loop.run(1000) for _ in range(steps // 1000)]
            secs = round(time.perf_counter() - t0, 1)
            e = np.concatenate([c["error"] for c in chunks], axis=1)
            y = np.concatenate([c["steering"] for c in chunks], axis=1)
            lost = np.concatenate([c["off_track"] for c in chunks], axis=1).any(axis=1)
            wc = cfg.world
            trk = load_track(wc.track, wc.arena, wc.track_seed, wc.resolution, wc.line_width)
            pair = reflex_pair(wc)
            for i in range(robots):
                pose = np.stack(
                    [np.concatenate([c[k][i] for c in chunks]) for k in ("x", "y", "heading")],
                    1,
                )
                ideal = pair.read(trk, pose)
                e_true = wc.error_gain * (ideal[:, 0] - ideal[:, 1])
                row = {"set": name, "cond": cond, "rule": rule, "track": track,
                       "seed": i, "steps": steps, "window": window, "lost": bool(lost[i]),
                       "diverged": False, "seconds": secs}  # fmt: skip
                if not lost[i]:
                    row.update(
                        settled=bool(settled(e[i], crit)),
                        settled_true=bool(settled(e_true, crit)),
                        settled_step=settled_step(e[i], crit),
                        mean_abs=float(np.abs(e[i, -window:]).mean()),
                        mean_abs_true=float(np.abs(e_true[-window:]).mean()),
                        flips=float(steering_flips_per_1000(y[i], window))
                        if rule != "reflex"
                        else 0.0,
                    )
                writer.writerow(row)
            fh.flush()
            print(f"{cond} {rule} {track}: {secs} s", flush=True)


def run(
    name: str, out: Path, n_jobs: int, seeds: tuple[int, ...] = (0,), only: tuple[str, ...] = ()
) -> None:
    """Run the experiment ``name``, appending one CSV row per run to ``out/name.csv`` (runs
    already there are skipped, so an interrupted experiment continues)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    done = set()
    if path.is_file():
        with path.open() as fh:
            done = {(r["cond"], r["rule"], r["track"], r["seed"]) for r in csv.DictReader(fh)}
    todo = [
        j
        for j in jobs(name, seeds, only)
        if (j["cond"], j["rule"], j["track"], str(j["seed"])) not in done
    ]
    new = not path.is_file()
    with path.open("a", newline="") as fh, ProcessPoolExecutor(n_jobs) as pool:
        writer = csv.DictWriter(fh, FIELDS)
        if new:
            writer.writeheader()
        for i, row in enumerate(pool.map(run_one, todo)):
            writer.writerow(row)
            fh.flush()
            print(f"{i + 1}/{len(todo)} {row['cond']} {row['rule']} {row['track']} "
                  f"{row['seed']} {row['seconds']} s", flush=True)  # fmt: skip


def table(path: Path) -> None:
    """Markdown table of a CSV: per setting and rule, over tracks and seeds."""
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    reflex = {
        (r["cond"], r["track"], r["seed"]): r
        for r in rows
        if r["rule"] == "reflex" and r["lost"] == "False"
    }
    conds = list(dict.fromkeys(r["cond"] for r in rows))
    print("| setting | rule | runs | lost | settled (sensed) | settled (true) | "
          "harm ratio, median (max) | harm ratio on true e, median | flips /1000, median | "
          "mean abs e, median |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for cond in conds:
        for rule in RULES:
            rs = [r for r in rows if r["cond"] == cond and r["rule"] == rule]
            if not rs:
                continue
            ok = [r for r in rs if r["lost"] == "False" and r["diverged"] == "False"]
            harm, harm_t = [], []
            for r in ok:
                ref = reflex.get((cond, r["track"], r["seed"]))
                if ref is not None and float(ref["mean_abs"]) > 0:
                    harm.append(float(r["mean_abs"]) / float(ref["mean_abs"]))
                    harm_t.append(float(r["mean_abs_true"]) / float(ref["mean_abs_true"]))
            n_set = sum(r["settled"] == "True" for r in ok)
            n_true = sum(r["settled_true"] == "True" for r in ok)
            flips = [float(r["flips"]) for r in ok]
            mabs = [float(r["mean_abs"]) for r in ok]
            lost = len(rs) - len(ok)

            def med(v: list[float], fmt: str = "{:.2f}") -> str:
                return fmt.format(float(np.median(v))) if v else "–"

            hr = f"{med(harm)} ({max(harm):.2f})" if harm and rule != "reflex" else "–"
            print(
                f"| {cond} | {rule} | {len(rs)} | {lost} | {n_set}/{len(ok)} | {n_true}/{len(ok)} "
                f"| {hr} | {med(harm_t) if rule != 'reflex' else '–'} "
                f"| {med(flips, '{:.0f}') if rule != 'reflex' else '–'} | {med(mabs, '{:.3f}')} |"
            )


def by_track(path: Path) -> None:
    """Markdown table of a CSV: the median harm ratio (true error) per setting, rule, track."""
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    ok = [r for r in rows if r["lost"] == "False" and r["diverged"] == "False"]
    reflex = {(r["cond"], r["track"], r["seed"]): r for r in ok if r["rule"] == "reflex"}
    tracks = list(dict.fromkeys(r["track"] for r in rows))
    print("| setting | rule | " + " | ".join(tracks) + " |")
    print("|---|---|" + "---|" * len(tracks))
    for cond in dict.fromkeys(r["cond"] for r in rows):
        for rule in RULES[1:]:
            cells = []
            for track in tracks:
                v = [
                    float(r["mean_abs_true"]) / float(ref["mean_abs_true"])
                    for r in ok
                    if (r["cond"], r["rule"], r["track"]) == (cond, rule, track)
                    and (ref := reflex.get((cond, track, r["seed"]))) is not None
                ]
                n = sum((r["cond"], r["rule"], r["track"]) == (cond, rule, track) for r in rows)
                cells.append(f"{np.median(v):.2f} ({len(v)}/{n})" if v else f"– (0/{n})")
            print(f"| {cond} | {rule} | " + " | ".join(cells) + " |")


def speed(pairs: int = 3, n: int = 2000) -> None:
    """Steps/s of the numpy loop (default run), realism off against the realistic preset, in
    alternating pairs (the machine is shared: medians and their ratio)."""
    from sarlearn.config import RunConfig
    from sarlearn.loop import ClosedLoop

    def sps(preset: str) -> float:
        cfg = RunConfig().with_overrides({"world.realism.preset": preset, "engine": "numpy"})
        loop = ClosedLoop.from_config(cfg)
        loop.run(50)
        t = time.perf_counter()
        loop.run(n)
        return n / (time.perf_counter() - t)

    off, on = [], []
    for _ in range(pairs):
        off.append(sps("off"))
        on.append(sps("realistic"))
    a, b = float(np.median(off)), float(np.median(on))
    print(f"numpy loop steps/s: off {a:.0f}, realistic {b:.0f}, ratio {b / a:.2f}")


def reflex_delay(steps: int = 3000) -> None:
    """The reflex alone on ``curvy`` (seed 0) with a command delay of 0-2 cycles at three
    error gains: the step where the robot is first off the line, or None."""
    from sarlearn.config import RunConfig
    from sarlearn.loop import ClosedLoop

    for delay in (0, 1, 2):
        for gain in (50.0, 25.0, 12.5):
            cfg = RunConfig().with_overrides(
                {"rule.name": "reflex", "world.realism.delay": delay, "world.error_gain": gain}
            )
            off = np.flatnonzero(ClosedLoop.from_config(cfg).run(steps)["off_track"][0])
            print(f"delay {delay}, gain {gain:g}: off the line at {off[0] if len(off) else None}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("name", choices=("main", "sweep", "camera", "eval", "diag", "lowlr"))
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    r.add_argument("--seeds", type=int, nargs="+", default=[0], help="sweep/camera seeds")
    r.add_argument("--only", nargs="+", default=[], help="sweep/camera: these settings only")
    b = sub.add_parser("ablate", help="populations: the preset's settings one at a time")
    b.add_argument("name", nargs="?", default="ablate", choices=("ablate", "pmain"))
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--tracks", nargs="+", default=["curvy"])
    b.add_argument("--window", type=int, default=5_000)
    b.add_argument("--rules", nargs="+", default=["reflex", "sar"])
    b.add_argument("--robots", type=int, default=10)
    b.add_argument("--steps", type=int, default=7_000)
    b.add_argument("--only", nargs="+", default=[])
    sub.add_parser("speed")
    sub.add_parser("reflex-delay")
    t = sub.add_parser("table")
    t.add_argument("csv", type=Path)
    t.add_argument("--by-track", action="store_true", help="harm ratio per track")
    a = p.parse_args(argv)
    if a.cmd == "run":
        run(a.name, a.out, a.jobs, tuple(a.seeds), tuple(a.only))
    elif a.cmd == "ablate":
        ablate(a.out, tuple(a.rules), a.robots, a.steps, a.window, tuple(a.tracks),
               tuple(a.only), a.name)  # fmt: skip
    elif a.cmd == "speed":
        speed()
    elif a.cmd == "reflex-delay":
        reflex_delay()
    elif a.by_track:
        by_track(a.csv)
    else:
        table(a.csv)


if __name__ == "__main__":
    sys.exit(main())
