"""The pictures of one closed-loop run: learning curve, path on the track, weight change, video.

Figures are drawn with matplotlib's object API (no pyplot state, so this is safe in worker
processes and never opens a window) and written atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from numpy.typing import ArrayLike, NDArray

from sarlearn.atomic import atomic_write_with
from sarlearn.metrics import SuccessCriterion, moving_sum, settle_span

EARLY_COLOUR = "tab:red"
LATE_COLOUR = "tab:blue"


def _save(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    FigureCanvasAgg(fig)
    return atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))


def learning_figure(
    path: str | Path,
    errors: ArrayLike,
    criterion: SuccessCriterion | None = None,
    success_step: int | None = None,
    steps: ArrayLike | None = None,
    reference: ArrayLike | None = None,
    title: str = "",
    settled_step: int | None = None,
    moving: ArrayLike | None = None,
    n_steps: int | None = None,
) -> Path:
    """learning.png: the error e over time, and the moving sum of |e| against the threshold.

    ``errors`` may be a thinned view of a long run: then ``steps`` gives the step of each
    value, ``moving`` the moving sum of |e| at those steps (computed from every step) and
    ``n_steps`` the run's length (by default ``errors`` is every step from 0).

    ``success_step`` (the first passage, solid green) and ``settled_step`` (from where the
    moving sum stays below the threshold to the end, dashed blue) are marked when given;
    the settling window judged by ``settled`` is shaded. ``reference`` (optional) is a second
    error trace drawn faintly, e.g. the reflex alone.
    """
    crit = criterion or SuccessCriterion()
    e = np.asarray(errors, dtype=np.float64)
    t = np.arange(e.size) if steps is None else np.asarray(steps)
    fig = Figure(figsize=(8, 5.2), layout="constrained")
    ax_e, ax_s = fig.subplots(2, 1, sharex=True)
    if reference is not None:
        r = np.asarray(reference, dtype=np.float64)
        ax_e.plot(np.arange(r.size), r, lw=0.5, color="0.6", label="reference")
    ax_e.plot(t, e, lw=0.5, color="k", label="error e")
    ax_e.axhline(0, color="0.8", lw=0.8)
    ax_e.set_ylabel("reflex error e")
    # Log scale shows both the large early sums and the 0.1 threshold; zeros are clipped.
    floor = crit.threshold / 100
    if moving is None:
        moving = moving_sum(np.abs(e), crit.window) if e.size else e
    ms = np.maximum(np.asarray(moving, dtype=np.float64), floor) if e.size else e
    ax_s.plot(t, ms, lw=1.0, color=LATE_COLOUR, label=f"moving sum of |e| ({crit.window} steps)")
    ax_s.axhline(crit.threshold, color=EARLY_COLOUR, ls="--", lw=1, label="success threshold")
    if crit.warmup:
        ax_s.axvspan(0, crit.warmup, color="0.92", label="warm-up")
    ax_s.set_yscale("log")
    ax_s.set_ylabel("moving sum of |e|")
    ax_s.set_xlabel("step")
    for ax in (ax_e, ax_s):
        if success_step is not None:
            ax.axvline(success_step, color="tab:green", lw=1.2)
    if success_step is not None:
        ax_s.annotate(
            f"success at step {success_step}",
            (success_step, crit.threshold),
            xytext=(4, 8),
            textcoords="offset points",
            color="tab:green",
        )
    for ax in (ax_e, ax_s):
        if settled_step is not None:
            ax.axvline(settled_step, color="tab:blue", ls="--", lw=1.2)
    if settled_step is not None:
        ax_s.annotate(
            f"settled from step {settled_step}",
            (settled_step, crit.threshold),
            xytext=(4, -14),
            textcoords="offset points",
            color="tab:blue",
        )
    span = settle_span(e.size if n_steps is None else n_steps, crit)
    if span and t.size:
        last = int(t[-1])
        ax_s.axvspan(last - span + 1, last, color="tab:blue", alpha=0.06, label="settling window")
    ax_s.legend(loc="upper right", fontsize=8)
    if title:
        ax_e.set_title(title)
    return _save(fig, path)


def path_figure(
    path: str | Path,
    xs: ArrayLike,
    ys: ArrayLike,
    track_image: NDArray[np.floating] | None = None,
    arena: float = 250.0,
    span: int | None = None,
    title: str = "",
    errors: ArrayLike | None = None,
    zoom: float = 70.0,
    steps: ArrayLike | None = None,
) -> Path:
    """path.png: the robot's path on the track, the early part and the late part in colours.

    ``track_image`` is the floor's darkness (row 0 = the top of the arena, 1 = dark); it spans
    ``arena`` units along its longer side with square pixels (as :class:`Track`), so a
    non-square track is drawn ``arena * W / max(H, W)`` wide and ``arena * H / max(H, W)``
    high, at equal aspect (without an image the arena is square). ``span``
    is the number of steps drawn as "early" and as "late" (default: a third of the run). With
    the per-step ``errors``, the places where the reflex had to act (e != 0) are marked and a
    second panel zooms (``zoom`` units wide) on the worst place of the early part. ``steps``
    (default: 0, 1, ...) numbers the samples in the legend, e.g. when ``xs`` joins the first
    and the last steps of a long run.
    """
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    e = None if errors is None else np.asarray(errors, dtype=np.float64)
    n = x.size
    span = max(1, n // 3) if span is None else max(1, min(span, n))
    show_zoom = e is not None and n > 0 and np.any(e[:span] != 0)
    width, height = arena_extent(track_image, arena)
    tall = min(max(6.0 * height / width, 3.0), 9.0)  # the map panel keeps the arena's shape
    fig = Figure(figsize=(11, tall * 0.93) if show_zoom else (6, tall), layout="constrained")
    axes = fig.subplots(1, 2 if show_zoom else 1, squeeze=False)[0]
    early, late = slice(0, span), slice(n - span, n)
    for ax in axes:
        if track_image is not None:
            ax.imshow(
                np.asarray(track_image),
                cmap="Greys",
                vmin=0,
                vmax=1.4,  # line drawn dark grey, so the coloured paths stay visible on it
                extent=(0, width, 0, height),
                origin="upper",
                interpolation="bilinear",
            )
        if not n:
            continue
        for part, colour in ((early, EARLY_COLOUR), (late, LATE_COLOUR)):
            ax.plot(x[part], y[part], color=colour, lw=1.0, label=_span_label(part, steps))
            if e is not None:
                hit = np.flatnonzero(e[part] != 0) + part.start
                ax.plot(x[hit], y[hit], ".", color=colour, ms=3, label="_nolegend_")
        ax.plot(x[0], y[0], "o", color="k", ms=4, label="start")
        ax.set_aspect("equal")
    axes[0].set_xlim(0, width)
    axes[0].set_ylim(0, height)
    if n:
        axes[0].legend(loc="upper right", fontsize=8)
    if show_zoom:
        assert e is not None
        worst = int(np.argmax(np.abs(e[:span])))
        cx, cy = x[worst], y[worst]
        axes[1].set_xlim(cx - zoom / 2, cx + zoom / 2)
        axes[1].set_ylim(cy - zoom / 2, cy + zoom / 2)
        axes[1].set_title("zoom on the largest early error (dots: reflex acting, e ≠ 0)")
        axes[0].add_patch(
            Rectangle((cx - zoom / 2, cy - zoom / 2), zoom, zoom, fill=False, lw=0.8, ls="--")
        )
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def arena_extent(track_image: ArrayLike | None, arena: float) -> tuple[float, float]:
    """``(width, height)`` in units of an image whose longer side spans ``arena`` units
    (square pixels); ``(arena, arena)`` without an image."""
    if track_image is None:
        return float(arena), float(arena)
    h, w = np.shape(track_image)[:2]
    scale = float(arena) / max(h, w)
    return w * scale, h * scale


def _span_label(part: slice, steps: ArrayLike | None = None) -> str:
    if steps is None:
        return f"steps {part.start}–{part.stop - 1}"
    s = np.asarray(steps)
    return f"steps {int(s[part.start])}–{int(s[part.stop - 1])}"


def weights_figure(
    path: str | Path,
    steps: ArrayLike,
    change: ArrayLike,
    layer_names: Sequence[str] | None = None,
    title: str = "",
) -> Path:
    """weights.png: distance of each layer's weights from their initial values over time.

    ``change`` is ``(K, L)``: K samples of ``Network.weight_change()`` for one agent.
    """
    s = np.asarray(steps)
    c = np.asarray(change, dtype=np.float64)
    fig = Figure(figsize=(8, 4), layout="constrained")
    ax = fig.subplots()
    if c.ndim == 2 and c.shape[1] and s.size:
        n_layers = c.shape[1]
        names = layer_names or [
            "output" if i == n_layers - 1 else f"layer {i + 1}" for i in range(n_layers)
        ]
        cmap = matplotlib.colormaps["viridis"]
        for i in range(n_layers):
            ax.plot(s, c[:, i], lw=1.2, label=names[i], color=cmap(i / max(1, n_layers - 1)))
        if np.any(c > 0):
            ax.set_yscale("symlog", linthresh=max(float(np.min(c[c > 0])), 1e-12))
        ax.legend(loc="upper left", fontsize=7, ncol=2)
    else:
        ax.text(
            0.5, 0.5, "no network (reflex only)", ha="center", va="center", transform=ax.transAxes
        )
    ax.set_xlabel("step")
    ax.set_ylabel("‖W − W₀‖ (Frobenius)")
    if title:
        ax.set_title(title)
    return _save(fig, path)


# ---- video -------------------------------------------------------------------------------


def simple_frame(
    track_small: NDArray[np.floating],
    arena: float,
    pose: ArrayLike,
    trail: NDArray[np.floating] | None = None,
) -> NDArray[np.uint8]:
    """A small RGB frame: the track, the path so far and the robot as a dot with a nose.

    Used when the world's own renderer is not available. ``track_small`` is the darkness
    image already reduced to the video size ``(H, W)``.
    """
    h, w = track_small.shape
    img = (255 * (1.0 - 0.8 * np.clip(track_small, 0, 1))).astype(np.uint8)
    rgb = np.repeat(img[:, :, None], 3, axis=2)

    def to_px(px: NDArray, py: NDArray) -> tuple[NDArray, NDArray]:
        col = np.clip((np.asarray(px) / arena * w).astype(int), 0, w - 1)
        row = np.clip(((1 - np.asarray(py) / arena) * h).astype(int), 0, h - 1)
        return row, col

    if trail is not None and len(trail):
        r, c = to_px(trail[:, 0], trail[:, 1])
        rgb[r, c] = (70, 110, 220)
    x, y, th = (float(v) for v in np.asarray(pose)[:3])
    for d in np.linspace(0, 10, 8):  # the nose: a short line along the heading
        r, c = to_px(np.array([x + d * np.cos(th)]), np.array([y + d * np.sin(th)]))
        rgb[r, c] = (220, 40, 40)
    r0, c0 = to_px(np.array([x]), np.array([y]))
    rr, cc = np.meshgrid(np.arange(-2, 3), np.arange(-2, 3), indexing="ij")
    rgb[np.clip(r0 + rr, 0, h - 1), np.clip(c0 + cc, 0, w - 1)] = (220, 40, 40)
    return rgb


def shrink_image(image: NDArray[np.floating], size: int) -> NDArray[np.floating]:
    """Reduce a square-ish image to about ``size`` pixels on its long side (block mean)."""
    img = np.asarray(image, dtype=np.float64)
    k = max(1, int(np.ceil(max(img.shape) / size)))
    h, w = (img.shape[0] // k) * k, (img.shape[1] // k) * k
    return img[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def write_video(path: str | Path, frames: Iterable[NDArray[np.uint8]], fps: int = 25) -> Path:
    """Write RGB frames as MP4 (imageio-ffmpeg); fall back to a GIF next to it if that fails.

    Returns the path actually written (``.mp4`` or ``.gif``).
    """
    import imageio.v2 as imageio

    frames = list(frames)
    path = Path(path)
    mp4 = path.with_suffix(".mp4")
    try:
        # macro_block_size=1 accepts any frame size; yuv420p plays everywhere.
        def _mp4(tmp: Path) -> None:
            with imageio.get_writer(
                tmp,
                format="FFMPEG",
                fps=fps,
                codec="libx264",
                macro_block_size=1,
                pixelformat="yuv420p",
                ffmpeg_log_level="error",
            ) as writer:
                for f in frames:
                    writer.append_data(_even(f))

        return atomic_write_with(mp4, _mp4)
    except Exception:
        gif = path.with_suffix(".gif")
        return atomic_write_with(
            gif, lambda tmp: imageio.mimsave(tmp, frames, format="GIF", duration=1000 / fps)
        )


def _even(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
    # yuv420p needs even sides: drop a last odd row/column.
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


def video_frames(
    poses: NDArray[np.floating],
    render: Callable[[NDArray[np.floating], NDArray[np.floating]], NDArray[np.uint8]],
    max_frames: int = 300,
    trail: int = 400,
) -> list[NDArray[np.uint8]]:
    """Subsample a pose trace ``(T, 3)`` to at most ``max_frames`` and render each frame with
    ``render(pose, recent_poses)``, the recent poses being the last ``trail`` steps."""
    n = len(poses)
    if n == 0:
        return []
    idx = np.unique(np.linspace(0, n - 1, min(max_frames, n)).astype(int))
    return [render(poses[i], poses[max(0, i - trail) : i + 1]) for i in idx]


__all__ = [
    "arena_extent",
    "learning_figure",
    "path_figure",
    "shrink_image",
    "simple_frame",
    "video_frames",
    "weights_figure",
    "write_video",
]
