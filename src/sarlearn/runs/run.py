"""One closed-loop run from a config to an output folder: ``run_follow``.

The run is driven in chunks of :meth:`sarlearn.loop.ClosedLoop.run`; between chunks it updates
the progress bar, checks the stop conditions (success when asked, every robot off the line)
and every ``checkpoint_every`` steps saves a checkpoint plus a provisional summary. The records
stream through a :class:`~sarlearn.runs.stream.RunStream` (statistics, trace parts on disk, a
bounded view for the figures), so memory does not grow with the run's length. Stop conditions
are evaluated step by step and the chunk is cut at the step they happened, so the outcome does
not depend on the chunk size. A run stopping at success is
chunked so that it ends exactly at the confirming step (network and weights included); a run
ending off track keeps the network as at the end of that chunk (at most ``chunk`` steps later).

Output folder::

    config.json      the full config (resume reads it)
    summary.json     the numbers (see :func:`run_follow`), status and any error message
    trace.parquet    one row per step (every n-th with ``trace_every``; none with 0)
    learning.png     error and moving sum of |e| against the success threshold
    path.png         the path on the track, early and late
    weights.png      weight change per layer over time
    network.npz      the final network with its rule and filter state (absent for the reflex
                     alone); ``--load`` / ``RunConfig.load`` starts a run from it
    run.mp4 / .gif   with video=True
    frames.npy       camera frames (T, H, W), with record_ground=True and camera inputs
    trace.parts/     the trace so far in parts of at most 65,536 rows (removed once the run
                     has ended)
    report.html      everything above in one self-contained page (figures, video, tables)
    checkpoint.pkl   the last checkpoint (removed once the run has ended for good)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from sarlearn.agent import check_rule_name
from sarlearn.config import ConfigError, RunConfig
from sarlearn.errors import DivergenceError, NonFiniteError, OutputError
from sarlearn.loop import ClosedLoop
from sarlearn.metrics import SuccessCriterion
from sarlearn.runs import finish, outputs
from sarlearn.runs.finish import FINAL_STATUSES, run_measures, track_label
from sarlearn.runs.stream import RunStream, truncate
from sarlearn.store.lock import folder_lock

#: Steps per chunk between progress updates (checkpoints cut chunks further).
CHUNK = 250

#: The run folder's lock (held while a run writes there).
LOCK = ".run.lock"


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the output folder was written. Carries ``summary`` and ``out_dir``."""

    def __init__(self, summary: dict[str, Any], out_dir: Path) -> None:
        super().__init__(f"run interrupted at step {summary['steps']}; outputs in {out_dir}")
        self.summary = summary
        self.out_dir = out_dir


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM (``kill``, a scheduler's stop) acts like Ctrl-C: a run ends
    as ``interrupted`` with its folder written and resumable, instead of dying ``running``.

    A no-op outside the main thread (signal handlers can only be set there).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(TERMINATED)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: The message of a run stopped by SIGTERM.
TERMINATED = "terminated (SIGTERM)"


# ---------------------------------------------------------------------- helpers


def default_out_dir(cfg: RunConfig, root: str | Path = "runs") -> Path:
    """``runs/follow-<rule>-<track>-s<seed>-<YYYYmmdd-HHMMSS>`` (made unique if taken)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"follow-{cfg.rule.name}-{track_label(cfg.world.track)}-s{cfg.seed}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def load_run_config(out_dir: str | Path) -> RunConfig:
    """The config saved in a run folder (for resume)."""
    path = Path(out_dir) / outputs.CONFIG
    if not path.is_file():
        raise ConfigError(f"cannot resume: {path} not found (is {out_dir} a run folder?)")
    try:
        return RunConfig.model_validate(outputs.read_json(path))
    except Exception as exc:
        raise ConfigError(f"cannot resume: {path} is not a valid run config: {exc}") from exc


class _Progress:
    """A rich progress bar (or nothing): steps, moving mean |e|, steps/s."""

    def __init__(self, enabled: bool, total: int, start: int, label: str, console: Any) -> None:
        self.bar = None
        if not enabled:
            return
        from sarlearn.progress import progress_bar

        self.bar = progress_bar(
            "{task.description}",
            "|e| {task.fields[err]}",
            "{task.fields[rate]} steps/s",
            console=console,
        )
        self.bar.start()
        self.task = self.bar.add_task(label, total=total, completed=start, err="–", rate="–")

    def update(self, done: int, err: float, rate: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, err=f"{err:.3f}", rate=f"{rate:,.0f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


# ---------------------------------------------------------------------- the run


@dataclass(frozen=True)
class RunHooks:
    """What a caller that drives other hardware adds to a run (``sarlearn drive``)."""

    make_loop: Callable[[RunConfig], ClosedLoop] | None = None
    on_end: Callable[[], None] | None = None
    extra_summary: Callable[[Any], dict[str, Any]] | None = None


def run_follow(
    cfg: RunConfig | None,
    out_dir: str | Path | None = None,
    progress: bool = False,
    resume: bool = False,
    video: bool = False,
    *,
    record_ground: bool = False,
    figures: bool = True,
    chunk: int = CHUNK,
    on_chunk: Callable[[ClosedLoop, int], None] | None = None,
    console: Any = None,
    on_records: Callable[[dict[str, np.ndarray], Any], None] | None = None,
    trace_every: int = 1,
    make_loop: Callable[[RunConfig], ClosedLoop] | None = None,
    on_end: Callable[[], None] | None = None,
    extra_summary: Callable[[Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run one closed-loop experiment and write its output folder; return the summary.

    Args:
        cfg: the whole experiment; with ``resume=True`` it may be None (the folder's
            config is used) and must otherwise equal it.
        out_dir: output folder; default a fresh ``runs/follow-<rule>-<track>-s<seed>-<time>``.
        progress: show a rich progress bar.
        resume: continue the interrupted run in ``out_dir`` from its last checkpoint.
        video: also write ``run.mp4`` (or ``run.gif`` when ffmpeg is unavailable).
        figures: draw learning.png, path.png and weights.png (about a second; sweeps of many
            short runs may skip them).
        record_ground: also log every ground sensor (``ground_<k>`` columns of the trace), so
            :class:`~sarlearn.runs.replay.ReplayRobot` can replay the run.
        chunk: steps per chunk between progress updates and stop checks.
        on_chunk: called as ``on_chunk(loop, steps_done)`` after every chunk.
        console: the rich console of the progress bar.
        on_records: called as ``on_records(records, loop)`` with every chunk's records
            (``ClosedLoop.run``'s dict) as soon as they exist (the live view reads them).
        trace_every: keep the trace row of every n-th step (steps ``0, n, 2n, ...``); 0 keeps
            no trace. A resumed run keeps the value it started with.
        make_loop: builds the loop from the config instead of the simulator's engine; its
            robot is an outside object (hardware, a twin): checkpoints refer to it by name
            and a resumed run drives the robot of the new ``make_loop`` (``sarlearn drive``).
        on_end: called as soon as the loop has stopped for any reason, before the outputs
            are written (``sarlearn drive`` stops the motors there).
        extra_summary: called with the loop; its keys are added to every summary written.

    Returns:
        The summary written to ``summary.json``: ``rule``, ``seed``, ``track``, ``steps``
        (run), ``steps_requested``, ``steps_to_success`` (None if never), ``success``,
        the settling measures of :func:`sarlearn.metrics.summarise_settling`
        (``settled_step``, ``settled``, ``settle_window``, ``above_threshold_fraction``,
        ``relapses``, ``steering_flips_per_1000``, ``saturated_steering_fraction``,
        ``dead_units``, ``dead_layers``), ``mean_abs_error``, ``mean_abs_error_first_1000``,
        ``mean_abs_error_last_1000``,
        ``final_moving_sum``, ``off_track_steps``, ``steps_per_second``, ``weight_change``
        (final, per layer), ``interrupted``, ``status`` (``finished``, ``interrupted``,
        ``diverged``, ``off_track`` or ``failed``), ``message``, ``resumed_from``,
        ``out_dir``, ``files`` and ``config``.

    Raises:
        RunInterrupted: on Ctrl-C, after writing the folder (a KeyboardInterrupt).
        ConfigError: bad config, nothing to resume, a checkpoint of another config, or
            another process running in ``out_dir``.
        Exception: any crash is re-raised after writing the folder (status ``failed``).
    """
    if resume:
        if out_dir is None:
            raise ConfigError("resume needs the run folder to continue")
        saved = load_run_config(out_dir)
        if cfg is not None and cfg != saved:
            raise ConfigError(f"cannot resume {out_dir} with a different config")
        cfg = saved
    if cfg is None:
        raise ConfigError("run_follow needs a config")
    check_rule_name(cfg.rule.name)
    if trace_every < 0:
        raise ConfigError(f"trace_every must be >= 0 (0: no trace), got {trace_every}")
    if record_ground and trace_every != 1:
        raise ConfigError("recording the sensors for replay needs every step (trace_every=1)")
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg)
    if not resume:
        check_out_dir(out)
    from sarlearn.engine import make_closed_loop  # numba: imported only when running

    # Built before the folder is locked (and so created): impossible settings leave no folder.
    hooks = RunHooks(make_loop, on_end, extra_summary)
    if make_loop is None:
        loop = make_closed_loop(cfg, population=1, engine=cfg.engine, record_ground=record_ground)
    else:
        loop = make_loop(cfg)
    with _run_lock(out):
        return _run_locked(
            cfg, loop, out, resume, progress, video, figures, chunk, on_chunk, console,
            on_records, trace_every, hooks,
        )  # fmt: skip


