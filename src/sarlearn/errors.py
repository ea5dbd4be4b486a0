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


__all__ = [
    "ConfigError",
    "DivergenceError",
    "NonFiniteError",
    "OutputError",
    "SarlearnError",
    "ShapeError",
    "TrackError",
]
