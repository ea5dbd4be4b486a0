"""Checks before a run starts: settings that cannot work, and runs too large to hold.

``setting_warnings(cfg)`` names settings that are valid but defeat the experiment (a line
wider than the gap between the reflex sensors, a learning rate so large that the first
learning step saturates a layer); ``check_run_size(cfg, out)`` estimates time, memory and disk
of a run and refuses one that cannot fit (:func:`memory_limit`, or the free space of the
output file system). ``check_memory(cfg)`` refuses, before anything is allocated, a run whose
network, filter bank, sensors or camera would not fit (:func:`estimate_memory`), and
``check_plan_size(n, where)`` a sweep plan too large to build.
"""

from __future__ import annotations

import itertools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.errors import ConfigError, SarlearnError
from sarlearn.runs.stream import FLUSH_ROWS
from sarlearn.runs.view import VIEW_POINTS

#: Bytes a run allocates per step it holds (its records, their merged copy and the trace
#: table being built; measured on 200,000-step runs), plus 16 per logged sensor value. A run
#: streams: it holds at most FLUSH_ROWS steps of records and a view of VIEW_POINTS steps for
#: its figures, so what it allocates is bounded whatever its length (the process and its
#: libraries come on top: a whole run peaked at 500-530 MB from 10,000 to 20,000,000 steps,
#: benchmarks/scale.py).
MEMORY_PER_STEP = 700
#: Bytes of trace.parquet per step (measured: about 60-120 with the default network).
DISK_PER_STEP = 150
#: A run whose estimated memory exceeds this fraction of the machine's memory is refused.
MEMORY_FRACTION = 0.5
#: Rough steps/s for the time estimate (the default world on a 2-core Xeon; see
#: docs/performance.md): the compiled engine and the numpy reference.
RATE = {"fast": 30_000.0, "numpy": 1_500.0}
#: Runs longer than this get their estimate printed before they start.
ANNOUNCE_STEPS = 2_000_000


@dataclass(frozen=True)
class RunEstimate:
    """What a run will cost: ``seconds`` (rough), ``memory`` and ``disk`` in bytes."""

    steps: int
    seconds: float
    memory: int
    disk: int

    def describe(self) -> str:
        """One line: ``about 9 h, 50 GB of memory and 15 GB of disk``."""
        return (
            f"about {_duration(self.seconds)}, {_size(self.memory)} of memory and "
            f"{_size(self.disk)} of disk"
        )


def estimate_run(cfg: RunConfig, record_ground: bool = False) -> RunEstimate:
    """Rough time, memory and disk of ``cfg`` (memory is bounded: the run streams)."""
    from sarlearn.loop import n_predictors_of

    extra = 2 + n_predictors_of(cfg) if record_ground and cfg.world.inputs == "rows" else 0
    if cfg.world.inputs == "camera" and record_ground:
        extra = cfg.world.camera.width * cfg.world.camera.height_px
    fast = cfg.engine == "fast" or (cfg.engine == "auto" and cfg.world.inputs == "rows")
    rate = RATE["fast" if fast and cfg.rule.name != "reflex" else "numpy"]
    return RunEstimate(
        steps=cfg.steps,
        seconds=cfg.steps / rate,
        memory=min(cfg.steps, FLUSH_ROWS + VIEW_POINTS) * MEMORY_PER_STEP
        + min(cfg.steps, FLUSH_ROWS) * 16 * extra,
        disk=cfg.steps * (DISK_PER_STEP + 8 * extra),
    )


#: Bytes per float of the network's weights, kept several times over: the numpy agent's, the
#: compiled engine's copy, the initial weights (for weight_change) and the rule's step buffers.
WEIGHT_BYTES = 8 * 5
#: Bytes per filter output (the network's input): the bank's three states, its output and the
#: engine's copies of both.
INPUT_BYTES = 8 * 8
#: Bytes per ground sensor (positions, readings and their buffers, both loops).
SENSOR_BYTES = 8 * 12
#: Bytes per camera ray (supersampled pixel): directions, floor points and darkness, both
#: loops (measured: a 64,000 x 48,000-ray camera allocated 17 GB for one of its arrays).
RAY_BYTES = 8 * 3 * 3
#: Environment variable that sets the memory limit (bytes, or with a unit: 2GB, 500MB).
LIMIT_VARIABLE = "SARLEARN_MEMORY_LIMIT"


