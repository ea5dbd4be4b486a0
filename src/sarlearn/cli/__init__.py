"""The ``sarlearn`` command line: thin wrappers that parse, call the library and print.

Each subcommand lives in its own module and exposes one function; this file only wires them up.
"""

from __future__ import annotations

import gc
from typing import Any

import typer

from sarlearn.cli import bench, classify, follow, report, rl_baseline, sweep, tracks


class _App(typer.Typer):
    """The ``sarlearn`` app: a Typer app whose process exits quickly after a command."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit:
            # The command is done and the process exits (standalone mode): let the
            # interpreter's last garbage collection skip every object alive now (the
            # imported modules, numba's types and compiled kernels), which the end of the
            # process frees anyway. It would take ~0.2-0.3 s of every command's exit.
            gc.freeze()
            raise


app = _App(
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
