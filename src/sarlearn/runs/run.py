"""One closed-loop run from a config to an output folder: ``run_follow``.

The run is driven in chunks of :meth:`sarlearn.loop.ClosedLoop.run`; between chunks it updates
the progress bar, checks the stop conditions (success when asked, every robot off the line)
and every ``checkpoint_every`` steps saves a checkpoint plus a provisional summary and trace.
Stop conditions are evaluated on the whole trace and the trace is cut at the step they
happened, so the outcome does not depend on the chunk size. A run stopping at success is
chunked so that it ends exactly at the confirming step (network and weights included); a run
ending off track keeps the network as at the end of that chunk (at most ``chunk`` steps later).

Output folder::

    config.json      the full config (resume reads it)
    summary.json     the numbers (see :func:`run_follow`), status and any error message
    trace.parquet    one row per step
    learning.png     error and moving sum of |e| against the success threshold
    path.png         the path on the track, early and late
    weights.png      weight change per layer over time
    network.npz      the final network with its rule and filter state (absent for the reflex
                     alone); ``--load`` / ``RunConfig.load`` starts a run from it
    run.mp4 / .gif   with video=True
    frames.npy       camera frames (T, H, W), with record_ground=True and camera inputs
    trace.parts/     the trace so far, one file per checkpoint (removed once the run has ended)
    report.html      everything above in one self-contained page (figures, video, tables)
    checkpoint.pkl   the last checkpoint (removed once the run has ended for good)
"""

from __future__ import annotations

import contextlib
import math
import platform
import shutil
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from sarlearn import __version__
from sarlearn.agent import check_rule_name
from sarlearn.config import ConfigError, RunConfig
from sarlearn.errors import DivergenceError, NonFiniteError, OutputError
from sarlearn.loop import ClosedLoop
from sarlearn.metrics import (
    SuccessCriterion,
    above_threshold,
    moving_sum,
    steering_max,
    steps_to_success,
    success_confirmed_at,
    success_mask,
    summarise_errors,
    summarise_settling,
)
from sarlearn.runs import outputs

#: Steps per chunk between progress updates (checkpoints cut chunks further).
CHUNK = 250

#: Statuses after which there is nothing left to resume.
FINAL_STATUSES = ("finished", "diverged", "off_track")


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


# ---------------------------------------------------------------------- records of the run


class Records:
    """The per-step records of the run (population-first arrays), accumulated chunk by chunk."""

    def __init__(self) -> None:
        self.chunks: list[dict[str, np.ndarray]] = []
        self._columns: dict[str, tuple[int, np.ndarray]] = {}
        self._saved = 0  # chunks already written as trace parts

    def unsaved(self) -> dict[str, np.ndarray] | None:
        """The chunks not yet written as a trace part, merged (None if there are none); they
        count as written from now on."""
        new = self.chunks[self._saved :]
        self._saved = len(self.chunks)
        if not new:
            return None
        return {k: np.concatenate([c[k] for c in new], axis=self._axis(k)) for k in new[0]}

    def add(self, rec: dict[str, np.ndarray] | None) -> None:
        """Append a chunk as returned by ClosedLoop.run (ignores None and empty chunks)."""
        if rec is not None and len(rec["step"]):
            self.chunks.append(rec)

    @staticmethod
    def _axis(key: str) -> int:
        return 0 if key in ("step", "weight_steps") else 1

    def column(self, key: str) -> np.ndarray:
        """One record over the whole run, e.g. ``error`` ``(P, T)``.

        Cached and extended chunk by chunk, so checking the run after every chunk stays cheap
        without merging the large records (the ground sensors) each time.
        """
        done, arr = self._columns.get(key, (0, None))
        new = [c[key] for c in self.chunks[done:]]
        if arr is None or new:
            parts = new if arr is None else [arr, *new]
            arr = np.concatenate(parts, axis=self._axis(key))
            self._columns[key] = (len(self.chunks), arr)
        return arr

    def merged(self) -> dict[str, np.ndarray]:
        """All chunks concatenated along time (``(P, T)`` arrays, ``step`` ``(T,)``)."""
        if not self.chunks:
            return {}
        if len(self.chunks) > 1:
            merged = {key: self.column(key) for key in self.chunks[0]}
            self._saved = 1 if self._saved >= len(self.chunks) else 0
            self.chunks = [merged]
            self._columns = {k: (1, v) for k, v in merged.items()}
        return self.chunks[0]

    def truncate(self, n_steps: int) -> None:
        """Keep the first ``n_steps`` steps (and the weight samples taken within them)."""
        rec = self.merged()
        if not rec:
            return
        keep = rec["step"] < n_steps
        wkeep = rec["weight_steps"] < n_steps
        for key, val in rec.items():
            if key == "step":
                rec[key] = val[keep]
            elif key == "weight_steps":
                rec[key] = val[wkeep]
            elif key == "weight_change":
                rec[key] = val[:, wkeep]
            else:
                rec[key] = val[:, keep]
        self._columns = {}

    @property
    def n_steps(self) -> int:
        """Number of steps recorded."""
        return sum(len(c["step"]) for c in self.chunks)

    def errors(self) -> np.ndarray:
        """The error trace of agent 0 ``(T,)``."""
        return self.column("error")[0] if self.chunks else np.zeros(0)


