"""`sarlearn report`: figures and tables (report.md) from a sweep folder, or several merged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    sweep_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Sweep folder(s) written by `sarlearn sweep`; several (e.g. the shards of a "
            "cluster sweep) are merged into one report.",
            metavar="DIR...",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Report folder (default: the first DIR/report)."),
    ] = None,
) -> None:
    """Write report.md, CSV tables, PNG figures and a self-contained report.html for a sweep."""
    from sarlearn.experiments.report import ReportError, make_report

    try:
        made = make_report(sweep_dirs, out)
    except ReportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(f"report: {made.markdown}")
    for fig in made.figures:
        typer.echo(f"figure: {fig}")
    from sarlearn.experiments.html import write_markdown_report

    page = write_markdown_report(made.markdown, figures=made.figures)
    typer.echo(f"report.html: {page.resolve().as_uri()}")
