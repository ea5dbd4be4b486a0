"""`sarlearn tracks` (placeholder until its module lands)."""

from __future__ import annotations

import typer


def tracks() -> None:
    """Not built yet."""
    raise typer.Exit(code=1)