def run_measures(cfg: RunConfig, stats: dict[str, Any], settle: dict[str, Any]) -> dict[str, Any]:
    """The leading keys of a run's summary: what ran, and what its error trace measures
    (``stats`` of :func:`summarise_errors`, ``settle`` of :func:`summarise_settling`).
    Shared by :func:`run_follow` and the sweeps' engine populations."""
    return {
        "rule": cfg.rule.name,
        "lr": None if cfg.rule.name == "reflex" else cfg.rule.learning_rate,
        "layers": list(cfg.network.layers),
        "init_align": None if cfg.rule.name == "reflex" else cfg.init_align,
        "input_max_norm": None if cfg.rule.name == "reflex" else cfg.input_max_norm,
        "predictor_mode": cfg.predictor_mode,
        "seed": cfg.seed,
        "track": cfg.world.track,
        "inputs": cfg.world.inputs,
        "steps": int(stats["steps"]),
        "steps_requested": cfg.steps,
        "steps_to_success": stats["steps_to_success"],
        "success": stats["steps_to_success"] is not None,
        **settle,
        "mean_abs_error": stats["mean_abs_error"],
        "mean_abs_error_first_1000": stats["mean_abs_error_first_1000"],
        "mean_abs_error_last_1000": stats["mean_abs_error_last_1000"],
        "final_moving_sum": stats["final_moving_sum"],
        "off_track_steps": stats["off_track_steps"],
    }


def trace_table(rec: dict[str, np.ndarray], criterion: SuccessCriterion | None = None) -> Any:
    """The trace DataFrame of agent 0, with the sampled weight change per layer carried
    forward to every step as columns ``weight_change_l<i>`` (0 before the first sample).

    Per-layer records become columns ``saturated_<i>``; with a ``criterion`` the trace also
    has ``moving_sum`` (of |e| over the success window) and ``above_threshold`` (the flag the
    settling measures count; False before the criterion's first judged step).
    """
    cols = {k: v for k, v in rec.items() if k not in ("weight_steps", "weight_change", "frame")}
    if not cols:
        cols = {"step": np.zeros(0, np.int64), "error": np.zeros((1, 0))}
    if criterion is not None and "error" in cols:
        cols["moving_sum"] = moving_sum(np.abs(cols["error"]), criterion.window)
        cols["above_threshold"] = above_threshold(cols["error"], criterion)
    frame = outputs.trace_frame(cols, agent=0)
    wsteps, wvals = rec.get("weight_steps"), rec.get("weight_change")
    if wsteps is not None and wvals is not None and len(wsteps) and len(frame):
        # Sample k was taken after step wsteps[k]: it holds from that step on.
        idx = np.searchsorted(wsteps, frame["step"].to_numpy(), side="right") - 1
        for layer in range(wvals.shape[2]):
            values = wvals[0, np.maximum(idx, 0), layer]
            frame[f"weight_change_l{layer}"] = np.where(idx >= 0, values, 0.0)
    return frame


# ---------------------------------------------------------------------- helpers


