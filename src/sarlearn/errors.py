"""Exceptions with messages that name the problem, shared across the package."""

from __future__ import annotations


class SarlearnError(Exception):
    """Base class of sarlearn's own errors."""


class ConfigError(SarlearnError, ValueError):
    """An impossible or malformed configuration; the message names the offending field."""


class ShapeError(SarlearnError, ValueError):
    """An array has the wrong shape; the message gives the expected and actual shapes."""


class NonFiniteError(SarlearnError, ValueError):
    """A NaN or infinite value where a finite number is required (an error signal, an input)."""


class DivergenceError(SarlearnError, FloatingPointError):
    """The network's weights or outputs blew up during learning."""


class TrackError(SarlearnError, ValueError):
    """A track image is missing, unreadable, empty or of the wrong format."""


class OutputError(SarlearnError, OSError):
    """The output folder cannot be created or written (read-only, full disk, a file in the
    way); the message names the path and the reason."""


def npz_load_problem(exc: BaseException) -> str:
    """What went wrong reading a ``.npz`` file, in the user's terms: numpy's own message
    advises ``allow_pickle`` for any file that is not an array file (a PNG, a text file), which
    would be unsafe advice, so that case is named for what it is."""
    text = str(exc)
    if "allow_pickle" in text or "pickled" in text:
        return "it is not a numpy .npz archive (a different kind of file)"
    if isinstance(exc, EOFError):
        return "the file is empty or cut short"
    if type(exc).__name__ == "BadZipFile":  # zipfile's, not imported here
        return "it is not a complete .npz archive (a zip file that is damaged or cut short)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return text or type(exc).__name__


__all__ = [
    "ConfigError",
    "DivergenceError",
    "NonFiniteError",
    "OutputError",
    "SarlearnError",
    "ShapeError",
    "TrackError",
    "npz_load_problem",
]