@contextlib.contextmanager
def _run_lock(out: Path) -> Iterator[None]:
    """Hold the run folder's lock: a second run given the same folder is refused."""
    busy = (
        f"another run ({{holder}}) is writing to {out}; wait for it, choose another folder, or "
        "delete {path} if that process is gone"
    )
    try:
        lock = folder_lock(out, LOCK, busy, ConfigError)
        lock.__enter__()
    except OSError as exc:
        raise OutputError(f"cannot write the run folder {out}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def _run_locked(
    cfg: RunConfig,
    loop: Any,
    out: Path,
    resume: bool,
    progress: bool,
    video: bool,
    figures: bool,
    chunk: int,
    on_chunk: Callable[[ClosedLoop, int], None] | None,
    console: Any,
    on_records: Callable[[dict[str, np.ndarray], Any], None] | None,
    trace_every: int,
    hooks: RunHooks,
) -> dict[str, Any]:
    """:func:`run_follow` once the folder is locked."""
    crit = SuccessCriterion.from_config(cfg)
    stream = RunStream(crit, out / outputs.PARTS, trace_every)
    resumed_from: int | None = None
    shared = {"track": getattr(loop.robot, "track", None)}
    if hooks.make_loop is not None:
        shared["robot"] = loop.robot  # hardware is not pickled: resume plugs in the new one
    ckpt_path = out / outputs.CHECKPOINT
    if resume:
        old = _read_summary(out)
        if old is not None and old.get("status") in FINAL_STATUSES:
            _forget_checkpoint(out)  # killed after its final summary: only cleaning was left
            return old  # nothing left to do
        (out / ERROR_FILE).unlink(missing_ok=True)  # the earlier failure is being retried
        if ckpt_path.is_file():
            loop, stream, resumed_from = _restore(ckpt_path, shared, cfg)
        else:
            resumed_from = 0  # interrupted before its first checkpoint: start again
            _forget_checkpoint(out)
    else:
        if (out / outputs.SUMMARY).exists() or ckpt_path.exists():
            raise ConfigError(f"{out} already holds a run; resume it or choose another folder")
        _prepare_out_dir(out, cfg)

    _compile(loop, progress, console)
    start_step = loop.t
    label = f"{cfg.rule.name} on {cfg.world.track}"
    bar = _Progress(progress, cfg.steps, start_step, label, console)
    status, message, exc_out = "finished", "", None
    clock = _Clock()
    try:
        status, message = _drive(loop, stream, cfg, out, chunk, bar, clock, on_chunk, on_records,
                                 resumed_from, shared, hooks.extra_summary)  # fmt: skip
    except KeyboardInterrupt as exc:
        stream.add(loop.partial)
        status, message = "interrupted", str(exc) or "interrupted by the user (Ctrl-C)"
        exc_out = "interrupt"
    except (DivergenceError, NonFiniteError) as exc:
        stream.add(loop.partial)
        status = "diverged"
        message = f"learning diverged at step {stream.n_steps}: {exc}"
    except Exception as exc:
        stream.add(loop.partial)
        status = "failed"
        message = f"{type(exc).__name__}: {exc}"
        exc_out = exc
        with contextlib.suppress(Exception):
            outputs.atomic_write_bytes(out / ERROR_FILE, traceback.format_exc().encode())
    finally:
        bar.close()
        if hooks.on_end is not None:
            hooks.on_end()

    run_wall = time.perf_counter() - clock.start
    n_run = max(0, stream.n_steps - start_step)
    # The checkpoint stays until the final summary is on disk: a kill while the outputs are
    # written resumes from it instead of starting again from step 0.
    summary = finish.write_outputs(
        out, cfg, stream, loop, status, message, resumed_from, (clock.loop, run_wall),
        n_run, final=True, figures_too=figures, video=video, extra=hooks.extra_summary,
    )  # fmt: skip
    if status in FINAL_STATUSES:
        _forget_checkpoint(out)  # nothing left to resume
    if exc_out == "interrupt":
        raise RunInterrupted(summary, out)
    if isinstance(exc_out, BaseException):
        exc_out.add_note(f"partial outputs of the run are in {out}")
        raise exc_out
    return summary


