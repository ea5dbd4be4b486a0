"""`sarlearn report`: figures and tables (report.md) from a sweep folder, or several merged."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sarlearn.cli.checks import check_output_path
from sarlearn.errors import ConfigError


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
        str | None,
        typer.Option("--out", "-o", help="Report folder (default: the first DIR/report)."),
    ] = None,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="First rebuild an unreadable results.parquet from the per-run parts, and set "
            "aside an unreadable traces.parquet or sweep.json (needs no sweep running there).",
        ),
    ] = False,
) -> None:
    """Write report.md, CSV tables, PNG figures and a self-contained report.html for a sweep."""
    from sarlearn.reports.report import ReportError, make_report
    from sarlearn.store.store import ResultStore, StoreCorruptError, StoreLockedError

    try:
        # where the report goes, checked before any figure is drawn
        target = (
            Path(out) if out is not None else (sweep_dirs[0] / "report" if sweep_dirs else None)
        )
        if out is not None or (target is not None and sweep_dirs[0].is_dir()):
            check_output_path(out if out is not None else target, "--out")
        if repair:
            for folder in sweep_dirs:
                if not folder.is_dir():
                    continue  # make_report names it
                store = ResultStore(folder)
                with store.lock():
                    for line in store.repair():
                        typer.echo(f"repaired: {line}", err=True)
        made = make_report(sweep_dirs, Path(out) if out is not None else None)
    except (ReportError, StoreCorruptError, StoreLockedError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except OverflowError as exc:  # matplotlib's log axes over values such as lr = 1e300
        typer.echo(
            f"error: the report's figures cannot be drawn: the sweep's values span too many "
            f"orders of magnitude for a plot axis (e.g. a learning rate near 1e300; "
            f"{type(exc).__name__}: {exc}); its tables are in the report folder",
            err=True,
        )
        raise typer.Exit(code=2) from None
    typer.echo(f"report: {made.markdown}")
    for fig in made.figures:
        typer.echo(f"figure: {fig}")
    from sarlearn.reports.html import write_markdown_report

    page = write_markdown_report(made.markdown, figures=made.figures)
    typer.echo(f"report.html: {page.resolve().as_uri()}")