def estimate_memory(cfg: RunConfig, population: int = 1) -> int:
    """Bytes the objects of ``cfg``'s closed loop take before it runs (network, filter bank,
    sensors, camera), for ``population`` agents; exact integers (no overflow), no allocation.

    An estimate to refuse what cannot fit, not an accounting: a default run is a few MB.
    """
    from sarlearn.loop import n_predictors_of

    w = cfg.world
    n_pred = n_predictors_of(cfg)
    n_in = n_pred * cfg.filters.n_filters
    sizes = [n_in, *cfg.network.layers]
    bias = 1 if cfg.network.bias else 0
    weights = sum((a + bias) * b for a, b in itertools.pairwise(sizes))
    sensors = 2 + len(w.predictor_distances) * w.predictors_per_row
    rays = 0
    if w.inputs == "camera":
        ss = w.camera.supersample
        rays = w.camera.width * ss * w.camera.height_px * ss
    per_agent = weights * WEIGHT_BYTES + n_in * INPUT_BYTES + sum(cfg.network.layers) * 64
    return population * (per_agent + sensors * SENSOR_BYTES) + rays * RAY_BYTES


def memory_limit() -> tuple[int | None, str]:
    """The most memory a run may be estimated to need, and where that limit comes from.

    ``SARLEARN_MEMORY_LIMIT`` (e.g. ``4GB``) if set; else :data:`MEMORY_FRACTION` of the least
    of the machine's memory, the container's (cgroup ``memory.max``) and the process's address
    space limit (``ulimit -v``). None when none of them can be read.
    """
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if text:
        return parse_size(text), f"{LIMIT_VARIABLE}={text}"
    found = [(physical_memory(), "this machine's memory")]
    found.append((_cgroup_memory(), "the container's memory limit"))
    found.append((_address_space_limit(), "the process's address-space limit (ulimit -v)"))
    known = [(n, what) for n, what in found if n is not None]
    if not known:
        return None, "unknown"
    n, what = min(known)
    return int(MEMORY_FRACTION * n), f"{MEMORY_FRACTION:.0%} of {what}, {_size(n)}"


