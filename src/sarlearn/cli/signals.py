"""Ctrl-C and SIGTERM for every command: a short message and the conventional exit code.

Each command runs inside :func:`with_signals`: from its first line, SIGTERM (``kill``, a
scheduler's stop) raises ``KeyboardInterrupt`` like Ctrl-C does, so setup, the work and the
final writes all end through the same paths (a run or a sweep is left resumable). An interrupt
that reaches the command's end prints one line and exits 130 (Ctrl-C) or 143 (SIGTERM).
"""

from __future__ import annotations

import functools
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import typer

#: Exit codes of an interrupted command: Ctrl-C (128 + SIGINT), SIGTERM (128 + SIGTERM).
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
#: The message of a KeyboardInterrupt raised by SIGTERM (the run's own wording).
TERMINATED = "terminated (SIGTERM)"

F = TypeVar("F", bound=Callable[..., Any])

_received: list[int] = []


def terminated() -> bool:
    """Whether SIGTERM arrived during the current command."""
    return signal.SIGTERM in _received


def interrupt_exit_code() -> int:
    """143 if the current command received SIGTERM, else 130 (Ctrl-C)."""
    return EXIT_TERMINATED if terminated() else EXIT_INTERRUPTED


def _on_sigterm(signum: int, frame: Any) -> None:
    _received.append(signum)
    raise KeyboardInterrupt(TERMINATED)


def with_signals(command: F) -> F:
    """Wrap a Typer command: SIGTERM acts as Ctrl-C while it runs (main thread only), and an
    interrupt that escapes it becomes one line on stderr and exit 130 or 143."""

    @functools.wraps(command)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
        _received.clear()
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt as exc:
            code = EXIT_TERMINATED if terminated() or str(exc) == TERMINATED else 130
            typer.echo(TERMINATED if code == EXIT_TERMINATED else "interrupted (Ctrl-C)", err=True)
            raise typer.Exit(code) from None
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)

    return wrapped  # type: ignore[return-value]


__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "TERMINATED",
    "interrupt_exit_code",
    "terminated",
    "with_signals",
]
