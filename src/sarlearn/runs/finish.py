"""A run's output folder from its stream: the summary and, at the end, the trace, figures,
network, frames, video and HTML report.

Every number comes from the run's :class:`~sarlearn.runs.stream.RunStream` (streaming
statistics, the trace parts on disk, a bounded view for the figures), so writing the outputs
costs memory bounded whatever the run's length.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from sarlearn.config import RunConfig
from sarlearn.metrics import SuccessCriterion, steering_max
from sarlearn.runs import outputs
from sarlearn.runs.stream import RunStream
from sarlearn.version import __version__

#: Statuses after which there is nothing left to resume.
FINAL_STATUSES = ("finished", "diverged", "off_track")


def run_measures(cfg: RunConfig, stats: dict[str, Any], settle: dict[str, Any]) -> dict[str, Any]:
    """The leading keys of a run's summary: what ran, and what its error trace measures
    (``stats`` of :func:`summarise_errors`, ``settle`` of :func:`summarise_settling`).
    Shared by :func:`run_follow` and the sweeps' engine populations."""
    return {
        "rule": cfg.rule.name,
        "lr": None if cfg.rule.name == "reflex" else cfg.rule_config.learning_rate,
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


def track_label(track: str) -> str:
    """A short name for a track: the built-in name, the image file's stem, or a generated
    track's name made safe for file names (``random:17,width=6`` -> ``random17-width6``)."""
    if track.startswith("random:"):
        from sarlearn.stages.world.family import track_label as generated_label

        return generated_label(track)
    p = Path(track)
    return p.stem if p.suffix else track


def write_outputs(
    out: Path,
    cfg: RunConfig,
    stream: RunStream,
    loop: Any,
    status: str,
    message: str,
    resumed_from: int | None,
    times: tuple[float, float],
    n_run: int,
    *,
    final: bool,
    figures_too: bool = True,
    video: bool = False,
    extra: Callable[[Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Write the summary, and at the end of the run (``final``) the trace, the figures (if
    ``figures_too``), the network and the video (if ``video``); never let one failure hide the
    others. ``times`` are the seconds spent in the loop and in the whole run (checkpoints
    included) for the ``n_run`` steps of this session."""
    loop_time, run_wall = times
    stream.settle()
    has_net = loop.agent.network is not None
    stats = stream.stats.errors_summary()
    y_max = steering_max(cfg.readout, cfg.network.activation) if has_net else None
    settle = stream.stats.settling_summary(y_max)
    with np.errstate(over="ignore", invalid="ignore"):  # huge weights: inf, written as null
        final_wc = loop.agent.weight_change()[0] if status != "diverged" else None
    if final_wc is None:
        w_last = stream.stats.w_last
        final_wc = w_last[1] if w_last is not None else np.zeros(loop.agent.n_layers)
    problems: list[str] = []

    def attempt(name: str, fn: Callable[[], object]) -> None:
        try:
            fn()
        except Exception as exc:  # a figure must not cost us the summary
            problems.append(f"{name}: {type(exc).__name__}: {exc}")

    if final:
        trace, frames = out / outputs.TRACE, out / outputs.FRAMES
        attempt(outputs.TRACE, lambda: stream.trace.write(trace, frames))
    if final and figures_too and stream.n_steps:
        attempt_figures(attempt, out, cfg, stream, loop, stats, settle)
    if final and has_net and status != "diverged":
        attempt(
            "network.npz", lambda: outputs.atomic_write_with(out / "network.npz", loop.agent.save)
        )
    if final and video and stream.n_steps:
        attempt("video", lambda: write_run_video(out, stream, loop.robot, cfg))
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
    if extra is not None:  # e.g. a drive's cycle timing
        summary.update(outputs.jsonable(extra(loop)))
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


def attempt_figures(
    attempt: Callable[[str, Callable[[], object]], None],
    out: Path,
    cfg: RunConfig,
    stream: RunStream,
    loop: Any,
    stats: dict[str, Any],
    settle: dict[str, Any],
) -> None:
    """learning.png, path.png and weights.png from the run's view."""
    from sarlearn.reports import figures  # matplotlib: imported only when drawing

    crit = SuccessCriterion.from_config(cfg)
    view = stream.view
    label = f"{cfg.rule.name} on {track_label(cfg.world.track)}, seed {cfg.seed}"
    attempt(
        "learning.png",
        lambda: figures.learning_figure(
            out / "learning.png",
            view.get("error"),
            crit,
            stats["steps_to_success"],
            steps=view.get("step"),
            title=label,
            settled_step=settle["settled_step"],
            moving=view.get("moving_sum"),
            n_steps=stream.n_steps,
        ),
    )
    track = getattr(loop.robot, "track", None)
    path = view.path()
    attempt(
        "path.png",
        lambda: figures.path_figure(
            out / "path.png",
            path["x"],
            path["y"],
            getattr(track, "image", None),
            getattr(track, "arena", cfg.world.arena),
            span=min(1000, max(1, stream.n_steps // 3)),
            title=label,
            errors=path["error"],
            steps=path["step"],
        ),
    )
    wsteps, wvals = view.weights(loop.agent.n_layers)
    attempt(
        "weights.png",
        lambda: figures.weights_figure(out / "weights.png", wsteps, wvals, title=label),
    )


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
    stream: RunStream,
    robot: Any,
    cfg: RunConfig,
    max_frames: int = 300,
    size: int = 320,
) -> Path:
    """run.mp4 (or run.gif): the robot on the track, at most ``max_frames`` subsampled steps
    of the run's view.

    Frames come from the world's :class:`~sarlearn.stages.world.render.FrameRenderer` (small:
    ``size`` pixels wide), or from a plain fallback when the robot has no track.
    """
    from sarlearn.reports import figures

    view = stream.view
    poses = np.stack([view.get("x"), view.get("y"), view.get("heading")], axis=1)
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


__all__ = ["FINAL_STATUSES", "run_measures", "track_label", "write_outputs", "write_run_video"]
