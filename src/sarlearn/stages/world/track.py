"""The floor of the arena: a darkness image with a fast bilinear lookup.

Conventions (docs/architecture.md, "Conventions of the world"):

- world coordinates in arena units, x to the right, y up; the image spans the arena, its
  longer side is ``arena`` units long and its pixels are square;
- image row 0 is the top of the arena (largest y), column 0 the left edge (x = 0);
- pixel ``(i, j)`` is centred on ``x = (j + 0.5) * s``, ``y = height - (i + 0.5) * s``
  where ``s = arena / max(H, W)`` is the size of a pixel in units;
- darkness is in [0, 1], 1 = the dark line, 0 = light floor.

The lookup interpolates bilinearly between pixel centres of the image padded with one ring of
zero (light) pixels: darkness is continuous everywhere, fades to 0 within half a pixel outside
the arena, and is exactly 0 beyond. A compiled engine must reproduce exactly this rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from sarlearn.errors import NonFiniteError, ShapeError, TrackError

#: Darkness at or above which a pixel counts as part of the line (start search, empty check).
DARK = 0.5

#: Image formats accepted by :meth:`Track.from_image` (as Pillow names them).
IMAGE_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP")

#: Smallest accepted image side, in pixels.
MIN_PIXELS = 8


class LookupTable(NamedTuple):
    """What the bilinear lookup reads: ``flat`` is the padded image, row-major, with ``stride``
    values per row; a point (x, y) maps to ``u = x inv + 0.5``, ``v = (height - y) inv + 0.5``,
    clamped to ``[0, umax]`` and ``[0, vmax]``."""

    flat: NDArray[np.float64]
    stride: int
    inv: float
    height: float
    umax: float
    vmax: float


class Track:
    """A darkness image spanning the arena.

    Args:
        darkness: ``(H, W)`` floor darkness in [0, 1] (1 = dark line), row 0 at the top.
        arena: length of the image's longer side in units (the arena is square for square
            images, ``arena x arena * H / W`` otherwise).
        centreline: ``(N, 2)`` closed polyline of the line's centre in units (generated
            tracks), or None.
        name: a short label (the built-in name or the file name).
    """

    def __init__(
        self,
        darkness: ArrayLike,
        arena: float = 250.0,
        *,
        centreline: ArrayLike | None = None,
        name: str = "custom",
    ) -> None:
        img = np.asarray(darkness, dtype=np.float64)
        if img.ndim != 2 or min(img.shape) < 2:
            raise ShapeError(f"Track: darkness must be a 2-D image (H, W), got shape {img.shape}")
        if not np.isfinite(img).all():
            raise NonFiniteError("Track: darkness contains NaN or infinite values")
        if not arena > 0:
            raise TrackError(f"Track: arena must be > 0 units, got {arena}")
        img = np.clip(img, 0.0, 1.0)
        img.setflags(write=False)
        self.image: NDArray[np.float64] = img
        """``(H, W)`` darkness, read-only."""
        self.name = name
        h, w = img.shape
        self.scale = float(arena) / max(h, w)
        """Size of one pixel in units."""
        self.width = w * self.scale
        self.height = h * self.scale
        self._inv = 1.0 / self.scale
        # A ring of light pixels around the image (two wide at the far sides, for the second
        # interpolation neighbour): clamping into it, the lookup needs no bounds test.
        padded = np.pad(img, ((1, 2), (1, 2)))
        self._flat = padded.ravel()
        self._stride = w + 3
        self._umax = float(w + 1)
        self._vmax = float(h + 1)
        self.centreline: NDArray[np.float64] | None = None
        """``(N, 2)`` closed centreline polyline in units (generated tracks), else None."""
        if centreline is not None:
            c = np.asarray(centreline, dtype=np.float64)
            if c.ndim != 2 or c.shape[1] != 2 or len(c) < 3:
                raise ShapeError(f"Track: centreline must be (N >= 3, 2), got {c.shape}")
            c.setflags(write=False)
            self.centreline = c

    # ------------------------------------------------------------------ geometry
    @property
    def arena(self) -> float:
        """Length of the arena's longer side (units)."""
        return max(self.width, self.height)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of the image in pixels."""
        return self.image.shape  # type: ignore[return-value]

    @property
    def pixels_per_unit(self) -> float:
        """Image resolution."""
        return self._inv

    def inside(self, points: ArrayLike) -> NDArray[np.bool_]:
        """Whether points ``(..., 2)`` lie in the arena ``[0, width] x [0, height]``: ``(...)``."""
        p = np.asarray(points, dtype=np.float64)
        x, y = p[..., 0], p[..., 1]
        return (x >= 0) & (x <= self.width) & (y >= 0) & (y <= self.height)

    def to_pixels(self, points: ArrayLike) -> NDArray[np.float64]:
        """World points ``(..., 2)`` -> continuous ``(..., 2)`` (column, row) image coordinates,
        integer values at pixel centres."""
        p = np.asarray(points, dtype=np.float64)
        col = p[..., 0] * self._inv - 0.5
        row = (self.height - p[..., 1]) * self._inv - 0.5
        return np.stack([col, row], axis=-1)

    def to_world(self, pixels: ArrayLike) -> NDArray[np.float64]:
        """Inverse of :meth:`to_pixels`: ``(..., 2)`` (column, row) -> ``(..., 2)`` (x, y)."""
        q = np.asarray(pixels, dtype=np.float64)
        x = (q[..., 0] + 0.5) * self.scale
        y = self.height - (q[..., 1] + 0.5) * self.scale
        return np.stack([x, y], axis=-1)

    # ------------------------------------------------------------------ lookup
    def darkness(self, points: ArrayLike) -> NDArray[np.float64]:
        """Floor darkness at world points.

        Args:
            points: ``(..., 2)`` x, y in units.

        Returns:
            ``(...)`` darkness in [0, 1], bilinear between pixel centres; 0 outside the arena.
        """
        p = np.asarray(points, dtype=np.float64)
        if p.shape[-1:] != (2,):
            raise ShapeError(f"Track.darkness: points must be (..., 2), got {p.shape}")
        if not np.isfinite(p).all():
            raise NonFiniteError("Track.darkness: points contain NaN or infinite values")
        flat = p.reshape(-1, 2)
        return self.lookup(flat[:, 0], flat[:, 1]).reshape(p.shape[:-1])

    def lookup(self, x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        """:meth:`darkness` without validation (hot path): x, y float64 arrays of equal shape,
        left unchanged."""
        # Coordinates in the padded image: pixel j of the image is column j + 1.
        u = x * self._inv + 0.5
        v = (self.height - y) * self._inv + 0.5
        # Clamping into the padded ring sends far-away points onto zero pixels.
        np.minimum(np.maximum(u, 0.0, out=u), self._umax, out=u)
        np.minimum(np.maximum(v, 0.0, out=v), self._vmax, out=v)
        j = u.astype(np.intp)
        i = v.astype(np.intp)
        fu = u - j
        fv = v - i
        k = i * self._stride + j
        f = self._flat
        top = f[k]
        top += (f[k + 1] - top) * fu
        k += self._stride
        bottom = f[k]
        bottom += (f[k + 1] - bottom) * fu
        top += (bottom - top) * fv
        return top

    @property
    def lookup_table(self) -> LookupTable:
        """The padded image and constants of the bilinear lookup, for compiled engines: they
        read exactly what :meth:`lookup` reads (one padding and clamping rule)."""
        return LookupTable(
            self.padded.ravel(), self._stride, self._inv, self.height, self._umax, self._vmax
        )

    @property
    def padded(self) -> NDArray[np.float64]:
        """``(H + 3, W + 3)`` the image inside its light ring, as :meth:`darkness` reads it:
        image pixel ``(i, j)`` is ``padded[i + 1, j + 1]`` (read-only; for compiled engines)."""
        view = self._flat.reshape(-1, self._stride)
        view.setflags(write=False)
        return view

    def dark_mask(self, threshold: float = DARK) -> NDArray[np.bool_]:
        """``(H, W)`` pixels that belong to the line (darkness >= threshold)."""
        return self.image >= threshold

    # ------------------------------------------------------------------ files
    @classmethod
    def from_image(
        cls,
        path: str | Path,
        arena: float = 250.0,
        *,
        normalise: bool = True,
        resolution: float | None = None,
    ) -> Track:
        """Load a PNG/JPEG (or BMP, GIF, TIFF, WebP) image as the floor; dark = line.

        Colour images are converted to luminance, transparency is composited onto white.
        With ``normalise`` the floor level (the median darkness, as most of an image is floor,
        plus a dead zone for its noise: at least a tenth of the contrast) is mapped to 0 and the
        darkest pixel to 1, so a photographed grey floor reads as exactly light and faded tape
        as fully dark; on a clean drawing only the faintest anti-aliasing is trimmed. Use
        ``normalise=False`` for the raw ``1 - luminance``.

        With ``resolution`` (pixels per unit, the simulation's ``world.resolution``), an image
        more than twice as fine (longer side above ``2 * arena * resolution`` pixels) is
        resampled (box filter) to ``arena * resolution`` pixels on its longer side while it is
        read, so a large photo costs memory for the simulation's resolution only.

        Raises:
            TrackError: naming the file, when it is missing, unreadable, not an image of an
                accepted format, too small, or has no dark pixels (darkness >= 0.5).
        """
        path = Path(path)
        max_side = None
        if resolution is not None:
            max_side = max(MIN_PIXELS, round(arena * resolution))
        img = read_darkness(path, max_side)
        if normalise:
            img = normalise_darkness(img)
        return cls(img, arena, name=path.name)

    def to_uint8(self) -> NDArray[np.uint8]:
        """``(H, W)`` brightness image (255 = light floor, 0 = dark line)."""
        return np.round((1.0 - self.image) * 255.0).astype(np.uint8)

    def save_png(self, path: str | Path) -> Path:
        """Write the floor as a greyscale PNG (white floor, black line); returns the path.

        Loading it back with :meth:`from_image` (same ``arena``) gives the same track up to
        8-bit quantisation.
        """
        from PIL import Image

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.to_uint8(), mode="L").save(path, format="PNG")
        return path

    def __repr__(self) -> str:
        h, w = self.shape
        return (
            f"Track({self.name!r}, {self.width:g} x {self.height:g} units, {w} x {h} px, "
            f"centreline={'yes' if self.centreline is not None else 'no'})"
        )


def read_darkness(path: Path, max_side: int | None = None) -> NDArray[np.float64]:
    """Read an image file as ``(H, W)`` darkness in [0, 1] (1 - luminance).

    With ``max_side``, an image whose longer side exceeds ``2 * max_side`` pixels is resampled
    to ``max_side`` on its longer side before it is converted to floats.

    Raises:
        TrackError: naming the file and the problem.
    """
    from PIL import Image, UnidentifiedImageError

    if not path.exists():
        raise TrackError(f"track image {path}: file not found")
    if not path.is_file():
        raise TrackError(f"track image {path}: not a file")
    try:
        with Image.open(path) as im:
            fmt = im.format
            if fmt not in IMAGE_FORMATS:
                raise TrackError(
                    f"track image {path}: format {fmt} is not supported "
                    f"(use PNG or JPEG; also accepted: {', '.join(IMAGE_FORMATS[2:])})"
                )
            original = im.size  # errors name the file's own size, not the resampled one
            if max_side is not None and max(im.size) > 2 * max_side:
                scale = max_side / max(im.size)
                size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
                im.draft(None, size)  # JPEG: decode at a reduced scale directly
                im = _resampled(im, size)
            else:
                im.load()
            grey = _to_grey(im)
    except TrackError:
        raise
    except Image.DecompressionBombError as exc:
        raise TrackError(f"track image {path}: too large to read safely ({exc})") from None
    except MemoryError:
        raise TrackError(f"track image {path}: too large for this machine's memory") from None
    except UnidentifiedImageError:
        raise TrackError(
            f"track image {path}: not an image file (expected a PNG or JPEG)"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise TrackError(f"track image {path}: cannot be read ({exc})") from None
    if min(grey.shape) < MIN_PIXELS:
        resampled = (grey.shape[1], grey.shape[0]) != original
        raise TrackError(
            f"track image {path}: too small ({original[0]} x {original[1]} px"
            + (f", {grey.shape[1]} x {grey.shape[0]} once resampled" if resampled else "")
            + f"; need at least {MIN_PIXELS} x {MIN_PIXELS})"
        )
    dark = 1.0 - grey
    fraction = float((dark >= DARK).mean())
    if fraction == 0.0:
        raise TrackError(
            f"track image {path}: no dark pixels (the line must be darker than mid-grey on a "
            f"light floor; the darkest pixel has darkness {dark.max():.2f})"
        )
    if fraction > 0.5:
        raise TrackError(
            f"track image {path}: {fraction:.0%} of the pixels are dark; the floor must be light "
            f"and the line dark (is the image inverted?)"
        )
    return dark


def _resampled(im: object, size: tuple[int, int]) -> object:
    """``im`` box-resampled to ``size`` (W, H), transparency composited onto white first."""
    from PIL import Image

    assert isinstance(im, Image.Image)
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return im.convert("F").resize(size, Image.Resampling.BOX)
    if im.mode == "P" or "A" in im.mode or im.mode == "LA":
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return im.convert("L").resize(size, Image.Resampling.BOX)


def _to_grey(im: object) -> NDArray[np.float64]:
    """Pillow image -> ``(H, W)`` brightness in [0, 1]; alpha composited onto white."""
    from PIL import Image

    assert isinstance(im, Image.Image)
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        return np.clip(a / top, 0.0, 1.0)
    if im.mode == "P" or "A" in im.mode or im.mode == "LA":
        im = im.convert("RGBA")
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im)
    return np.asarray(im.convert("L"), dtype=np.float64) / 255.0


def normalise_darkness(dark: NDArray[np.float64]) -> NDArray[np.float64]:
    """Stretch darkness so the floor reads 0 and the darkest pixel 1.

    The floor level is the median (most of an image is floor) plus a dead zone: four robust
    standard deviations of the floor's noise, and at least a tenth of the contrast, so paper
    texture, sensor noise or JPEG ringing next to the line read as exactly 0.
    """
    median = float(np.median(dark))
    top = float(dark.max())
    if top - median < 0.1:
        return dark  # no contrast to stretch (the caller has checked there is a line)
    noise = 1.4826 * float(np.median(np.abs(dark - median)))
    floor = median + max(4.0 * noise, 0.1 * (top - median))
    return np.clip((dark - floor) / (top - floor), 0.0, 1.0)


__all__ = [
    "DARK",
    "IMAGE_FORMATS",
    "LookupTable",
    "Track",
    "normalise_darkness",
    "read_darkness",
]