def track_label(track: str) -> str:
    """A short name for a track: the built-in name, the image file's stem, or a generated
    track's name made safe for file names (``random:17,width=6`` -> ``random17-width6``)."""
    if track.startswith("random:"):
        from sarlearn.stages.world.family import track_label as generated_label

        return generated_label(track)
    p = Path(track)
    return p.stem if p.suffix else track


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
    make_loop: Callable[[RunConfig], ClosedLoop] | None = None,
    on_end: Callable[[], None] | None = None,
    extra_summary: Callable[[Records], dict[str, Any]] | None = None,
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
        make_loop: builds the loop from the config instead of the simulator's engine; its
            robot is an outside object (hardware, a twin): checkpoints refer to it by name
            and a resumed run drives the robot of the new ``make_loop`` (``sarlearn drive``).
        on_end: called as soon as the loop has stopped for any reason, before the outputs
            are written (``sarlearn drive`` stops the motors there).
        extra_summary: called with the run's :class:`Records`; its keys are added to every
            summary written.

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
        ConfigError: bad config, or nothing to resume.
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
    out = Path(out_dir) if out_dir is not None else default_out_dir(cfg)
    crit = SuccessCriterion.from_config(cfg)

    from sarlearn.engine import make_closed_loop  # numba: imported only when running

    if make_loop is None:
        loop = make_closed_loop(cfg, population=1, engine=cfg.engine, record_ground=record_ground)
    else:
        loop = make_loop(cfg)
    records = Records()
    resumed_from: int | None = None
    ckpt_path = out / outputs.CHECKPOINT
    shared = {"track": getattr(loop.robot, "track", None)}
    if make_loop is not None:
        shared["robot"] = loop.robot  # hardware is not pickled: resume plugs in the new one
    if resume:
        old = _read_summary(out)
        if old is not None and old.get("status") in FINAL_STATUSES:
            _forget_checkpoint(out)  # killed after its final summary: only cleaning was left
            return old  # nothing left to do
        (out / ERROR_FILE).unlink(missing_ok=True)  # the earlier failure is being retried
        if ckpt_path.is_file():
            loop, resumed_from = _restore(out, ckpt_path, shared, records)
        else:
            resumed_from = 0  # interrupted before its first checkpoint: start again
            _forget_checkpoint(out)
    else:
        check_out_dir(out)
        if (out / outputs.SUMMARY).exists() or ckpt_path.exists():
            raise ConfigError(f"{out} already holds a run; resume it or choose another folder")
        _prepare_out_dir(out, cfg)

    _compile(loop, progress, console)
    t_summary = -math.inf  # the first checkpoint writes a provisional summary
    start_step = loop.t
    bar = _Progress(
        progress, cfg.steps, start_step, f"{cfg.rule.name} on {cfg.world.track}", console
    )
    status, message, exc_out = "finished", "", None
    loop_time = 0.0
    t_start = t_ckpt = time.perf_counter()
    try:
        while loop.t < cfg.steps:
            to_ckpt = cfg.checkpoint_every - loop.t % cfg.checkpoint_every
            n = min(chunk, to_ckpt, cfg.steps - loop.t)
            if cfg.stop_at_success:
                n = min(n, _steps_to_confirmation(records.errors(), crit))
            t_chunk = time.perf_counter()
            try:
                # Divergence is detected by explicit finiteness checks (DivergenceError), so
                # numpy's overflow warnings would only garble the progress bar.
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    rec = loop.run(n)
            finally:
                loop_time += time.perf_counter() - t_chunk
            records.add(rec)
            if on_records is not None:
                on_records(rec, loop)
            stop = _stop_step(records, cfg, crit)
            if stop is not None:
                records.truncate(stop[0] + 1)
                status, message = stop[1], stop[2]
                break
            done = loop.t
            err = float(np.mean(np.abs(records.errors()[-crit.window :])))
            wall = time.perf_counter() - t_start
            bar.update(done, err, (done - start_step) / max(wall, 1e-9))
            due = time.perf_counter() - t_ckpt >= MIN_CHECKPOINT_SECONDS
            if done % cfg.checkpoint_every == 0 and done < cfg.steps and due:
                _checkpoint(out, ckpt_path, loop, records, shared)
                t_ckpt = time.perf_counter()
                if time.perf_counter() - t_summary >= SUMMARY_EVERY_S:
                    _write_outputs(
                        out,
                        cfg,
                        crit,
                        records,
                        loop,
                        "running",
                        "",
                        resumed_from,
                        (loop_time, time.perf_counter() - t_start),
                        done - start_step,
                        final=False,
                        extra=extra_summary,
                    )
                    t_summary = time.perf_counter()
            if on_chunk is not None:
                on_chunk(loop, done)
    except KeyboardInterrupt as exc:
        records.add(loop.partial)
        status, message = "interrupted", str(exc) or "interrupted by the user (Ctrl-C)"
        exc_out = "interrupt"
    except (DivergenceError, NonFiniteError) as exc:
        records.add(loop.partial)
        status = "diverged"
        message = f"learning diverged at step {records.n_steps}: {exc}"
    except Exception as exc:
        records.add(loop.partial)
        status = "failed"
        message = f"{type(exc).__name__}: {exc}"
        exc_out = exc
        with contextlib.suppress(Exception):
            outputs.atomic_write_bytes(out / ERROR_FILE, traceback.format_exc().encode())
    finally:
        bar.close()
        if on_end is not None:
            on_end()

    run_wall = time.perf_counter() - t_start
    n_run = max(0, records.n_steps - start_step)
    # The checkpoint stays until the final summary is on disk: a kill while the outputs are
    # written resumes from it instead of starting again from step 0.
    summary = _write_outputs(
        out,
        cfg,
        crit,
        records,
        loop,
        status,
        message,
        resumed_from,
        (loop_time, run_wall),
        n_run,
        final=True,
        figures_too=figures,
        video=video,
        extra=extra_summary,
    )
    if status in FINAL_STATUSES:
        _forget_checkpoint(out)  # nothing left to resume
    if exc_out == "interrupt":
        raise RunInterrupted(summary, out)
    if isinstance(exc_out, BaseException):
        exc_out.add_note(f"partial outputs of the run are in {out}")
        raise exc_out
    return summary


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