def parse_size(text: str) -> int:
    """``"4GB"`` -> 4_000_000_000 (B, KB, MB, GB, TB; KiB, MiB, GiB, TiB; a bare number is
    bytes); anything else raises ConfigError naming the variable."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
             "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip
    t = text.strip().upper().replace(" ", "")
    number = t.rstrip("KMGTIB")
    try:
        value = float(number) * units[t[len(number) :]]
    except (ValueError, KeyError):
        value = float("nan")
    if not (value > 0 and value < 1e18):
        raise ConfigError(f"{LIMIT_VARIABLE}={text!r}: expected a size such as 4GB or 500MB")
    return int(value)


def check_memory(cfg: RunConfig, population: int = 1, what: str = "this run") -> int:
    """The estimate of :func:`estimate_memory`; raises ConfigError naming the sizes that make it
    when it exceeds :func:`memory_limit` (before anything is allocated)."""
    check_filters(cfg)
    need = estimate_memory(cfg, population)
    limit, source = memory_limit()
    if limit is not None and need > limit:
        raise ConfigError(
            f"{what} would need about {_size(need)} of memory before it starts "
            f"({_sizes_of(cfg)}); the limit is {_size(limit)} ({source}; set "
            f"{LIMIT_VARIABLE} to change it)"
        )
    return need


#: Bytes a planned sweep run takes while the plan is built (its config and id; measured:
#: about 10 KB each for 10,000 runs), and the most runs one sweep folder plans.
PLAN_BYTES_PER_RUN = 12_000
MAX_PLANNED_RUNS = 1_000_000


def check_plan_size(n_runs: int, where: str) -> None:
    """Refuse a sweep plan (or one axis of it) of ``n_runs`` runs before it is built, when it
    exceeds :data:`MAX_PLANNED_RUNS` or its configs alone would not fit the memory limit."""
    limit, source = memory_limit()
    fits = limit is None or n_runs * PLAN_BYTES_PER_RUN <= limit
    if n_runs > MAX_PLANNED_RUNS or not fits:
        most = (
            MAX_PLANNED_RUNS
            if limit is None
            else min(MAX_PLANNED_RUNS, limit // PLAN_BYTES_PER_RUN)
        )
        raise ConfigError(
            f"{where}: {n_runs:,} runs is too many for one sweep (at most {most:,}: planning "
            f"holds every run's config, about {_size(PLAN_BYTES_PER_RUN)} each; memory limit "
            f"{_size(limit) if limit is not None else 'unknown'}, {source}); split it into "
            f"smaller sweeps"
        )


def check_filters(cfg: RunConfig) -> None:
    """Refuse a filter bank whose coefficients overflow or are not finite (``filters.q`` far
    below 1), naming the setting, before any bank is built."""
    f = cfg.filters
    if f.kind == "delay":
        return
    from sarlearn.stages.filters.bank import resonator_coefficients

    freqs = np.linspace(f.f_min, f.f_max, 2)
    try:
        with np.errstate(all="raise"):
            coefficients = resonator_coefficients(freqs, f.q, f.kind)
        finite = all(np.all(np.isfinite(c)) for c in coefficients)
    except (ArithmeticError, FloatingPointError):
        finite = False
    if not finite:
        raise ConfigError(
            f"filters.q = {f.q:g} makes the filter coefficients overflow (the poles are "
            f"computed from 1 / (2 q)); use a q of 0.01 or more (default 0.51)"
        )


def _sizes_of(cfg: RunConfig) -> str:
    w = cfg.world
    parts = [f"network.layers = {_short(cfg.network.layers)}",
             f"filters.n_filters = {cfg.filters.n_filters:,}"]  # fmt: skip
    if w.inputs == "camera":
        c = w.camera
        parts.append(
            f"camera {c.width:,} x {c.height_px:,} pixels at supersample {c.supersample:,}"
        )
    else:
        parts.append(f"{len(w.predictor_distances):,} predictor rows of {w.predictors_per_row:,}")
    return ", ".join(parts)


def _short(values: list[int]) -> str:
    text = ", ".join(f"{v:,}" for v in values[:6])
    return f"[{text}{', ...' if len(values) > 6 else ''}] ({len(values)} layers)"


def _cgroup_memory() -> int | None:
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def _address_space_limit() -> int | None:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else int(soft)


def physical_memory() -> int | None:
    """Bytes of RAM of this machine, or None where it cannot be read."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def check_run_size(
    cfg: RunConfig, out: str | Path | None, record_ground: bool = False
) -> RunEstimate:
    """The run's estimate; raises ConfigError when it cannot fit in memory or on disk."""
    static = check_memory(cfg)
    est = estimate_run(cfg, record_ground)
    limit, source = memory_limit()
    if limit is not None and est.memory + static > limit:
        raise ConfigError(
            f"this run needs {est.describe()} (limit: {_size(limit)}, {source}); a run "
            f"streams its records, so its memory does not grow with its steps"
        )
    folder = _existing_parent(Path(out) if out is not None else Path("runs"))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if free is not None and est.disk > free:
        raise ConfigError(
            f"steps = {cfg.steps:,} is too long for one run: it needs {est.describe()}, but "
            f"{folder} has only {_size(free)} free; use fewer steps or --trace-every"
        )
    return est


def setting_warnings(cfg: RunConfig) -> list[str]:
    """Warnings (one line each) for settings that are valid but cannot work as intended."""
    warnings = []
    w = cfg.world
    from sarlearn.stages.world.tracks import TRACK_NAMES

    gap = abs(w.reflex_sensors[0][1] - w.reflex_sensors[1][1])
    if w.track in TRACK_NAMES and w.line_width >= gap:
        warnings.append(
            f"world.line_width = {w.line_width:g} is not narrower than the gap between the "
            f"reflex sensors ({gap:g} units): the line cannot pass between them, so the reflex "
            f"error never settles to 0 and learning cannot make the reflex silent (use a line "
            f"narrower than {gap:g})"
        )
    saturated = first_step_saturation(cfg)
    if saturated is not None:
        warnings.append(saturated)
    else:
        far = far_from_default_lr(cfg)
        if far is not None:
            warnings.append(far)
    warnings += realism_warnings(cfg)
    return warnings


