"""Watch a run learn: a small web page on 127.0.0.1, updated while the loop runs.

    view = LiveView(track, total_steps=30000, rule="sar", relevance=cfg.rule.relevance)
    view.start()                       # serves http://127.0.0.1:<port>/ in a daemon thread
    run_follow(cfg, on_records=view.observe)
    view.finish(summary)

The loop hands every chunk of records to :meth:`LiveView.observe` (a few numpy operations on
arrays of a chunk's length: the loop does not wait for the page). The page polls
``/state.json`` twice a second and draws the robot, its recent path, the error and
the relevance on canvases; the track is sent once as a PNG (``/track.png``, from
:func:`sarlearn.stages.world.render.background`). Nothing is drawn on the server per frame, so the
view's cost to the loop is that of ``observe`` plus answering a few small requests a second
(measured in docs/follow.md). Only the Python standard library serves it; it needs no display.

Series are kept decimated: |e| and relevance as block means over ``block`` steps (the block
doubles whenever more than ``max_points`` blocks have accumulated), the path as every
``trail_every``-th pose of the last ``trail_steps`` steps.
"""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import numpy as np

#: Page poll interval (milliseconds).
POLL_MS = 500


class RelevanceTrace:
    """phi(|e|) over a trace, exactly as :class:`sarlearn.stages.rules.relevance.Relevance`
    computes it step by step (gain, low-pass, normalisation by the bias-corrected running mean
    of |e|, cap), but vectorised over a chunk. ``cfg`` None: the identity (r = |e|).

    Why not call ``Relevance`` itself: stepped once per record it costs ~27 us a step, several
    times the engine's whole closed-loop step, and the page would slow the run it watches.
    ``tests/test_live.py`` holds the two equal for every field of ``RelevanceConfig``."""

    def __init__(self, cfg: Any | None) -> None:
        self.cfg = cfg
        self.lowpassed = 0.0
        self.mean_abs = 0.0
        self.count = 0

    def __call__(self, abs_error: np.ndarray) -> np.ndarray:
        """``abs_error`` ``(n,)`` -> relevance ``(n,)``; the state carries over chunks."""
        x = np.asarray(abs_error, dtype=np.float64)
        cfg = self.cfg
        if cfg is None or x.size == 0:
            return x.copy()
        lp = _exp_smooth(x, cfg.lowpass, self.lowpassed)
        self.lowpassed = float(lp[-1])
        r = cfg.gain * lp
        n = self.count + np.arange(1, x.size + 1)
        self.count += x.size
        if cfg.normalise:
            d = cfg.norm_decay
            m = _exp_smooth(x, d, self.mean_abs)
            self.mean_abs = float(m[-1])
            from sarlearn.stages.rules.relevance import NORM_EPS

            r = r / np.maximum(m / (1.0 - d**n), NORM_EPS)
        if cfg.cap is not None:
            r = np.minimum(r, cfg.cap)
        return r


def _exp_smooth(x: np.ndarray, a: float, start: float) -> np.ndarray:
    """``y_t = a y_{t-1} + (1 - a) x_t`` from ``y_{-1} = start`` (closed form per chunk)."""
    if a == 0.0:
        return x.copy()
    try:
        from scipy.signal import lfilter

        return lfilter([1.0 - a], [1.0, -a], x, zi=[a * start])[0]
    except ImportError:  # plain loop; chunks are short
        out = np.empty_like(x)
        y = start
        for i, v in enumerate(x):
            y = a * y + (1.0 - a) * v
            out[i] = y
        return out


