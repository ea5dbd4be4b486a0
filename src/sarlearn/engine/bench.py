"""Throughput of the closed loop: what ``sarlearn bench`` measures.

Every figure is the median over ``repeats`` timed chunks of one live loop. Compilation and a
warm-up of :data:`WARMUP_STEPS` steps happen before the first chunk: long enough for the filter
and relevance states of predictors that left the line to decay (and be flushed to 0, see
:mod:`sarlearn.numerics`), so the chunks time the loop as it runs for most of a long run.

- ``single``: one agent, the whole closed-loop step (world, sensors, filters, forward pass,
  rule, update, readout, motors), steps per second;
- ``population``: ``population`` agents in as many worlds on one shared track, agent-steps
  per second (agents in parallel on all cores, each advanced a whole chunk at a time);
- ``lockstep``: the population stepped strictly together (``block=1``), the access pattern of
  a batched numpy loop, for the memory-bandwidth comparison;
- ``numpy``: the readable reference loop (:class:`sarlearn.loop.ClosedLoop`), one agent;
- ``learner``: the agent alone (filters, forward pass, rule; no world) on random predictors
  with a non-zero error every step, :meth:`FastClosedLoop.step_agents`;
- ``cpp``: the same for the lab's C++ library ``feedforward-closedloop-learning``
  (``FeedforwardClosedloopLearningWithFilterbank``, 144 inputs x 5 filters -> 10 x 10 -> 2,
  threads off per layer), in the same process, when it is installed (otherwise the result
  says it was skipped and why).

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
    "learner",
    "cpp",
)

#: Steps every loop runs before timing: the filter states of a predictor that left the line
#: decay for several hundred steps before they are flushed to 0, so an earlier timing would
#: measure a transient.
WARMUP_STEPS = 2000

#: Installing the optional C++ library (it builds from source with SWIG).
CPP_INSTALL = (
    "pip install swig && PATH=$VIRTUAL_ENV/bin:$PATH "
    "pip install --no-build-isolation feedforward-closedloop-learning==2.2.1"
)


def dense_floor(cfg: RunConfig) -> tuple[Any, tuple[float, float, float]]:
    """A graded floor on which every step learns, and a start pose on it.

    Darkness ``0.5 + 0.5 cos(2 pi r / 60)`` of the distance r from the arena's centre, at the
    track's resolution: the two reflex sensors never read the same darkness (unless the robot
    heads exactly along a ring), so the reflex error is never exactly 0.
    """
    from sarlearn.stages.world.track import Track

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


def _median_rate(run: Callable[[], int], repeats: int) -> dict[str, Any]:
    """Wall-clock rates (``median``, ``rates``) and CPU-time rates (``cpu_median``,
    ``cpu_rates``: work per CPU-second of this process, all its threads together).

    On a machine shared with other processes the wall-clock rate drops with the load; the
    CPU-time rate of a single-threaded measurement stays close to the unloaded speed.
    """
    rates, cpu_rates = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        work = run()
        t1, c1 = time.perf_counter(), time.process_time()
        rates.append(work / (t1 - t0))
        cpu_rates.append(work / max(c1 - c0, 1e-9))
    return {
        "median": statistics.median(rates),
        "rates": rates,
        "cpu_median": statistics.median(cpu_rates),
        "cpu_rates": cpu_rates,
    }


def bench_engine(
    cfg: RunConfig,
    population: int,
    steps: int,
    repeats: int,
    block: int | None = None,
    dense: bool = False,
    warmup: int = WARMUP_STEPS,
) -> dict[str, Any]:
    """Median agent-steps/s of :class:`~sarlearn.engine.FastClosedLoop` (warm, compiled).

    With ``dense`` the robots drive on :func:`dense_floor` instead of the track.
    """
    from sarlearn.engine import FastClosedLoop
    from sarlearn.loop import ClosedLoop
    from sarlearn.stages.world.sim import SimWorld

    if dense:
        track, start = dense_floor(cfg)
        cfg = cfg.with_overrides({"world.start": list(start)})
        world = SimWorld(cfg.world_config, population, track=track)
        loop = FastClosedLoop(ClosedLoop.from_config(cfg, population, robot=world), block=block)
    else:
        loop = FastClosedLoop.from_config(cfg, population, block=block)
    loop.run(warmup)  # compile (or load from cache), then past the states' decay
    updates: list[float] = []

    def run() -> int:
        rec = loop.run(steps)
        updates.append(float(np.mean(rec["error"] != 0)))
        return population * steps

    timing = _median_rate(run, repeats)
    return {
        **timing,
        "steps": steps,
        "population": population,
        "block": block,
        # a step with e = 0 has all-zero teaching signals, and the engine skips the update
        "update_fraction": statistics.mean(updates),
    }


def bench_numpy(
    cfg: RunConfig, population: int, steps: int, repeats: int, warmup: int = WARMUP_STEPS
) -> dict[str, Any]:
    """Median agent-steps/s of the reference numpy loop (after ``warmup`` agent-steps)."""
    from sarlearn.loop import ClosedLoop

    loop = ClosedLoop.from_config(cfg, population)
    loop.run(max(1, warmup // population))

    def run() -> int:
        loop.run(steps)
        return population * steps

    timing = _median_rate(run, repeats)
    return {**timing, "steps": steps, "population": population}


N_PREDICTORS = 144


def learner_inputs(n: int, n_in: int = N_PREDICTORS, seed: int = 0) -> tuple[Any, Any]:
    """Predictors in [0, 1) ``(n, n_in)`` and errors ``(n,)`` that are never 0."""
    rng = np.random.default_rng(seed)
    pred = rng.random((n, n_in))
    err = rng.normal(0.0, 5.0, n)
    err[err == 0] = 1.0
    return pred, err


def bench_learner(cfg: RunConfig, steps: int, repeats: int) -> dict[str, Any]:
    """Median steps/s of one agent alone (filters, forward, rule; no world), every step learning.

    Uses :meth:`~sarlearn.engine.FastClosedLoop.step_agents` on random predictors and errors.
    """
    from sarlearn.engine import FastClosedLoop

    loop = FastClosedLoop.from_config(cfg, 1)
    pred, err = learner_inputs(steps, n_in=loop.agent.bank.n_predictors)
    p3, e2 = pred[:, None, :], err[:, None]
    loop.step_agents(p3[:50], e2[:50])  # compile / load

    def run() -> int:
        loop.step_agents(p3, e2)
        return steps

    timing = _median_rate(run, repeats)
    return {**timing, "steps": steps, "population": 1}


def import_cpp() -> tuple[Any | None, str]:
    """The C++ library's module, or None and the reason it could not be imported."""
    try:
        import feedforward_closedloop_learning as fcl
    except ImportError as exc:
        return None, f"feedforward-closedloop-learning is not installed ({exc}); {CPP_INSTALL}"
    return fcl, ""


