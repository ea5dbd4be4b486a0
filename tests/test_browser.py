"""report.html and the live view, opened in headless Chromium as a person would open them.

Needs Debian's ``chromium`` (/usr/bin/chromium); skipped with the reason when it is absent.
Screenshots are written to the test's tmp folder (and kept in $SARLEARN_SCREENSHOTS if set).
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from browser import Browser, chromium_path

pytestmark = pytest.mark.skipif(
    chromium_path() is None,
    reason="headless Chromium not installed (apt-get install chromium): the page tests need it",
)

IMAGES = "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"


@pytest.fixture(scope="module")
def browser() -> Browser:
    with Browser() as b:
        yield b


def keep(shot: Path) -> None:
    where = os.environ.get("SARLEARN_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(where) / shot.name)


def look(b: Browser, url: str, shot: Path) -> list:
    """Open ``url``, take a screenshot, return the images; fail on console errors."""
    n_events = len(b.events)
    b.open(url)
    b.wait_for("Array.from(document.images).every(i => i.complete)")
    b.screenshot(shot)
    keep(shot)
    assert shot.stat().st_size > 10_000  # a real picture, not a blank page
    errors = [e for e in b.console_errors() if e not in _before(b, n_events)]
    assert not errors, errors
    return b.evaluate(IMAGES)


def _before(b: Browser, n: int) -> list[str]:
    events, b.events = b.events, b.events[:n]
    try:
        return b.console_errors()
    finally:
        b.events = events


def test_run_report_renders(browser: Browser, tmp_path: Path) -> None:
    from sarlearn.config import RunConfig
    from sarlearn.runs.run import run_follow

    cfg = RunConfig().with_overrides(
        {"network.layers": [6, 2], "world.track": "circle", "steps": 600}
    )
    run_follow(cfg, tmp_path / "run", video=True)
    report = tmp_path / "run" / "report.html"
    text = report.read_text()
    assert "http://" not in text and "https://" not in text  # nothing fetched: reads offline
    images = look(browser, report.as_uri(), tmp_path / "run_report.png")
    assert len(images) == 3 and all(ok and w > 0 for _, ok, w in images), images
    assert browser.evaluate("document.querySelectorAll('table').length") >= 2
    assert browser.evaluate("document.querySelectorAll('table tr').length") > 10
    assert browser.evaluate("document.getElementById('status').textContent") == "finished"
    if (tmp_path / "run" / "run.mp4").is_file():  # decodable where the codec exists
        assert browser.evaluate("document.querySelectorAll('video').length") == 1
        state = browser.wait_for(
            "(() => { const v = document.querySelector('video');"
            " return v.readyState >= 1 || v.error ? [v.readyState, v.videoWidth, !!v.error]"
            " : null; })()",
            timeout=10,
        )
        assert not state[2], "the embedded video does not decode"
        assert state[1] > 0
    else:  # a GIF is an image
        assert (tmp_path / "run" / "run.gif").is_file()


@pytest.mark.slow  # a fake sweep and its figures: ~10 s
def test_sweep_report_renders(browser: Browser, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sarlearn.cli import app
    from sarlearn.sweeps.sweep import run_sweep
    from sweep_fakes import fake_run
    from test_report import report_spec

    run_sweep(report_spec(), tmp_path / "sw", run_fn=fake_run, jobs=1, trace_every=20)
    result = CliRunner().invoke(app, ["report", str(tmp_path / "sw")])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("report.html: file://"), lines[-1]  # the CLI's last line
    url = lines[-1].split(": ", 1)[1]
    n_figures = sum(line.startswith("figure: ") for line in lines)
    images = look(browser, url, tmp_path / "sweep_report.png")
    assert len(images) >= n_figures > 0 and all(w > 0 for _, _, w in images), images
    assert browser.evaluate("document.querySelectorAll('table').length") >= 2
    assert browser.evaluate("document.querySelectorAll('td').length") > 20


def test_live_view_advances(browser: Browser, tmp_path: Path) -> None:
    """A run serves its live page; in the browser the step counter advances while it runs."""
    import time

    from sarlearn.config import RunConfig
    from sarlearn.runs.live import LiveView
    from sarlearn.runs.run import run_follow
    from sarlearn.stages.world.tracks import load_track

    cfg = RunConfig().with_overrides(
        {"network.layers": [6, 2], "world.track": "circle", "steps": 3000}
    )
    view = LiveView(load_track("circle"), cfg.steps, rule="sar", track_name="circle", seed=0)
    url = view.start()
    go = threading.Event()

    def observe(rec: dict, loop: object) -> None:
        go.wait(30)  # start stepping once the page is open
        view.observe(rec, loop)
        time.sleep(0.05)  # ~3 s in all: long enough to watch several polls

    done: dict = {}
    runner = threading.Thread(
        target=lambda: done.update(
            run_follow(cfg, tmp_path / "live", figures=False, chunk=100, on_records=observe)
        ),
        daemon=True,
    )
    runner.start()
    try:
        n_events = len(browser.events)
        browser.open(url)
        go.set()
        seen = browser.wait_for(
            "(() => { const s = window.sarlearnSeen; const d = new Set(s);"
            " return d.size >= 4 && s[s.length - 1] > s[0] ? s : null; })()",
            timeout=30,
        )
        assert seen == sorted(seen) and seen[-1] > seen[0]
        shown = int(browser.evaluate("document.getElementById('step').textContent"))
        assert 0 < shown <= cfg.steps
        # The track canvas has the floor drawn (not blank).
        dark = browser.evaluate(
            "(() => { const c = document.getElementById('track');"
            " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            " let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 80) n++; return n; })()"
        )
        assert dark > 500
        shot = browser.screenshot(tmp_path / "live.png", full_page=False)
        keep(shot)
        errors = [e for e in browser.console_errors() if e not in _before(browser, n_events)]
        assert not errors, errors
    finally:
        go.set()
        runner.join(120)
        view.stop()
    assert done.get("status") == "finished"