class _Clock:
    """The run's clocks: its start, the seconds in the loop, the last checkpoint and summary."""

    def __init__(self) -> None:
        self.start = self.ckpt = time.perf_counter()
        self.loop = 0.0
        self.summary = -math.inf  # the first checkpoint writes a provisional summary


def _drive(
    loop: Any,
    stream: RunStream,
    cfg: RunConfig,
    out: Path,
    chunk: int,
    bar: _Progress,
    clock: _Clock,
    on_chunk: Callable[[ClosedLoop, int], None] | None,
    on_records: Callable[[dict[str, np.ndarray], Any], None] | None,
    resumed_from: int | None,
    shared: dict[str, Any],
    extra: Callable[[Any], dict[str, Any]] | None = None,
) -> tuple[str, str]:
    """Run the loop chunk by chunk to the end or a stop; returns the status and message."""
    stats = stream.stats
    start_step = loop.t
    while loop.t < cfg.steps:
        to_ckpt = cfg.checkpoint_every - loop.t % cfg.checkpoint_every
        n = min(chunk, to_ckpt, cfg.steps - loop.t)
        if cfg.stop_at_success:
            n = min(n, stats.steps_to_confirmation())
        t_chunk = time.perf_counter()
        try:
            # Divergence is detected by explicit finiteness checks (DivergenceError), so
            # numpy's overflow warnings would only garble the progress bar.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                rec = loop.run(n)
        finally:
            clock.loop += time.perf_counter() - t_chunk
        if on_records is not None:
            on_records(rec, loop)
        stop = _stop(stream, rec, cfg.stop_at_success)
        if stop is not None:
            return stop
        done = loop.t
        if bar.bar is not None:
            wall = time.perf_counter() - clock.start
            bar.update(done, stream.recent_abs_error(), (done - start_step) / max(wall, 1e-9))
        due = time.perf_counter() - clock.ckpt >= MIN_CHECKPOINT_SECONDS
        if done % cfg.checkpoint_every == 0 and done < cfg.steps and due:
            _checkpoint(out / outputs.CHECKPOINT, loop, stream, shared, cfg)
            clock.ckpt = time.perf_counter()
            if time.perf_counter() - clock.summary >= SUMMARY_EVERY_S:
                times = (clock.loop, time.perf_counter() - clock.start)
                finish.write_outputs(
                    out, cfg, stream, loop, "running", "", resumed_from, times,
                    done - start_step, final=False, extra=extra,
                )  # fmt: skip
                clock.summary = time.perf_counter()
        if on_chunk is not None:
            on_chunk(loop, done)
    return "finished", ""


