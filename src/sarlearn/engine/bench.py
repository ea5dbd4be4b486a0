"""Throughput of the closed loop: what ``sarlearn bench`` measures.

Every figure is the median over ``repeats`` timed chunks of one live loop (compilation and a
short warm-up happen before the first chunk):

- ``single``: one agent, the whole closed-loop step (world, sensors, filters, forward pass,
  rule, update, readout, motors), steps per second;
- ``population``: ``population`` agents in as many worlds on one shared track, agent-steps
  per second (agents in parallel on all cores, each advanced a whole chunk at a time);
- ``lockstep``: the population stepped strictly together (``block=1``), the access pattern of
  a batched numpy loop, for the memory-bandwidth comparison;
- ``numpy``: the readable reference loop (:class:`sarlearn.loop.ClosedLoop`), one agent.

The ``-dense`` variants replace the track by a graded floor (:func:`dense_floor`, concentric
rings of darkness): the reflex error is then never exactly 0, so every step of every agent
learns, i.e. reads and writes every weight. On the line-following track a step with ``e = 0``
has all-zero teaching signals and the engine skips the (no-op) update; once the network has
learned the line that is most steps, so the plain figures are those of a learning run as it
really goes, the dense ones the worst case.

Besides the rates the result holds the machine (CPU model, cores, versions), a measured memory
bandwidth (numpy copy) and the roofline estimate of :func:`roofline`.
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sarlearn.config import RunConfig

#: Modes measured by :func:`run_bench`, in table order.
MODES = (
    "single",
    "single-dense",
    "population",
    "population-dense",
    "lockstep-dense",
    "numpy",
)


def dense_floor(cfg: RunConfig) -> tuple[Any, tuple[float, float, float]]:
    """A graded floor on which every step learns, and a start pose on it.

    Darkness ``0.5 + 0.5 cos(2 pi r / 60)`` of the distance r from the arena's centre, at the
    track's resolution: the two reflex sensors never read the same darkness (unless the robot
    heads exactly along a ring), so the reflex error is never exactly 0.
    """
    from sarlearn.world.track import Track

    arena = cfg.world.arena
    n = max(8, round(arena * cfg.world.resolution))
    s = arena / n
    yy, xx = np.mgrid[0:n, 0:n] + 0.5
    r = np.hypot(xx * s - arena / 2, arena - yy * s - arena / 2)
    track = Track(0.5 + 0.5 * np.cos(2 * np.pi * r / 60.0), arena, name="rings")
    return track, (0.74 * arena, 0.5 * arena, np.pi / 2)


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else platform.processor())."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores, numba threads and the versions that matter for speed."""
    import numba

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "numba_threads": numba.get_num_threads(),
        "threading_layer": _threading_layer(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
    }


def _threading_layer() -> str:
    import numba

    try:
        return str(numba.threading_layer())
    except ValueError:  # no parallel region has run yet
        return "not initialised"


def measure_bandwidth(megabytes: int = 512, repeats: int = 5) -> float:
    """Memory bandwidth in GB/s from a numpy copy of a large float64 array.

    Counts the bytes read plus the bytes written (2 x the array size) per copy; median of
    ``repeats`` copies after one warm-up copy.
    """
    n = megabytes * (1 << 20) // 8
    src = np.ones(n)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - t0)
    return 2 * src.nbytes / statistics.median(times) / 1e9


def network_bytes(n_inputs: int, layers: Sequence[int], itemsize: int) -> dict[str, int]:
    """Bytes of weights and per-step traffic of one agent's network.

    Every step reads every weight (forward pass) and, when it learns, reads and writes every
    weight again (update), so a population stepped in lockstep streams at least
    ``2 x weight bytes`` through memory per agent-step once it no longer fits in cache.
    """
    sizes = [n_inputs, *layers]
    n_weights = sum(a * b for a, b in itertools.pairwise(sizes))
    n_neurons = sum(layers)
    weights = n_weights * itemsize
    state = (3 * n_inputs + 4 * n_neurons) * itemsize  # filter state r/w, caches
    return {
        "n_weights": n_weights,
        "weight_bytes": weights,
        "bytes_per_agent_step": 2 * weights + state,
    }


def roofline(cfg: RunConfig, bandwidth_gbs: float, n_predictors: int = 144) -> dict[str, Any]:
    """Upper bound of lockstep population throughput set by memory bandwidth, per dtype."""
    n_inputs = n_predictors * cfg.filters.n_filters
    out: dict[str, Any] = {"bandwidth_gbs": bandwidth_gbs}
    for name, size in (("float64", 8), ("float32", 4)):
        b = network_bytes(n_inputs, cfg.network.layers, size)
        b["bound_agent_steps_per_s"] = bandwidth_gbs * 1e9 / b["bytes_per_agent_step"]
        out[name] = b
    return out


