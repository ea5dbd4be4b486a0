"""The ``sarlearn`` command line: thin wrappers that parse, call the library and print.

Each subcommand lives in its own module and exposes one function; this file only wires them up.
"""

from __future__ import annotations

import typer

from sarlearn.cli import bench, classify, follow, report, rl_baseline, sweep, tracks

app = typer.Typer(
    name="sarlearn",
    help="Closed-loop deep learning with Sign and Relevance (SaR) learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("follow")(follow.follow)
app.command("tracks")(tracks.tracks)
app.command("sweep")(sweep.sweep)
app.command("report")(report.report)
app.command("bench")(bench.bench)
app.command("rl-baseline")(rl_baseline.rl_baseline)
app.command("classify")(classify.classify)


def main() -> None:
    """Entry point of the ``sarlearn`` console script."""
    app()
