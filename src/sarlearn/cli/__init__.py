"""The ``sarlearn`` command line: thin wrappers that parse, call the library and print.

Each subcommand lives in its own module and exposes one function; this file only wires them up.
"""

from __future__ import annotations

import gc
from typing import Any

import typer

from sarlearn.cli import bench, classify, follow, report, rl_baseline, robot, sweep, tracks
from sarlearn.cli.signals import with_signals


class _App(typer.Typer):
    """The ``sarlearn`` app: a Typer app that spares its process needless garbage collection.

    Calling it runs a command as the process's main program (standalone mode: it ends with
    ``SystemExit``). The objects alive when it starts (the modules imported so far) and when
    its command ends (numba's types and compiled kernels too) live until the process exits,
    so they are frozen (:func:`gc.freeze`): full collections, during the command and the one
    at the interpreter's exit, skip them. That saves a sweep ~0.3-0.4 s. (Tests invoke the
    commands through click, not through this call.)
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        gc.freeze()
        try:
            return super().__call__(*args, **kwargs)
        except SystemExit:
            gc.freeze()
            raise


app = _App(
    name="sarlearn",
    help="Closed-loop deep learning with Sign and Relevance (SaR) learning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Every command: SIGTERM acts as Ctrl-C, an interrupt ends in one line and exit 130 / 143.
app.command("follow")(with_signals(follow.follow))
app.command("tracks")(with_signals(tracks.tracks))
app.command("sweep")(with_signals(sweep.sweep))
app.command("report")(with_signals(report.report))
app.command("bench")(with_signals(bench.bench))
app.command("rl-baseline")(with_signals(rl_baseline.rl_baseline))
app.command("classify")(with_signals(classify.classify))
# The robot commands handle their own signals: the motors stop first, then the exit code.
app.command("twin")(robot.twin)
app.command("calibrate")(robot.calibrate)
app.command("drive")(robot.drive)


def main() -> None:
    """Entry point of the ``sarlearn`` console script."""
    app()
