"""Shared fixtures."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def numpy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Force the reference (numpy) closed loop in run_follow, so tests can inject faults at
    a single step through ``ClosedLoop.step`` (the compiled engine runs whole chunks)."""
    import sarlearn.engine as engine

    real = engine.make_closed_loop

    def numpy_loop(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        return real(cfg, *args, **{**kwargs, "engine": "numpy"})

    monkeypatch.setattr(engine, "make_closed_loop", numpy_loop)
