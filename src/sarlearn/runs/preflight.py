"""Checks before a run starts: settings that cannot work, and runs too large to hold.

``setting_warnings(cfg)`` names settings that are valid but defeat the experiment (a line
wider than the gap between the reflex sensors, a learning rate so large that the first
learning step saturates a layer); ``check_run_size(cfg, out)`` estimates time, memory and disk
of a run and refuses one that cannot fit (:data:`MEMORY_FRACTION` of the machine's memory, or
the free space of the output file system).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.errors import ConfigError, SarlearnError
from sarlearn.runs.stream import FLUSH_ROWS

#: Bytes of memory of a run whatever its length: it streams its records (the process and its
#: libraries, bounded statistics, the figures' view, one part of trace being written; peak
#: 500-530 MB measured from 10,000 to 5,000,000 steps with benchmarks/scale.py), plus 16
#: per logged sensor value of the steps buffered before a part is written.
RUN_MEMORY = 700 * 2**20
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
        memory=RUN_MEMORY + min(cfg.steps, FLUSH_ROWS) * 16 * extra,
        disk=cfg.steps * (DISK_PER_STEP + 8 * extra),
    )


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
    est = estimate_run(cfg, record_ground)
    ram = physical_memory()
    if ram is not None and est.memory > MEMORY_FRACTION * ram:
        raise ConfigError(
            f"this run needs {est.describe()}; this machine has {_size(ram)} of memory "
            f"(limit: {MEMORY_FRACTION:.0%} of it)"
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
    return warnings


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
    except (SarlearnError, ValueError):
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
    from sarlearn.config import DEFAULT_LR

    default = DEFAULT_LR.get(cfg.rule.name)
    hint = f"; the default for {cfg.rule.name} is {default:g}" if default else ""
    return f"rule.lr = {cfg.rule.learning_rate:g} is too large: it {what}{hint}"


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
    "MEMORY_FRACTION",
    "RunEstimate",
    "check_run_size",
    "estimate_run",
    "first_step_saturation",
    "physical_memory",
    "setting_warnings",
]
