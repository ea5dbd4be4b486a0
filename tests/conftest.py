"""Shared fixtures."""

from __future__ import annotations

import pytest

from engine_switch import force_numpy_engine


@pytest.fixture
def numpy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the reference (numpy) closed loop in run_follow (see engine_switch)."""
    force_numpy_engine(monkeypatch)


@pytest.fixture(autouse=True)
def checkpoint_on_every_step_boundary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests place checkpoints by ``checkpoint_every`` alone: runs here are shorter than the
    least time between two checkpoints (run.MIN_CHECKPOINT_SECONDS, tested on its own)."""
    from sarlearn.runs import run

    monkeypatch.setattr(run, "MIN_CHECKPOINT_SECONDS", 0.0)
