"""`sarlearn report`: figures and tables (report.md) from a sweep folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    sweep_dir: Annotated[Path, typer.Argument(help="Sweep folder written by `sarlearn sweep`.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Report folder (default: DIR/report).")
    ] = None,
) -> None:
    """Write report.md, CSV tables and PNG figures for a sweep."""
    from sarlearn.experiments.report import ReportError, make_report

    try:
        made = make_report(sweep_dir, out)
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"report: {made.markdown}")
    for fig in made.figures:
        typer.echo(f"figure: {fig}")
