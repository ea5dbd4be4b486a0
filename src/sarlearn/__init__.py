"""sarlearn: closed-loop deep learning with Sign and Relevance (SaR) learning."""

from __future__ import annotations

__version__ = "0.1.0"