def realism_warnings(cfg: RunConfig) -> list[str]:
    """Notes on ``world.realism`` (docs/results.md, "Realism", measured them)."""
    p = cfg.world.realism.resolve()
    if not p.active:
        return []
    out = ["world.realism is on: the run uses the numpy loop (slower than the compiled engine)"]
    # The reflex alone kept the line on curvy with delay k only at gains up to 50 / 2**k.
    if p.delay and abs(cfg.world.error_gain) > 50.0 / 2**p.delay:
        out.append(
            f"world.realism.delay = {p.delay} with world.error_gain = {cfg.world.error_gain:g}: "
            f"the reflex alone overshoots and leaves the line; try world.error_gain = "
            f"{50.0 / 2**p.delay:g}"
        )
    if p.sensor_noise and p.sensor_margin < 4:
        out.append(
            "world.realism.sensor_noise > 0 with world.realism.sensor_margin below 4 noise "
            "widths: the sensed reflex error is rarely exactly 0, so the settling criterion "
            "(moving sum of |e| below the threshold) is out of reach; calibrate as a robot "
            "does (sensor_margin = 5) or judge by the mean |e| against the reflex alone"
        )
    return out


#: A learning rate this many times the rule's default is warned about even where the first
#: step saturates nothing (sar's bounded rows: each step then throws the rows to their bound).
FAR_FROM_DEFAULT = 1e4


def far_from_default_lr(cfg: RunConfig) -> str | None:
    """A warning when ``rule.lr`` is more than :data:`FAR_FROM_DEFAULT` times the rule's
    default learning rate, else None."""
    lr = cfg.rule.lr
    if cfg.rule.name == "reflex" or lr is None:
        return None
    default = cfg.default_lr
    if not default or lr <= FAR_FROM_DEFAULT * default:
        return None
    return (
        f"rule.lr = {lr:g} is {lr / default:.2g} times {cfg.rule.name}'s default ({default:g}): "
        "every learning step is far larger than any measured to learn (docs/results.md), so "
        "the weights jump from bound to bound"
    )


def first_step_saturation(cfg: RunConfig) -> str | None:
    """A warning when the learning rate is so large that one learning step with a full reflex
    error saturates a layer of the initial network (every neuron on the flat part of its
    activation, so no learning signal passes it again), else None.

    The probe: the network of ``cfg``'s seed sees a quarter of its predictors dark and a
    typical early reflex error (a tenth of ``world.error_gain``) for one learning step, then
    the slopes of the next forward passes are read.
    """
    if cfg.rule.name == "reflex" or cfg.network.activation == "linear":
        return None
    from sarlearn.agent import ClosedLoopAgent
    from sarlearn.loop import n_predictors_of, seed_generators

    try:
        agent = ClosedLoopAgent.from_config(
            cfg, n_predictors_of(cfg), rng=seed_generators(cfg.seed)[0]
        )
    except (SarlearnError, ValueError, ArithmeticError, MemoryError):
        return None  # reported by the run itself
    net = agent.network
    # The robot on the line: a quarter of the predictors (the middle of each row) see it.
    n = n_predictors_of(cfg)
    predictors = np.zeros((1, n))
    predictors[0, (np.arange(n) % 8) >= 6] = 1.0
    e = np.array([0.1 * abs(cfg.world.error_gain) or 1.0])  # a typical early error
    try:
        with np.errstate(all="ignore"):
            agent.step(e, predictors)  # forward, then the learning step
            agent.step(np.zeros(1), predictors)  # the forward pass after it
            agent.step(np.zeros(1), predictors)
    except SarlearnError:
        return _lr_message(cfg, "makes the weights overflow in the first learning step")
    peak = 0.25 if cfg.network.activation == "logistic" else 1.0
    for layer, slopes in enumerate(net.slopes):
        if float(np.max(np.abs(slopes))) < 1e-9 * peak:
            return _lr_message(
                cfg,
                f"saturates layer {layer + 1} of {net.n_layers} in the first learning step "
                "(every neuron on the flat part of its activation, so no learning signal "
                "passes it again)",
            )
    return None


def _lr_message(cfg: RunConfig, what: str) -> str:
    default = None if cfg.rule.name == "reflex" else cfg.default_lr
    hint = f"; the default for {cfg.rule.name} is {default:g}" if default else ""
    return f"rule.lr = {cfg.rule_config.learning_rate:g} is too large: it {what}{hint}"


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    if s < 2 * 365 * 86400:
        return f"{s / 86400:.0f} days"
    return f"{s / (365 * 86400):.3g} years"


__all__ = [
    "ANNOUNCE_STEPS",
    "LIMIT_VARIABLE",
    "MEMORY_FRACTION",
    "RunEstimate",
    "check_filters",
    "check_memory",
    "check_plan_size",
    "check_run_size",
    "estimate_memory",
    "estimate_run",
    "far_from_default_lr",
    "first_step_saturation",
    "memory_limit",
    "parse_size",
    "physical_memory",
    "setting_warnings",
]