def _stop(
    stream: RunStream, rec: dict[str, np.ndarray], at_success: bool
) -> tuple[str, str] | None:
    """Take in a chunk; if the run must end within it, take in its steps up to the stop and
    return the status and message."""
    off = bool(np.asarray(rec["off_track"]).all(axis=0).any())
    if not at_success and not off:
        stream.push(rec)  # nothing can stop the run here: taken in with the next ones
        return None
    stream.settle()
    scan = stream.stats.scan(rec["error"][0]) if at_success else None
    stop = stream.stats.stop_in(rec, scan)
    if stop is None:
        stream.add(rec, scan)
        return None
    stream.add(truncate(rec, stop[0] + 1))
    return stop[1], stop[2]


#: File holding the traceback of a crashed run (removed when the run is resumed).
ERROR_FILE = "error.txt"

#: Least seconds between two checkpoints: a checkpoint is taken at the first multiple of
#: ``checkpoint_every`` steps at least this long after the previous one, so that a fast loop
#: does not spend its time writing checkpoints (each costs a few fsyncs, ~10-50 ms) and a kill
#: loses at most about ``max(checkpoint_every steps, MIN_CHECKPOINT_SECONDS)`` of work.
MIN_CHECKPOINT_SECONDS = 2.0

#: Seconds between provisional summaries (at the first checkpoint, then at the first checkpoint
#: this long after the previous summary): each one reads the whole error trace, so writing it
#: at every checkpoint of a long run would make the run's cost quadratic.
SUMMARY_EVERY_S = 10.0