def _checkpoint(
    out: Path, ckpt_path: Path, loop: Any, records: Records, shared: dict[str, Any]
) -> None:
    """Append the records since the last checkpoint as a trace part, then save the loop.

    The part goes first: a kill between the two leaves a part beyond the checkpoint, which
    resume discards. The checkpoint holds the live objects only (no records), so its cost
    does not grow with the run.
    """
    part = records.unsaved()
    if part is not None:
        outputs.write_part(out, part)
    outputs.save_checkpoint(ckpt_path, {"loop": loop, "records_steps": loop.t}, shared)


def _restore(
    out: Path, ckpt_path: Path, shared: dict[str, Any], records: Records
) -> tuple[Any, int]:
    """Load the checkpoint and the trace parts before it into ``records``."""
    try:
        state = outputs.load_checkpoint(ckpt_path, shared)
        loop = state["loop"]
        if "records" in state:  # written before traces were saved in parts
            records.add(state["records"])
        else:
            for part in outputs.read_parts(out, loop.t):
                records.add(part)
    except Exception as exc:  # e.g. written by another version of the code
        raise ConfigError(f"cannot resume: {ckpt_path} is unreadable ({exc})") from exc
    records.unsaved()  # all of it is on disk already
    return loop, loop.t


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


def _stop_step(
    records: Records, cfg: RunConfig, crit: SuccessCriterion
) -> tuple[int, str, str] | None:
    """The step at which the run must end early, with its status and message, if any."""
    if cfg.stop_at_success:
        start = steps_to_success(records.errors(), crit)
        done = success_confirmed_at(start, crit)
        if done is not None:
            return done, "finished", f"stopped at success (learned at step {start})"
    # Steps are contiguous from 0 (resume restores the earlier records), so index = step.
    off = records.column("off_track").all(axis=0)
    if off.any():
        first = int(np.argmax(off))
        return first, "off_track", f"the robot lost the line (off track at step {first})"
    return None


def _steps_to_confirmation(errors: np.ndarray, crit: SuccessCriterion) -> int:
    """Steps until a success stretch could be confirmed at the earliest.

    Capping the next chunk at this makes a run that stops at success stop exactly at the
    confirming step whatever the chunk size: a stretch that starts inside the chunk cannot
    also be confirmed inside it.
    """
    mask = success_mask(errors, crit)
    if not mask.size or not mask[-1]:
        return crit.hold
    broken = np.flatnonzero(~mask)
    run = mask.size - (broken[-1] + 1 if broken.size else 0)
    return max(1, crit.hold - run)