def quiet_stdout() -> Any:
    """Silence C-level writes to stdout (the C++ library prints when threads are toggled)."""
    import contextlib
    import ctypes
    import sys

    @contextlib.contextmanager
    def quiet() -> Any:
        sys.stdout.flush()
        saved = os.dup(1)
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                yield
            finally:
                sys.stdout.flush()
                with contextlib.suppress(OSError, AttributeError):
                    ctypes.CDLL(None).fflush(None)  # C stdio buffers, still to /dev/null
                os.dup2(saved, 1)
                os.close(saved)

    return quiet()


def bench_cpp_learner(
    fcl: Any,
    layers: Sequence[int],
    steps: int,
    repeats: int,
    *,
    filterbank: bool = True,
    threads: bool = False,
    convert: bool = False,
    lr: float = 1e-5,
) -> dict[str, Any]:
    """Median steps/s of the C++ library's ``doStep`` (filters if ``filterbank``, forward, error
    propagation, learning), 144 predictors x 5 filters (or 720 plain inputs).

    Inputs are converted to the library's vectors before timing, so only the library runs;
    with ``convert`` each step converts its numpy inputs (what a Python closed loop must do).
    ``threads=False`` switches the library's per-layer threads off (its default starts threads
    at every step, which costs far more than the arithmetic at these sizes).
    """
    ivec = fcl.IntVector(list(layers))
    if filterbank:
        # periods 3 .. 10 samples = the default bank's 1/3 .. 1/10 cycles per sample
        net = fcl.FeedforwardClosedloopLearningWithFilterbank(N_PREDICTORS, ivec, 5, 3.0, 10.0)
        n_in = N_PREDICTORS
    else:
        net = fcl.FeedforwardClosedloopLearning(N_PREDICTORS * 5, ivec)
        n_in = N_PREDICTORS * 5
    net.initWeights(1.0, 0, fcl.FCLNeuron.MAX_OUTPUT_RANDOM)
    net.setLearningRate(lr)
    if not threads:
        with quiet_stdout():
            for i in range(net.getNumLayers()):
                net.getLayer(i).setUseThreads(0)
    rng = np.random.default_rng(0)
    m = min(steps, 2000)  # distinct input vectors, cycled
    inputs = [fcl.DoubleVector(rng.random(n_in).tolist()) for _ in range(m)]
    errors = [fcl.DoubleVector([float(e)] * n_in) for e in rng.normal(0.0, 5.0, m)]
    for t in range(min(WARMUP_STEPS, steps)):
        net.doStep(inputs[t % m], errors[t % m])
    raw_in = rng.random((m, n_in))
    raw_err = rng.normal(0.0, 5.0, m)

    def run() -> int:
        for t in range(steps):
            if convert:
                x = fcl.DoubleVector(raw_in[t % m].tolist())
                e = fcl.DoubleVector([float(raw_err[t % m])] * n_in)
                net.doStep(x, e)
            else:
                net.doStep(inputs[t % m], errors[t % m])
            net.getOutput(0)
        return steps

    timing = _median_rate(run, repeats)
    return {**timing, "steps": steps, "population": 1}


