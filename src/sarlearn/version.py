"""The package's version, importable without importing the whole package (run records carry it)."""

__version__ = "0.1.0"
