"""`sarlearn bench` (placeholder until its module lands)."""

from __future__ import annotations

import typer


def bench() -> None:
    """Not built yet."""
    raise typer.Exit(code=1)
