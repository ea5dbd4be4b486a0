"""Per-run figures: path.png keeps a non-square track's shape; learning.png marks settling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sarlearn.metrics import SuccessCriterion
from sarlearn.reports import figures


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The Figure objects the module saves (still written to disk)."""
    made: list[Any] = []
    save = figures._save

    def keep(fig: Any, path: str | Path) -> Path:
        made.append(fig)
        return save(fig, path)

    monkeypatch.setattr(figures, "_save", keep)
    return made


def test_arena_extent_of_non_square_images() -> None:
    assert figures.arena_extent(np.zeros((200, 350)), 350.0) == pytest.approx((350.0, 200.0))
    assert figures.arena_extent(np.zeros((400, 100)), 200.0) == pytest.approx((50.0, 200.0))
    assert figures.arena_extent(None, 250.0) == (250.0, 250.0)


@pytest.mark.parametrize("errors", [None, "some"])
def test_path_figure_draws_a_wide_track_unstretched(
    tmp_path: Path, drawn: list[Any], errors: str | None
) -> None:
    img = np.zeros((80, 140))  # 350 x 200 units
    img[40, :] = 1.0
    t = np.linspace(0, 1, 300)
    xs, ys = 20 + 300 * t, 100 + 50 * np.sin(6 * t)
    e = None if errors is None else np.where(t < 0.2, 1.0, 0.0)
    out = figures.path_figure(tmp_path / "path.png", xs, ys, img, arena=350.0, errors=e)
    assert out.read_bytes()[:4] == b"\x89PNG"
    ax = drawn[0].axes[0]
    assert ax.get_xlim() == pytest.approx((0, 350)) and ax.get_ylim() == pytest.approx((0, 200))
    assert ax.get_aspect() == 1.0
    (image,) = ax.get_images()
    assert image.get_extent() == pytest.approx([0, 350, 0, 200])
    # the map panel keeps the arena's proportions on the page
    drawn[0].canvas.draw()
    box = ax.get_window_extent()
    assert box.width / box.height == pytest.approx(350 / 200, rel=0.03)


def test_learning_figure_marks_first_passage_and_settling(tmp_path: Path, drawn: list[Any]) -> None:
    crit = SuccessCriterion(warmup=5, window=3, threshold=0.1, hold=4, settle_window=10)
    e = np.zeros(40)
    e[[15, 25]] = 1.0
    figures.learning_figure(tmp_path / "l.png", e, crit, success_step=5, settled_step=28)
    ax_s = drawn[0].axes[1]
    xs = sorted(line.get_xdata()[0] for line in ax_s.get_lines() if len(line.get_xdata()) == 2)
    assert 5 in xs and 28 in xs
    texts = [t.get_text() for t in ax_s.texts]
    assert "success at step 5" in texts and "settled from step 28" in texts
