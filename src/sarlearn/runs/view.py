"""Bounded views of a stream of records: the last or first ``k`` rows, and the evenly
spaced steps a run's figures and video are drawn from."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: Most steps the figures' view holds; a longer run keeps every 2^k-th step.
VIEW_POINTS = 1 << 17


#: Steps of the path figure's early and late parts (and of the first/last mean |e|).
PATH_SPAN = 1000


class Tail:
    """The last ``k`` rows of a stream of arrays (axis 0), at amortised O(1) per row."""

    def __init__(self, k: int) -> None:
        self.k = int(k)
        self.parts: list[np.ndarray] = []
        self.n = 0

    def add(self, rows: np.ndarray) -> None:
        if self.k <= 0 or not len(rows):
            return
        self.parts.append(np.array(rows[-self.k :]))
        self.n += len(self.parts[-1])
        if self.n >= 2 * self.k:
            self._squash()

    def _squash(self) -> None:
        if len(self.parts) > 1 or self.n > self.k:
            arr = np.concatenate(self.parts)[-self.k :]
            self.parts, self.n = [arr], len(arr)

    def get(self) -> np.ndarray | None:
        """The last ``k`` rows (None before any row)."""
        if not self.parts:
            return None
        self._squash()
        return self.parts[0]


class Head:
    """The first ``k`` rows of a stream of arrays (axis 0)."""

    def __init__(self, k: int) -> None:
        self.k = int(k)
        self.parts: list[np.ndarray] = []
        self.n = 0

    def add(self, rows: np.ndarray) -> None:
        if self.n < self.k and len(rows):
            self.parts.append(np.array(rows[: self.k - self.n]))
            self.n += len(self.parts[-1])

    def get(self) -> np.ndarray | None:
        return np.concatenate(self.parts) if self.parts else None


class View:
    """Evenly spaced steps of the run for its figures and video: every ``stride``-th step,
    the stride doubling whenever more than :data:`VIEW_POINTS` are held; plus the first and
    the last :data:`PATH_SPAN` steps of the path, and the weight samples (also thinned)."""

    KEYS = ("step", "error", "moving_sum", "x", "y", "heading")

    def __init__(self, points: int = VIEW_POINTS, span: int = PATH_SPAN) -> None:
        self.points = points
        self.stride = 1
        self.cols: dict[str, list[np.ndarray]] = {k: [] for k in self.KEYS}
        self.n = 0
        self.head = {k: Head(span) for k in ("step", "x", "y", "error")}
        self.tail = {k: Tail(span) for k in ("step", "x", "y", "error")}
        self.w: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (index, step, (K, L))
        self.w_count = 0  # samples seen
        self.w_held = 0  # samples kept
        self.w_stride = 1

    def add(self, cols: Mapping[str, np.ndarray], rec: Mapping[str, np.ndarray]) -> None:
        for k in self.head:
            self.head[k].add(cols[k])
            self.tail[k].add(cols[k])
        keep = cols["step"] % self.stride == 0
        for k in self.KEYS:
            self.cols[k].append(np.array(cols[k][keep]))
        self.n += int(np.count_nonzero(keep))
        while self.n > self.points:
            self.stride *= 2
            self._thin(self.cols, "step", self.stride)
            self.n = len(self.cols["step"][0])
        ws, wv = rec["weight_steps"], rec["weight_change"][0]
        if len(ws):
            k = self.w_count + np.arange(len(ws))
            self.w_count += len(ws)
            keep = k % self.w_stride == 0
            self.w.append((np.array(k[keep]), np.array(ws[keep]), np.array(wv[keep])))
            self.w_held += int(np.count_nonzero(keep))
            if self.w_held > self.points:
                self.w_stride *= 2
                k, ws, wv = (np.concatenate(x) for x in zip(*self.w, strict=True))
                keep = k % self.w_stride == 0
                self.w = [(k[keep], ws[keep], wv[keep])]
                self.w_held = len(self.w[0][0])

    @staticmethod
    def _thin(cols: dict[str, list[np.ndarray]], key: str, stride: int) -> None:
        joined = {k: np.concatenate(v) for k, v in cols.items()}
        keep = joined[key] % stride == 0
        for k, v in joined.items():
            cols[k] = [v[keep]]

    def get(self, key: str) -> np.ndarray:
        parts = self.cols[key]
        return np.concatenate(parts) if parts else np.zeros(0)

    def path(self) -> dict[str, np.ndarray]:
        """x, y, error and step of the first and last :data:`PATH_SPAN` steps, joined
        (every step of a run no longer than both)."""
        head = {k: h.get() for k, h in self.head.items()}
        tail = {k: t.get() for k, t in self.tail.items()}
        if head["step"] is None or tail["step"] is None:
            return {k: np.zeros(0) for k in self.head}
        after = tail["step"] > head["step"][-1]
        return {k: np.concatenate([head[k], tail[k][after]]) for k in self.head}

    def weights(self, n_layers: int) -> tuple[np.ndarray, np.ndarray]:
        """The weight samples ``(K,)``, ``(K, L)`` with a leading zero sample at step 0."""
        steps = np.concatenate([np.zeros(1, np.int64), *(part[1] for part in self.w)])
        vals = np.concatenate([np.zeros((1, n_layers)), *(part[2] for part in self.w)])
        return steps, vals


__all__ = ["PATH_SPAN", "VIEW_POINTS", "Head", "Tail", "View"]
