"""Make run_follow use the reference (numpy) closed loop, so tests can inject faults at a
single step through ``ClosedLoop.step`` (the compiled engine runs whole chunks)."""

from __future__ import annotations

from typing import Any

import pytest


def force_numpy_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Patch ``sarlearn.engine.make_closed_loop`` to always build the numpy loop."""
    import sarlearn.engine as engine

    real = engine.make_closed_loop

    def numpy_loop(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        return real(cfg, *args, **{**kwargs, "engine": "numpy"})

    monkeypatch.setattr(engine, "make_closed_loop", numpy_loop)