class LiveState:
    """The decimated picture of the run that the page shows (thread-safe)."""

    def __init__(
        self,
        total_steps: int,
        info: dict[str, Any],
        relevance: Any | None = None,
        *,
        block: int = 25,
        max_points: int = 500,
        trail_steps: int = 3000,
        trail_every: int = 5,
    ) -> None:
        self.lock = threading.Lock()
        self.total = int(total_steps)
        self.info = dict(info)
        self.step = 0
        self.status = "running"
        self.message = ""
        self.pose: list[float] | None = None
        self.trail: list[list[float]] = []
        self.block = block
        self.max_points = max_points
        self.trail_steps = trail_steps
        self.trail_every = trail_every
        self._relevance = RelevanceTrace(relevance)
        self._steps: list[float] = []  # block start steps
        self._err: list[float] = []
        self._rel: list[float] = []
        self._pending: list[np.ndarray] = []  # |e|, relevance, step of an unfinished block
        self._t0 = time.perf_counter()
        self._rate_t, self._rate_step, self.rate = self._t0, 0, 0.0
        self.version = 0
        self.served_final = threading.Event()  # a page has seen the end of the run

    def add(self, rec: dict[str, np.ndarray]) -> None:
        """Take one chunk of records (agent 0)."""
        steps = np.asarray(rec["step"])
        if steps.size == 0:
            return
        err = np.abs(np.asarray(rec["error"][0], dtype=np.float64))
        rel = self._relevance(err)
        x, y, h = (np.asarray(rec[k][0], dtype=np.float64) for k in ("x", "y", "heading"))
        keep = (steps % self.trail_every) == 0
        trail = np.stack([x[keep], y[keep]], axis=1).round(2).tolist()
        now = time.perf_counter()
        with self.lock:
            # Blocks: stitch the unfinished one from the previous chunk, then whole blocks.
            if self._pending:
                pe, pr, ps = self._pending
                err, rel, first = np.concatenate([pe, err]), np.concatenate([pr, rel]), ps
            else:
                first = int(steps[0])
            n = (err.size // self.block) * self.block
            if n:
                self._err += err[:n].reshape(-1, self.block).mean(axis=1).tolist()
                self._rel += rel[:n].reshape(-1, self.block).mean(axis=1).tolist()
                self._steps += (first + self.block * np.arange(n // self.block)).tolist()
            self._pending = [err[n:], rel[n:], first + n] if n < err.size else []
            while len(self._err) > self.max_points:  # halve the resolution
                self._err = _pairs(self._err)
                self._rel = _pairs(self._rel)
                self._steps = self._steps[::2][: len(self._err)]
                self.block *= 2
            self.trail += trail
            max_trail = self.trail_steps // self.trail_every
            del self.trail[:-max_trail]
            self.pose = [float(x[-1]), float(y[-1]), float(h[-1])]
            self.step = int(steps[-1]) + 1
            if now - self._rate_t > 0.5:
                self.rate = (self.step - self._rate_step) / (now - self._rate_t)
                self._rate_t, self._rate_step = now, self.step
            self.version += 1

    def finish(self, status: str, message: str = "", report: str | None = None) -> None:
        """Mark the run ended (the page shows the status and, if given, the report link)."""
        with self.lock:
            self.status = status
            self.message = message
            if report:
                self.info["report"] = report
            self.version += 1

    def snapshot(self, since: int = 0, block: int | None = None) -> dict[str, Any]:
        """What ``/state.json`` returns. The series hold the points from index ``since`` on
        (``series.from``) when the client already has the first ``since`` points at this
        ``block``; else all of them (``from`` 0): a page polling twice a second receives only
        what is new."""
        with self.lock:
            if self.status != "running":
                self.served_final.set()
            start = since if (block == self.block and 0 <= since <= len(self._err)) else 0
            return {
                "version": self.version,
                "step": self.step,
                "total": self.total,
                "status": self.status,
                "message": self.message,
                "steps_per_second": round(self.rate, 1),
                "elapsed": round(time.perf_counter() - self._t0, 2),
                "pose": self.pose,
                "trail": self.trail[:],
                "series": {
                    "from": start,
                    "length": len(self._err),
                    "step": self._steps[start:],
                    "abs_error": np.round(self._err[start:], 5).tolist(),
                    "relevance": np.round(self._rel[start:], 5).tolist(),
                    "block": self.block,
                },
                **self.info,
            }


def _pairs(values: list[float]) -> list[float]:
    a = np.asarray(values[: len(values) // 2 * 2], dtype=np.float64)
    return a.reshape(-1, 2).mean(axis=1).tolist()


def track_png(track: Any, max_px: int = 600) -> bytes:
    """The floor of ``track`` as PNG bytes, at most ``max_px`` pixels on its longer side."""
    from PIL import Image

    from sarlearn.stages.world.render import background

    scale = max_px / max(track.width, track.height)
    buf = io.BytesIO()
    Image.fromarray(background(track, scale)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


class LiveView:
    """The live page of one run, served from a daemon thread on ``host:port``.

    Args:
        track: the :class:`~sarlearn.stages.world.track.Track` the robot drives on (None: no floor
            picture; the page then draws the path on a blank arena).
        total_steps: steps the run will take (for the progress).
        rule, track_name, seed: shown in the header.
        relevance: the rule's ``RelevanceConfig`` (None for the reflex alone or |e| as is).
        uses_relevance: False for rules that ignore the relevance (gdm, fa, ...): the curve
            is still drawn, labelled as what SaR would broadcast.
        host, port: where to serve; port 0 picks a free port.
    """

    def __init__(
        self,
        track: Any | None,
        total_steps: int,
        *,
        rule: str = "",
        track_name: str = "",
        seed: int | None = None,
        threshold: float = 0.1,
        window: int = 200,
        relevance: Any | None = None,
        uses_relevance: bool = True,
        frozen: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        width = float(getattr(track, "width", 250.0))
        height = float(getattr(track, "height", 250.0))
        info = {
            "rule": rule,
            "track": track_name,
            "seed": seed,
            "arena": [width, height],
            "threshold_mean_abs": threshold / window,
            "uses_relevance": uses_relevance,
            "frozen": frozen,
        }
        self.state = LiveState(total_steps, info, relevance)
        self.page = live_page().encode("utf-8")  # rendered once, served on every visit
        self.track_image = track_png(track) if track is not None else b""
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("LiveView.start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> str:
        """Serve the page; return its URL."""
        from sarlearn.errors import ConfigError

        handler = _make_handler(self)
        try:
            self._server = ThreadingHTTPServer((self._host, self._port), handler)
        except OSError as exc:
            raise ConfigError(
                f"live view: cannot serve on {self._host}:{self._port} ({exc.strerror or exc})"
            ) from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        )
        self._thread.start()
        return self.url

    def observe(self, rec: dict[str, np.ndarray], loop: Any = None) -> None:
        """``run_follow``'s ``on_records`` hook: take one chunk of records."""
        self.state.add(rec)

    def finish(self, status: str, message: str = "", report: str | None = None) -> None:
        """Show the run's end on the page."""
        self.state.finish(status, message, report)

    def close(self, linger: float = 1.5) -> None:
        """Stop serving once a page has fetched the run's end, or after ``linger`` seconds
        (so that an open page shows the final state)."""
        if self._server is not None and self.state.status != "running":
            self.state.served_final.wait(linger)
        self.stop()

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _make_handler(view: LiveView) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", view.page)
            elif path == "/state.json":
                query = parse_qs(self.path.partition("?")[2])
                since = int(query.get("since", ["0"])[0] or 0)
                block = int(query.get("block", ["0"])[0] or 0) or None
                body = json.dumps(view.state.snapshot(since, block)).encode("utf-8")
                self._send(200, "application/json", body)
            elif path == "/track.png" and view.track_image:
                self._send(200, "image/png", view.track_image, cache=True)
            elif path == "/favicon.ico":
                self._send(204, "image/x-icon", b"")
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, code: int, ctype: str, body: bytes, cache: bool = False) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=3600" if cache else "no-store")
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the terminal belongs to the progress bar

    return Handler


def live_page(poll_ms: int = POLL_MS) -> str:
    """The live page's HTML (template ``sarlearn/reports/templates/live.html.j2``)."""
    from sarlearn.reports.templates import render

    return render("live.html.j2", poll_ms=int(poll_ms))


__all__ = ["POLL_MS", "LiveState", "LiveView", "RelevanceTrace", "live_page", "track_png"]
