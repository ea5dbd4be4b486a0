"""`sarlearn follow` (placeholder until its module lands)."""

from __future__ import annotations

import typer


def follow() -> None:
    """Not built yet."""
    raise typer.Exit(code=1)