def _read_summary(out: Path) -> dict[str, Any] | None:
    path = out / outputs.SUMMARY
    if not path.is_file():
        return None
    try:
        return outputs.read_json(path)
    except Exception:
        return None


def _write_outputs(
    out: Path,
    cfg: RunConfig,
    crit: SuccessCriterion,
    records: Records,
    loop: ClosedLoop,
    status: str,
    message: str,
    resumed_from: int | None,
    times: tuple[float, float],
    n_run: int,
    *,
    final: bool,
    figures_too: bool = True,
    video: bool = False,
    extra: Callable[[Records], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write the summary, and at the end of the run (``final``) the trace, the figures (if
    ``figures_too``), the network and the video (if ``video``); never let one failure hide the
    others. ``times`` are the seconds spent in the loop and in the whole run (checkpoints
    included) for the ``n_run`` steps of this session."""
    loop_time, run_wall = times
    # Provisional summaries read the cached columns only: merging every record (or writing
    # the trace) at each checkpoint would make a long run's cost quadratic.
    rec = records.merged() if final else {}
    errors = records.errors()
    off = records.column("off_track")[0] if records.chunks else None
    stats = summarise_errors(errors, off, crit, span=1000)
    has_net = loop.agent.network is not None
    # Cached columns (a provisional summary must not merge every record).
    steering = records.column("steering")[0] if records.chunks else None
    saturated = (
        records.column("saturated")[0]
        if records.chunks and "saturated" in records.chunks[0]
        else None
    )
    settle = summarise_settling(
        errors,
        steering,
        saturated,
        crit,
        steering_max(cfg.network.readout, cfg.network.activation) if has_net else None,
    )
    wsamples = records.column("weight_change") if records.chunks else None
    wc = wsamples[0] if wsamples is not None and wsamples.shape[1] else None
    with np.errstate(over="ignore", invalid="ignore"):  # huge weights: inf, written as null
        final_wc = loop.agent.weight_change()[0] if status != "diverged" else None
    if final_wc is None:
        final_wc = wc[-1] if wc is not None else np.zeros(loop.agent.n_layers)
    problems: list[str] = []

    def attempt(name: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception as exc:  # a figure must not cost us the summary
            problems.append(f"{name}: {type(exc).__name__}: {exc}")

    if final:
        attempt(
            "trace.parquet",
            lambda: outputs.write_trace(out / outputs.TRACE, trace_table(rec, crit)),
        )
    if final and figures_too and rec:
        from sarlearn.reports import figures  # matplotlib: imported only when drawing

        label = f"{cfg.rule.name} on {track_label(cfg.world.track)}, seed {cfg.seed}"
        attempt(
            "learning.png",
            lambda: figures.learning_figure(
                out / "learning.png",
                errors,
                crit,
                stats["steps_to_success"],
                title=label,
                settled_step=settle["settled_step"],
            ),
        )
        track = getattr(loop.robot, "track", None)
        attempt(
            "path.png",
            lambda: figures.path_figure(
                out / "path.png",
                rec["x"][0],
                rec["y"][0],
                getattr(track, "image", None),
                getattr(track, "arena", cfg.world.arena),
                span=min(1000, max(1, len(errors) // 3)),
                title=label,
                errors=errors,
            ),
        )
        wsteps = np.concatenate([[0], rec["weight_steps"]])
        wvals = np.concatenate([np.zeros((1, loop.agent.n_layers)), rec["weight_change"][0]])
        attempt(
            "weights.png",
            lambda: figures.weights_figure(out / "weights.png", wsteps, wvals, title=label),
        )
    if final and loop.agent.network is not None and status != "diverged":
        attempt(
            "network.npz",
            lambda: outputs.atomic_write_with(out / "network.npz", loop.agent.save),
        )
    if final and "frame" in rec:  # camera frames of a recorded run, for replay
        attempt("frames.npy", lambda: outputs.write_frames(out / outputs.FRAMES, rec["frame"][0]))
    if final and video and rec:
        attempt("video", lambda: write_run_video(out, rec, loop.robot, cfg))
    summary: dict[str, Any] = {
        **run_measures(cfg, stats, settle),
        # Steps per second of wall time (checkpoints included), so that steps / steps_per_second
        # is the run's duration; the loop alone is loop_steps_per_second.
        "steps_per_second": n_run / run_wall if run_wall > 0 else None,
        "loop_steps_per_second": n_run / loop_time if loop_time > 0 else None,
        "run_seconds": run_wall,
        "weight_change": [float(v) for v in final_wc],
        "loaded": getattr(loop.agent, "loaded", None),
        "frozen": bool(cfg.freeze),
        "interrupted": status == "interrupted",
        "status": status,
        "message": message,
        "resumed_from": resumed_from,
        "problems": problems,
        "out_dir": str(out),
        "files": _listing(out, status),
        "sarlearn_version": __version__,
        "python": platform.python_version(),
        "written_at": datetime.now().isoformat(timespec="seconds"),
        "config": cfg.model_dump(mode="json"),
    }
    drawn = getattr(getattr(loop.robot, "track", None), "drawn", None)
    if drawn is not None:  # a generated track: what was drawn (world.family)
        summary["track_drawn"] = drawn.as_dict()
    if extra is not None:
        summary.update(outputs.jsonable(extra(records)))
    for key in ("steps_per_second", "loop_steps_per_second"):
        if summary[key] is not None and not math.isfinite(summary[key]):
            summary[key] = None
    if final and figures_too:
        attempt("report.html", lambda: _write_html_report(out, summary))
        summary["files"] = _listing(out, status)  # now with report.html
    outputs.write_json(out / outputs.SUMMARY, summary)
    if outputs.SUMMARY not in summary["files"]:
        summary["files"] = sorted([*summary["files"], outputs.SUMMARY])
    return summary


def _listing(out: Path, status: str) -> list[str]:
    """The files of the run folder as they will be once the summary is written: with the
    summary, and without the checkpoint and trace parts of a run that has ended for good."""
    names = {p.name for p in out.iterdir() if not p.name.startswith(".")} | {outputs.SUMMARY}
    if status in FINAL_STATUSES:
        names -= {outputs.CHECKPOINT, outputs.PARTS}
    return sorted(names)


def _names(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if not p.name.startswith(".")}


def _write_html_report(out: Path, summary: dict[str, Any]) -> None:
    from sarlearn.reports.html import write_run_report  # written from the summary

    write_run_report(out, summary={**summary, "files": sorted(_names(out) | {"summary.json"})})


def write_run_video(
    out: Path,
    rec: dict[str, np.ndarray],
    robot: Any,
    cfg: RunConfig,
    max_frames: int = 300,
    size: int = 320,
) -> Path:
    """run.mp4 (or run.gif): the robot on the track, at most ``max_frames`` subsampled steps.

    Frames come from the world's :class:`~sarlearn.stages.world.render.FrameRenderer` (small:
    ``size``
    pixels wide), or from a plain fallback when the robot has no track.
    """
    from sarlearn.reports import figures

    poses = np.stack([rec["x"][0], rec["y"][0], rec["heading"][0]], axis=1)
    track = getattr(robot, "track", None)
    if track is not None:
        from sarlearn.stages.world.render import FrameRenderer

        renderer = FrameRenderer(track, size=size, sensors=getattr(robot, "sensors", None))

        def render(pose: np.ndarray, trail: np.ndarray) -> np.ndarray:
            return renderer.frame(pose, trail=trail[:, :2])

    else:
        small = np.zeros((size, size))

        def render(pose: np.ndarray, trail: np.ndarray) -> np.ndarray:
            return figures.simple_frame(small, cfg.world.arena, pose, trail)

    frames = figures.video_frames(poses, render, max_frames=max_frames)
    return figures.write_video(out / "run.mp4", frames, fps=25)


__all__ = [
    "CHUNK",
    "FINAL_STATUSES",
    "RunInterrupted",
    "default_out_dir",
    "load_run_config",
    "run_follow",
    "run_measures",
    "terminate_as_interrupt",
    "track_label",
]