def _median_rate(run: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work = run()
        rates.append(work / (time.perf_counter() - t0))
    return statistics.median(rates), rates


def bench_engine(
    cfg: RunConfig,
    population: int,
    steps: int,
    repeats: int,
    block: int | None = None,
    dense: bool = False,
) -> dict[str, Any]:
    """Median agent-steps/s of :class:`~sarlearn.engine.FastClosedLoop` (warm, compiled).

    With ``dense`` the robots drive on :func:`dense_floor` instead of the track.
    """
    from sarlearn.engine import FastClosedLoop
    from sarlearn.loop import ClosedLoop
    from sarlearn.world.sim import SimWorld

    if dense:
        track, start = dense_floor(cfg)
        cfg = cfg.with_overrides({"world.start": list(start)})
        world = SimWorld(cfg.world, population, track=track)
        loop = FastClosedLoop(ClosedLoop.from_config(cfg, population, robot=world), block=block)
    else:
        loop = FastClosedLoop.from_config(cfg, population, block=block)
    loop.run(min(steps, 50))  # compile (or load from cache) and warm up
    updates: list[float] = []

    def run() -> int:
        rec = loop.run(steps)
        updates.append(float(np.mean(rec["error"] != 0)))
        return population * steps

    median, rates = _median_rate(run, repeats)
    return {
        "median": median,
        "rates": rates,
        "steps": steps,
        "population": population,
        "block": block,
        # a step with e = 0 has all-zero teaching signals, and the engine skips the update
        "update_fraction": statistics.mean(updates),
    }


def bench_numpy(cfg: RunConfig, population: int, steps: int, repeats: int) -> dict[str, Any]:
    """Median agent-steps/s of the reference numpy loop."""
    from sarlearn.loop import ClosedLoop

    loop = ClosedLoop.from_config(cfg, population)
    loop.run(min(steps, 20))

    def run() -> int:
        loop.run(steps)
        return population * steps

    median, rates = _median_rate(run, repeats)
    return {"median": median, "rates": rates, "steps": steps, "population": population}


def run_bench(
    steps: int = 20_000,
    population: int = 256,
    rules: Sequence[str] = ("sar", "gdm"),
    dtypes: Sequence[str] = ("float64", "float32"),
    repeats: int = 5,
    modes: Sequence[str] = MODES,
    bandwidth: bool = True,
    base: RunConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure every (rule, dtype, mode) at the default configuration.

    Args:
        steps: steps per timed chunk of the single agent. The population runs chunks of
            ``ceil(10 * steps / population)`` steps (ten times the single agent's work), the
            numpy loop ``steps // 10`` (it is two orders of magnitude slower).
        population: agents of the population modes.
        rules, dtypes: what to measure (``numpy`` is measured in float64 only).
        repeats: timed chunks per figure; the median is reported.
        modes: a subset of :data:`MODES`.
        bandwidth: also measure the memory bandwidth (a 512 MB copy) for the roofline.
        base: the configuration to start from (default: ``RunConfig()``).
        progress: called with a short label before each measurement.

    Returns:
        ``{"machine", "settings", "results": [...], "roofline"}``; each result has ``rule``,
        ``dtype``, ``mode``, ``median`` (agent-steps/s), ``rates``, ``steps``, ``population``.
    """
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"unknown bench modes {sorted(unknown)}; known: {', '.join(MODES)}")
    base = base if base is not None else RunConfig()
    pop_steps = max(10, -(-10 * steps // population))
    results: list[dict[str, Any]] = []
    for rule in rules:
        for dtype in dtypes:
            cfg = base.with_overrides({"rule.name": rule, "dtype": dtype})
            for mode in modes:
                if mode == "numpy" and dtype != "float64":
                    continue
                if progress is not None:
                    progress(f"{rule} {dtype} {mode}")
                dense = mode.endswith("-dense")
                if mode.startswith("single"):
                    res = bench_engine(cfg, 1, steps, repeats, dense=dense)
                elif mode.startswith("population"):
                    res = bench_engine(cfg, population, pop_steps, repeats, dense=dense)
                elif mode.startswith("lockstep"):
                    res = bench_engine(cfg, population, pop_steps, repeats, 1, dense=dense)
                else:
                    res = bench_numpy(cfg, 1, max(10, steps // 10), repeats)
                results.append({"rule": rule, "dtype": dtype, "mode": mode, **res})
    out: dict[str, Any] = {
        "machine": machine_info(),
        "settings": {
            "steps": steps,
            "population": population,
            "population_steps": pop_steps,
            "repeats": repeats,
            "config": base.model_dump(mode="json"),
        },
        "results": results,
    }
    if bandwidth:
        out["roofline"] = roofline(base, measure_bandwidth())
    return out


__all__ = [
    "MODES",
    "bench_engine",
    "bench_numpy",
    "cpu_model",
    "dense_floor",
    "machine_info",
    "measure_bandwidth",
    "network_bytes",
    "roofline",
    "run_bench",
]
