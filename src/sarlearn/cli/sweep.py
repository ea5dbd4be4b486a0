"""`sarlearn sweep` (placeholder until its module lands)."""

from __future__ import annotations

import typer


def sweep() -> None:
    """Not built yet."""
    raise typer.Exit(code=1)