def check_out_dir(out: Path) -> None:
    """Refuse an output path that cannot be a run folder (an existing file)."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {out} is an existing file; choose a folder")


def _prepare_out_dir(out: Path, cfg: RunConfig) -> None:
    """Create the run folder and write its config; any OS error becomes one clear line."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        _forget_checkpoint(out)  # stale parts of a run killed before its first checkpoint
        outputs.write_json(out / outputs.CONFIG, cfg.model_dump(mode="json"))
    except OSError as exc:
        raise OutputError(f"cannot write the run folder {out}: {exc.strerror or exc}") from None


#: Config fields a resumed run may change: its length (a user extends a run by raising
#: ``steps`` in config.json).
RESUMABLE_CHANGES = ("steps",)


def config_hash(cfg: RunConfig) -> str:
    """A hash of the config (seed included) but its length: a checkpoint belongs to it alone."""
    data = cfg.model_dump(mode="json")
    for key in RESUMABLE_CHANGES:
        data.pop(key, None)
    text = json.dumps(data, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _checkpoint(
    ckpt_path: Path, loop: Any, stream: RunStream, shared: dict[str, Any], cfg: RunConfig
) -> None:
    """Write the buffered trace rows as a part, then save the loop and the stream.

    The part goes first: a kill between the two leaves a part beyond the checkpoint, which
    resume discards. The checkpoint holds the live objects and the stream's bounded state
    (no records), so its cost does not grow with the run.
    """
    stream.settle()
    stream.trace.flush()
    state = {"loop": loop, "stream": stream, "config_hash": config_hash(cfg)}
    outputs.save_checkpoint(ckpt_path, state, shared)


def _restore(ckpt_path: Path, shared: dict[str, Any], cfg: RunConfig) -> tuple[Any, RunStream, int]:
    """Load the checkpoint; drop the trace parts written after it."""
    try:
        state = outputs.load_checkpoint(ckpt_path, shared)
        loop, stream = state["loop"], state["stream"]
    except Exception as exc:  # e.g. written by another version of the code
        raise ConfigError(f"cannot resume: {ckpt_path} is unreadable ({exc})") from exc
    if state.get("config_hash") != config_hash(cfg):
        raise ConfigError(
            f"cannot resume: {ckpt_path} was written by a run of another config (rule, track, "
            f"seed or settings differ from {ckpt_path.parent / outputs.CONFIG}); restore that "
            "run's config.json or start a new run in another folder"
        )
    try:
        stream.trace.folder = ckpt_path.parent / outputs.PARTS  # the folder may have moved
        stream.trace.forget_after(loop.t)
    except ValueError as exc:
        raise ConfigError(f"cannot resume: {exc}") from exc
    return loop, stream, loop.t


def _forget_checkpoint(out: Path) -> None:
    """Remove the checkpoint and the trace parts (the run has ended for good)."""
    (out / outputs.CHECKPOINT).unlink(missing_ok=True)
    shutil.rmtree(out / outputs.PARTS, ignore_errors=True)


def _compile(loop: Any, progress: bool, console: Any) -> None:
    """Compile the fast engine before the clock starts (a no-op step: ``run(0)``), so that
    steps/s measure the loop, and say so: the first run on a machine compiles for ~20 s."""
    from sarlearn.engine import FastClosedLoop

    if not isinstance(loop, FastClosedLoop):
        return
    if not progress:
        loop.run(0)
        return
    from rich.console import Console

    with (console or Console()).status("compiling the fast engine (cached after the first run)..."):
        loop.run(0)


def _read_summary(out: Path) -> dict[str, Any] | None:
    path = out / outputs.SUMMARY
    if not path.is_file():
        return None
    try:
        return outputs.read_json(path)
    except Exception:
        return None


__all__ = [
    "CHUNK",
    "FINAL_STATUSES",
    "RunInterrupted",
    "config_hash",
    "default_out_dir",
    "load_run_config",
    "run_follow",
    "run_measures",
    "terminate_as_interrupt",
    "track_label",
]
