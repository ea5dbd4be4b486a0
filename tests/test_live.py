"""The live view (runs/live.py) without a browser: state, relevance, the HTTP server."""

from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest

from sarlearn.config import RelevanceConfig
from sarlearn.runs.live import LiveState, LiveView, RelevanceTrace
from sarlearn.stages.rules.relevance import Relevance
from sarlearn.stages.world.tracks import load_track


def chunk(start: int, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "step": np.arange(start, start + n),
        "error": rng.normal(size=(1, n)),
        "x": rng.uniform(0, 250, size=(1, n)),
        "y": rng.uniform(0, 250, size=(1, n)),
        "heading": rng.uniform(-3, 3, size=(1, n)),
    }


@pytest.mark.parametrize(
    "cfg",
    [
        RelevanceConfig(),
        RelevanceConfig(gain=2.0, lowpass=0.9),
        RelevanceConfig(lowpass=0.5, normalise=True, norm_decay=0.99),
        RelevanceConfig(gain=3.0, cap=1.5),
        RelevanceConfig(lowpass=0.9, normalise=True, cap=0.8),
    ],
)
def test_relevance_trace_matches_the_rule(cfg: RelevanceConfig) -> None:
    """Vectorised over chunks, the relevance shown equals the rule's step-by-step phi(|e|)."""
    rng = np.random.default_rng(0)
    e = np.abs(rng.normal(size=700))
    rel = Relevance(cfg)
    rel.bind(1)
    expected = np.array([rel(np.array([v]))[0] for v in e])
    trace = RelevanceTrace(cfg)
    got = np.concatenate([trace(e[a : a + 250]) for a in range(0, 700, 250)])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_relevance_trace_knows_every_field_of_the_relevance_config() -> None:
    """A new relevance option must be taught to the live view's vectorised copy (and added to
    the parametrisation above); 'mode' only says where r goes, not its value."""
    handled = {"mode", "gain", "lowpass", "normalise", "norm_decay", "cap"}
    assert set(RelevanceConfig.model_fields) == handled


def test_state_decimates_and_keeps_the_latest_pose() -> None:
    rng = np.random.default_rng(1)
    state = LiveState(100_000, {"rule": "sar"}, block=10, max_points=50, trail_steps=100)
    recs = [chunk(a, 130, rng) for a in range(0, 1300, 130)]
    for rec in recs:
        state.add(rec)
    snap = state.snapshot()
    assert snap["step"] == 1300 and snap["total"] == 100_000 and snap["rule"] == "sar"
    assert snap["pose"] == pytest.approx([recs[-1][k][0, -1] for k in ("x", "y", "heading")])
    series = snap["series"]
    assert len(series["abs_error"]) <= 50 and series["block"] == 40  # 130 blocks of 10 -> 32 of 40
    # Block means of |e| in steps 0..39 (blocks straddle chunks).
    e = np.abs(np.concatenate([r["error"][0] for r in recs]))
    assert series["abs_error"][0] == pytest.approx(e[:40].mean(), abs=1e-5)
    assert series["step"][:2] == [0, 40]
    assert len(snap["trail"]) == 100 // 5
    json.dumps(snap)  # what the server sends


def test_server_serves_page_state_and_track() -> None:
    track = load_track("circle")
    view = LiveView(track, 1000, rule="sar", track_name="circle", seed=0)
    url = view.start()
    try:
        assert url.startswith("http://127.0.0.1:")
        page = urllib.request.urlopen(url, timeout=5).read().decode()
        assert 'id="step"' in page and "state.json" in page
        png = urllib.request.urlopen(url + "track.png", timeout=5).read()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        view.observe(chunk(0, 250, np.random.default_rng(2)))
        state = json.loads(urllib.request.urlopen(url + "state.json", timeout=5).read())
        assert state["step"] == 250 and state["status"] == "running"
        view.finish("finished", "done")
        state = json.loads(urllib.request.urlopen(url + "state.json", timeout=5).read())
        assert state["status"] == "finished"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "nothing", timeout=5)
    finally:
        view.stop()


def test_busy_port_is_a_clear_error() -> None:
    from sarlearn.errors import ConfigError

    a = LiveView(None, 10)
    a.start()
    try:
        port = int(a.url.rsplit(":", 1)[1].strip("/"))
        with pytest.raises(ConfigError, match=f"cannot serve on 127.0.0.1:{port}"):
            LiveView(None, 10, port=port).start()
    finally:
        a.stop()


def test_snapshot_sends_only_new_points() -> None:
    rng = np.random.default_rng(3)
    state = LiveState(10_000, {}, block=10, max_points=1000)
    state.add(chunk(0, 200, rng))
    full = state.snapshot()["series"]
    state.add(chunk(200, 100, rng))
    new = state.snapshot(since=full["length"], block=full["block"])["series"]
    assert new["from"] == 20 and new["length"] == 30 and new["step"][0] == 200
    assert len(new["abs_error"]) == 10
    assert full["abs_error"] + new["abs_error"] == state.snapshot()["series"]["abs_error"]
    # A client at another resolution (or ahead of the server) gets everything again.
    assert state.snapshot(since=20, block=5)["series"]["from"] == 0
    assert state.snapshot(since=99, block=10)["series"]["from"] == 0