def ratios(results: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Ratios of medians measured in the same run, per rule and dtype (the issue's targets).

    ``single/dense`` (the track against the every-step-learning floor, target >= 0.8),
    ``population/single`` (agent-steps/s of the population over one agent, target >= 1.3
    with 2 cores), ``single/numpy`` and ``learner/cpp`` (the engine's learner alone over the
    C++ library's with threads off, target >= 6).
    """
    by = {(r["rule"], r["dtype"], r["mode"]): r.get("median") for r in results}
    cpp = next((r["median"] for r in results if r["mode"] == "cpp" and "median" in r), None)
    out: dict[str, float] = {}
    for rule, dtype, _ in list(by):

        def get(mode: str, rule: str = rule, dtype: str = dtype) -> float | None:
            return by.get((rule, dtype, mode))

        pairs = {
            "single/dense": (get("single"), get("single-dense")),
            "population/single": (get("population"), get("single")),
            "single/numpy": (get("single"), get("numpy", dtype="float64")),
            "learner/cpp": (get("learner"), cpp),
        }
        for name, (a, b) in pairs.items():
            if a and b and rule != "fcl":
                out[f"{rule} {dtype} {name}"] = a / b
    return out


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
    warmup: int = WARMUP_STEPS,
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
        warmup: steps every loop runs before it is timed (:data:`WARMUP_STEPS`).
        progress: called with a short label before each measurement and with a line of
            its result after it.

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
    say = progress if progress is not None else (lambda _msg: None)
    say(f"CPU: {cpu_model()}, {os.cpu_count()} logical cores")
    plan = [
        (rule, dtype, mode)
        for rule in rules
        for dtype in dtypes
        for mode in modes
        if mode != "cpp" and not (mode == "numpy" and dtype != "float64")
    ]
    if "cpp" in modes:
        plan.append(("fcl", "float64", "cpp"))
    for k, (rule, dtype, mode) in enumerate(plan, 1):
        cfg = base.with_overrides({"rule.name": rule if rule != "fcl" else "sar", "dtype": dtype})
        label = f"[{k}/{len(plan)}] {rule} {dtype} {mode}"
        say(f"{label} ...")
        dense = mode.endswith("-dense")
        res: dict[str, Any]
        if mode.startswith("single"):
            res = bench_engine(cfg, 1, steps, repeats, dense=dense, warmup=warmup)
        elif mode.startswith("population"):
            res = bench_engine(cfg, population, pop_steps, repeats, dense=dense, warmup=warmup)
        elif mode.startswith("lockstep"):
            res = bench_engine(cfg, population, pop_steps, repeats, 1, dense=dense, warmup=warmup)
        elif mode == "learner":
            res = bench_learner(cfg, steps, repeats)
        elif mode == "cpp":
            fcl, why = import_cpp()
            if fcl is None:
                res = {"skipped": why, "population": 1}
            else:
                res = bench_cpp_learner(fcl, base.network.layers, max(10, steps // 4), repeats)
                res["library"] = "feedforward-closedloop-learning (threads off)"
        else:
            res = bench_numpy(cfg, 1, max(10, steps // 10), repeats, warmup=warmup)
        results.append({"rule": rule, "dtype": dtype, "mode": mode, **res})
        if "skipped" in res:
            say(f"{label}: {res['skipped']}")
        else:
            say(f"{label}: {res['median']:,.0f} steps/s ({res['cpu_median']:,.0f} per CPU-s)")
    out: dict[str, Any] = {
        "machine": machine_info(),
        "settings": {
            "steps": steps,
            "population": population,
            "population_steps": pop_steps,
            "repeats": repeats,
            "warmup": warmup,
            "config": base.model_dump(mode="json"),
        },
        "results": results,
        "ratios": ratios(results),
    }
    if bandwidth:
        out["roofline"] = roofline(base, measure_bandwidth())
    return out


__all__ = [
    "MODES",
    "WARMUP_STEPS",
    "bench_cpp_learner",
    "bench_engine",
    "bench_learner",
    "bench_numpy",
    "cpu_model",
    "dense_floor",
    "import_cpp",
    "learner_inputs",
    "machine_info",
    "measure_bandwidth",
    "network_bytes",
    "quiet_stdout",
    "ratios",
    "roofline",
    "run_bench",
]
