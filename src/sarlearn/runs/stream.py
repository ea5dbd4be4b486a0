"""One run's records as a stream: statistics, trace and a view, in memory bounded by the
windows of the statistics, whatever the run's length.

A run hands every chunk of records (:meth:`sarlearn.loop.ClosedLoop.run`'s dict) to a
:class:`RunStream`. It keeps:

- :class:`RunStats`: the numbers of :func:`sarlearn.metrics.summarise_errors` and
  :func:`~sarlearn.metrics.summarise_settling`, updated step by step. The moving sum of |e|
  carries the cumulative sum across chunks, so every number is the one the whole trace gives
  (the mean |e| of the whole run up to the rounding of a running sum, ~1e-16 relative);
- :class:`TraceWriter`: the trace rows (every n-th step, or none), written as Arrow parts of
  at most :data:`FLUSH_ROWS` rows and joined into ``trace.parquet`` one part at a time;
- :class:`View`: at most :data:`VIEW_POINTS` evenly spaced steps (every step of a shorter run)
  for the figures and the video, plus the first and last :data:`PATH_SPAN` steps exactly.

All three pickle with the checkpoint, so a resumed run continues them exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sarlearn.metrics import (
    DEAD_SPAN,
    SuccessCriterion,
    dead_layers,
    dead_units,
    saturated_steering_fraction,
    settle_span,
    steering_flips_per_1000,
)
from sarlearn.runs.view import PATH_SPAN, VIEW_POINTS, Head, Tail, View

#: Steps of records held before they are taken in together (see :class:`RunStream`).
BATCH_STEPS = 16_384
#: Trace rows buffered before they are written as a part.
FLUSH_ROWS = 65_536
#: Bytes of camera frames (recorded for replay) buffered before a part is written.
FLUSH_FRAME_BYTES = 64 * 2**20
#: Suffix of a trace part: Arrow IPC, uncompressed (written and read back at memory speed;
#: trace.parquet is encoded once, when the parts are joined).
PART = ".arrow"

Rec = Mapping[str, np.ndarray]


class Scan:
    """What one chunk of errors measures, given the steps before it (pure; see
    :meth:`RunStats.scan`): ``ms`` (moving sum of |e|), ``ok`` (below threshold and judged),
    ``above`` (the settling flag), ``success`` (start of the first success stretch if it is
    confirmed within the chunk), ``run_start``/``run_len`` (the stretch below threshold at
    the chunk's end) and ``csum`` (the cumulative sum of |e|)."""

    __slots__ = ("above", "csum", "ms", "ok", "run_len", "run_start", "success")

    def __init__(self, **kw: Any) -> None:
        for key, value in kw.items():
            setattr(self, key, value)


class RunStats:
    """The summary numbers of one agent's records, computed as they stream (see module)."""

    def __init__(self, crit: SuccessCriterion, span: int = PATH_SPAN) -> None:
        self.crit = crit
        self.span = span
        self.n = 0
        self.csum_tail = np.zeros(0)  # the last ``window`` values of the cumulative sum
        self.abs_sum = 0.0
        self.off_steps = 0
        self.off_at: int | None = None  # first step off the line
        self.run_start = 0  # the current stretch below threshold (run_len 0: none)
        self.run_len = 0
        self.success: int | None = None
        self.last_above = -1
        self.prev_above = False
        self.relapses = 0
        self.final_ms: float | None = None
        self.head_e = Head(span)
        self.tail_e = Tail(max(span, crit.window))
        self.tail_above = Tail(crit.settle_window)
        self.tail_y = Tail(crit.settle_window)
        self.tail_sat = Tail(DEAD_SPAN)
        self.has_sat = False
        self.sat_layers = 0
        self.w_last: tuple[int, np.ndarray] | None = None  # last weight sample (step, (L,))

    # -- one chunk ---------------------------------------------------------------------------

    def scan(self, errors: np.ndarray) -> Scan:
        """Moving sums, flags and the success stretch of the next ``errors`` ``(m,)``."""
        crit, n0, m = self.crit, self.n, len(errors)
        a = np.abs(np.asarray(errors, dtype=np.float64))
        prev = self.csum_tail[-1:] if len(self.csum_tail) else np.zeros(1)
        # Cumsum is sequential: prepending the running total gives the whole trace's values.
        c = np.cumsum(np.concatenate([prev, a]))[1:]
        ms = c.copy()
        g = n0 + np.arange(m)
        lagged = g >= crit.window
        if lagged.any():
            full = np.concatenate([self.csum_tail, c])
            idx = np.flatnonzero(lagged)
            ms[idx] = c[idx] - full[idx + len(self.csum_tail) - crit.window]
        judged = g >= crit.first_start
        with np.errstate(invalid="ignore"):
            below = ms < crit.threshold
        ok, above = below & judged, ~below & judged
        # Length of the stretch below threshold ending at each step (0 where not ok).
        last_bad = np.maximum.accumulate(np.where(~ok, np.arange(m), -1)) if m else g
        last_bad_g = np.where(last_bad >= 0, n0 + last_bad, n0 - 1 - self.run_len)
        length = np.where(ok, g - last_bad_g, 0)
        success = None
        if self.success is None:
            reach = np.flatnonzero(length >= crit.hold)
            if reach.size:
                success = int(last_bad_g[reach[0]] + 1)
        run_len = int(length[-1]) if m else self.run_len
        run_start = int(last_bad_g[-1] + 1) if m and run_len else self.run_start
        return Scan(
            ms=ms,
            ok=ok,
            above=above,
            success=success,
            run_start=run_start,
            run_len=run_len,
            csum=c,
        )

    def stop_in(self, rec: Rec, scan: Scan | None) -> tuple[int, str, str] | None:
        """The step in this chunk at which the run must end, with its status and message:
        success (when a ``scan`` is given: the run stops at success) or off track."""
        if scan is not None and scan.success is not None:
            start = scan.success
            return (
                start + self.crit.hold - 1,
                "finished",
                f"stopped at success (learned at step {start})",
            )
        off = np.asarray(rec["off_track"]).all(axis=0)
        if off.any():
            first = self.n + int(np.argmax(off))
            return first, "off_track", f"the robot lost the line (off track at step {first})"
        return None

    def add(self, rec: Rec, scan: Scan | None = None) -> Scan:
        """Take in a chunk of records (agent 0); returns its :class:`Scan`."""
        errors = np.asarray(rec["error"][0], dtype=np.float64)
        scan = scan if scan is not None else self.scan(errors)
        m, n0 = len(errors), self.n
        if not m:
            self._add_weights(rec)
            return scan
        self.csum_tail = np.concatenate([self.csum_tail, scan.csum])[-self.crit.window :]
        self.abs_sum += float(np.sum(np.abs(errors)))
        off = np.asarray(rec["off_track"][0], dtype=bool)
        self.off_steps += int(np.count_nonzero(off))
        if self.success is None and scan.success is not None:
            self.success = scan.success
        rise = scan.above & ~np.concatenate([[self.prev_above], scan.above[:-1]])
        if self.success is not None:
            self.relapses += int(np.count_nonzero(rise[n0 + np.arange(m) > self.success]))
        hits = np.flatnonzero(scan.above)
        if hits.size:
            self.last_above = n0 + int(hits[-1])
        self.prev_above = bool(scan.above[-1])
        self.run_start, self.run_len = scan.run_start, scan.run_len
        self.final_ms = float(scan.ms[-1])
        self.head_e.add(errors)
        self.tail_e.add(errors)
        self.tail_above.add(scan.above)
        self.tail_y.add(np.asarray(rec["steering"][0], dtype=np.float64))
        if "saturated" in rec:
            self.has_sat = True
            self.sat_layers = rec["saturated"].shape[2]
            self.tail_sat.add(np.asarray(rec["saturated"][0]))
        self.n += m
        self._add_weights(rec)
        return scan

    def _add_weights(self, rec: Rec) -> None:
        wc = rec.get("weight_change")
        if wc is not None and wc.shape[1]:
            self.w_last = (int(rec["weight_steps"][-1]), np.array(wc[0, -1]))

    # -- the numbers -------------------------------------------------------------------------

    def steps_to_confirmation(self) -> int:
        """Steps until a success stretch could be confirmed at the earliest (a run stopping at
        success caps its next chunk at this, so it stops exactly at the confirming step)."""
        if not self.run_len:
            return self.crit.hold
        return max(1, self.crit.hold - self.run_len)

    def recent_abs_error(self) -> float:
        """Mean |e| over the last success window (for the progress bar)."""
        tail = self.tail_e.get()
        return float(np.mean(np.abs(tail[-self.crit.window :]))) if tail is not None else 0.0

    def errors_summary(self) -> dict[str, Any]:
        """:func:`sarlearn.metrics.summarise_errors` of the run so far."""
        n, span = self.n, self.span
        head, tail = self.head_e.get(), self.tail_e.get()
        return {
            "steps": n,
            "steps_to_success": self.success,
            "mean_abs_error": self.abs_sum / n if n else None,
            f"mean_abs_error_first_{span}": _mean_abs(head),
            f"mean_abs_error_last_{span}": _mean_abs(None if tail is None else tail[-span:]),
            "final_moving_sum": self.final_ms if n else None,
            "off_track_steps": self.off_steps,
        }

    def settling_summary(self, y_max: float | None) -> dict[str, Any]:
        """:func:`sarlearn.metrics.summarise_settling` of the run so far."""
        crit, n = self.crit, self.n
        last = n - 1
        settled_step = None
        if n > crit.first_start and self.last_above != last:
            settled_step = self.last_above + 1 if self.last_above >= 0 else crit.first_start
        span = settle_span(n, crit)
        above = self.tail_above.get()
        frac = float(above[len(above) - span :].mean()) if span else None
        y = self.tail_y.get()
        y = np.zeros(0) if y is None else y
        window = min(crit.settle_window, n)
        dead = None
        if self.has_sat and self.sat_layers:
            sat = self.tail_sat.get()
            dead = dead_units(sat if sat is not None else np.zeros((0, self.sat_layers)))
        return {
            "settled_step": settled_step,
            "settled": frac is not None and frac == 0.0,
            "settle_window": span,
            "above_threshold_fraction": frac,
            "relapses": self.relapses if self.success is not None else None,
            "steering_flips_per_1000": steering_flips_per_1000(y, window) if n else None,
            "saturated_steering_fraction": saturated_steering_fraction(y, y_max, window),
            "dead_units": dead,
            "dead_layers": dead_layers(dead),
        }


def _mean_abs(values: np.ndarray | None) -> float | None:
    if values is None or not values.size:
        return None
    return float(np.mean(np.abs(values)))


def truncate(rec: Rec, n_steps: int) -> dict[str, np.ndarray]:
    """The records of the steps before ``n_steps`` (and the weight samples taken within)."""
    keep = rec["step"] < n_steps
    wkeep = rec["weight_steps"] < n_steps
    out: dict[str, np.ndarray] = {}
    for key, val in rec.items():
        if key == "step":
            out[key] = val[keep]
        elif key == "weight_steps":
            out[key] = val[wkeep]
        elif key == "weight_change":
            out[key] = val[:, wkeep]
        else:
            out[key] = val[:, keep]
    return out


# ---------------------------------------------------------------------- the trace


def trace_columns(
    rec: Rec, scan: Scan, w_last: tuple[int, np.ndarray] | None
) -> dict[str, np.ndarray]:
    """The trace rows of one chunk (agent 0): every per-step record (``(P, T, k)`` records
    as columns ``name_0 ..``), ``moving_sum``, ``above_threshold`` and the weight change per
    layer carried forward from the latest sample (``w_last``: the one before the chunk)."""
    cols: dict[str, np.ndarray] = {}
    for name, arr in rec.items():
        if name in ("weight_steps", "weight_change", "frame"):
            continue
        a = np.asarray(arr)
        if a.ndim == 1:
            cols[name] = a
        elif a.ndim == 2:
            cols[name] = a[0]
        else:
            for k in range(a.shape[2]):
                cols[f"{name}_{k}"] = a[0, :, k]
    cols["moving_sum"] = scan.ms
    cols["above_threshold"] = scan.above
    ws, wv = np.asarray(rec["weight_steps"]), np.asarray(rec["weight_change"][0])
    if w_last is not None:
        ws = np.concatenate([[w_last[0]], ws])
        wv = np.concatenate([w_last[1][None], wv])
    # Sample k was taken after step ws[k]: it holds from that step on.
    idx = np.searchsorted(ws, cols["step"], side="right") - 1
    for layer in range(wv.shape[1]):
        values = wv[np.maximum(idx, 0), layer] if len(ws) else np.zeros(len(idx))
        cols[f"weight_change_l{layer}"] = np.where(idx >= 0, values, 0.0)
    return cols


class TraceWriter:
    """Writes the trace rows of the steps with ``step % every == 0`` (``every`` 0: none) as
    parts ``trace.parts/<start>-<end>.arrow`` covering steps ``[start, end)``, and joins them
    into ``trace.parquet`` at the end, one part at a time."""

    def __init__(self, folder: Path, every: int = 1) -> None:
        self.folder = Path(folder)
        self.every = int(every)
        self.buffer: list[dict[str, np.ndarray]] = []
        self.frames: list[np.ndarray] = []
        self.rows = 0
        self.frame_bytes = 0
        self.start = 0  # first step not yet in a part
        self.end = 0
        self.weights_seen = False

    def __getstate__(self) -> dict[str, Any]:
        assert not self.buffer and not self.frames, "flush the trace before a checkpoint"
        return self.__dict__.copy()

    def add(self, cols: dict[str, np.ndarray], frames: np.ndarray | None, sampled: bool) -> None:
        """Buffer one chunk's rows (and camera frames); write a part once the buffer is full."""
        if len(cols["step"]):
            self.end = int(cols["step"][-1]) + 1
        self.weights_seen |= sampled
        if self.every == 0:
            return
        if self.every > 1:
            keep = cols["step"] % self.every == 0
            cols = {k: v[keep] for k, v in cols.items()}
        self.buffer.append(cols)
        if frames is not None:
            self.frames.append(frames)
            self.frame_bytes += frames.nbytes
        self.rows += len(cols["step"])
        if self.rows >= FLUSH_ROWS or self.frame_bytes >= FLUSH_FRAME_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one part (also when empty, so parts cover every step)."""
        if self.every == 0 or self.end <= self.start:
            self.buffer, self.frames, self.rows, self.frame_bytes = [], [], 0, 0
            return
        from sarlearn.runs import outputs

        name = f"{self.start:012d}-{self.end:012d}"
        if self.frames:
            outputs.write_frames(self.folder / f"{name}.frames.npy", np.concatenate(self.frames))
        table = _table(self.buffer)
        if table is None:
            return
        outputs.write_arrow(self.folder / f"{name}{PART}", table)
        self.buffer, self.frames, self.rows, self.frame_bytes = [], [], 0, 0
        self.start = self.end

    def parts(self, suffix: str = PART) -> list[Path]:
        """The part files written so far, in step order."""
        return sorted(p for p in self.folder.glob(f"*{suffix}") if _span(p) is not None)

    def forget_after(self, step: int) -> None:
        """Delete the parts beyond ``step`` (written after the checkpoint being resumed) and
        check that the remaining ones cover ``[0, step)``.

        Raises:
            ValueError: a part is missing.
        """
        at = 0
        frames = {_span(p): p for p in self.parts(".frames.npy")}
        for path in self.parts():
            a, b = _span(path) or (0, 0)
            if b > step:
                path.unlink(missing_ok=True)
                if (a, b) in frames:
                    frames[(a, b)].unlink(missing_ok=True)
                continue
            if a != at:
                raise ValueError(f"trace parts in {self.folder}: steps {at}..{a} are missing")
            at = b
        if self.every and at != step:
            raise ValueError(
                f"trace parts in {self.folder} end at step {at}, the checkpoint at {step}"
            )

    def write(self, path: Path, frames_path: Path) -> list[Path]:
        """Join the parts into ``path`` (and camera frames into ``frames_path``)."""
        self.flush()
        if self.every == 0:
            return []
        from sarlearn.runs import outputs

        drop = None if self.weights_seen else "weight_change_l"  # as the whole-trace table
        outputs.join_parquet(path, self.parts(), drop_prefix=drop)
        written = [path]
        frames = self.parts(".frames.npy")
        if frames:
            outputs.join_frames(frames_path, frames)
            written.append(frames_path)
        return written


def _span(path: Path) -> tuple[int, int] | None:
    try:
        a, b = (int(x) for x in path.name.split(".")[0].split("-"))
    except ValueError:
        return None
    return a, b


def _table(chunks: list[dict[str, np.ndarray]]) -> Any:
    """The rows of buffered chunks as one Arrow table (None if there are none)."""
    if not chunks:
        return None
    import pyarrow as pa

    names = list(chunks[0])
    return pa.table({k: np.concatenate([c[k] for c in chunks]) for k in names})


class RunStream:
    """Statistics, trace and view of one run, fed chunk by chunk (see the module).

    :meth:`push` holds chunks until :data:`BATCH_STEPS` steps are pending and takes them in
    together (numpy's cost per call, paid per batch instead of per chunk); :meth:`add`
    takes a chunk in at once, after the pending ones.
    """

    def __init__(self, crit: SuccessCriterion, folder: Path, trace_every: int = 1) -> None:
        self.stats = RunStats(crit)
        self.trace = TraceWriter(folder, trace_every)
        self.view = View()
        self.pending: list[Rec] = []
        self.n_pending = 0

    def __getstate__(self) -> dict[str, Any]:
        assert not self.pending, "settle the stream before a checkpoint"
        return self.__dict__.copy()

    def push(self, rec: Rec) -> None:
        """Take in a chunk of records, perhaps later (see the class)."""
        self.pending.append(rec)
        self.n_pending += len(rec["step"])
        if self.n_pending >= BATCH_STEPS:
            self.settle()

    def settle(self) -> None:
        """Take in the pending chunks now."""
        if self.pending:
            pending, self.pending, self.n_pending = self.pending, [], 0
            self._take(pending[0] if len(pending) == 1 else concat(pending))

    def add(self, rec: Rec | None, scan: Scan | None = None) -> None:
        """Take in one chunk of records now (None or empty: nothing); ``scan`` is its
        :meth:`RunStats.scan` if already made."""
        self.settle()
        self._take(rec, scan)

    def _take(self, rec: Rec | None, scan: Scan | None = None) -> None:
        if rec is None or not len(rec["step"]):
            return
        w_last = self.stats.w_last
        scan = self.stats.add(rec, scan)
        cols = trace_columns(rec, scan, w_last)
        frames = np.asarray(rec["frame"][0]) if "frame" in rec else None
        self.trace.add(cols, frames, sampled=self.stats.w_last is not None)
        self.view.add(cols, rec)

    def recent_abs_error(self) -> float:
        """Mean |e| over the last success window (for the progress bar; the pending steps
        count when the last chunk alone spans the window)."""
        window = self.stats.crit.window
        if self.pending and len(self.pending[-1]["step"]) >= window:
            return float(np.mean(np.abs(self.pending[-1]["error"][0][-window:])))
        return self.stats.recent_abs_error()

    @property
    def n_steps(self) -> int:
        """Steps taken in so far (pending ones included)."""
        return self.stats.n + self.n_pending


def concat(chunks: list[Rec]) -> dict[str, np.ndarray]:
    """Consecutive chunks of records as one (time on axis 0 for ``step`` and
    ``weight_steps``, on axis 1 for the rest)."""
    return {
        k: np.concatenate([c[k] for c in chunks], axis=0 if k in ("step", "weight_steps") else 1)
        for k in chunks[0]
    }


__all__ = [
    "BATCH_STEPS",
    "FLUSH_ROWS",
    "PATH_SPAN",
    "VIEW_POINTS",
    "Head",
    "RunStats",
    "RunStream",
    "Scan",
    "Tail",
    "TraceWriter",
    "View",
    "concat",
    "trace_columns",
    "truncate",
]
