"""A track image whose line touches the image border, for the engine's equivalence tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def border_image(n: int = 48) -> np.ndarray:
    """Light floor with a dark L touching the right and the bottom border of the image."""
    img = np.zeros((n, n))
    img[n // 4 :, n - 3 :] = 1.0  # down the right edge
    img[n - 3 :, n // 4 :] = 1.0  # along the bottom edge
    img[n // 4, n // 4 :] = 0.6
    return img


def border_track_file(tmp_path: Path) -> Path:
    """:func:`border_image` saved as a PNG (dark = line) in ``tmp_path``."""
    path = tmp_path / "border.png"
    Image.fromarray((255 * (1.0 - border_image())).astype(np.uint8)).save(path)
    return path
