"""Shared fixtures."""

from __future__ import annotations

import pytest

from engine_switch import force_numpy_engine


@pytest.fixture
def numpy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the reference (numpy) closed loop in run_follow (see engine_switch)."""
    force_numpy_engine(monkeypatch)
