"""Image-classification data sets for the supervised benchmarks, from local files only.

- ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, offline), split
  once (fixed seed 0, stratified) into 1,347 training and 450 test images.
- ``mnist`` / ``fashion-mnist``: 28x28, 60,000 training and 10,000 test images, read from a
  folder holding the four IDX files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally ``.gz``) or from one
  ``.npz`` with ``x_train, y_train, x_test, y_test`` (the layout of Keras' ``mnist.npz``).
  Nothing is downloaded: a missing file raises :class:`DatasetError` saying where to get it.
  Without a path, ``fashion-mnist`` is read from Debian's package ``dataset-fashion-mnist``
  (``apt-get install dataset-fashion-mnist``: :data:`DEBIAN_FASHION_MNIST`).

Images come as float32 ``(n, 1, height, width)`` in [0, 1], labels as int64 ``(n,)``.
"""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from sarlearn.errors import SarlearnError, npz_load_problem

DATASET_NAMES = ("digits", "mnist", "fashion-mnist")

#: Where Debian's ``dataset-fashion-mnist`` puts the four gzipped IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_SOURCES = {
    "mnist": "the MNIST page of Yann LeCun (or any mirror of its four IDX files), or Keras' "
    "mnist.npz",
    "fashion-mnist": "the zalandoresearch/fashion-mnist repository on GitHub (data/fashion), "
    "or Keras' fashion-mnist files",
}
_IDX = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


class DatasetError(SarlearnError, ValueError):
    """A data set is missing, unreadable or malformed; the message says what and where."""


@dataclass(frozen=True)
class ImageData:
    """Train and test images and labels of one data set.

    Attributes:
        x_train: (n_train, channels, height, width) float32 in [0, 1].
        y_train: (n_train,) int64 class labels 0 .. n_classes-1.
        x_test, y_test: the same for the test set.
        name: the data set's name.
    """

    x_train: NDArray[np.float32]
    y_train: NDArray[np.int64]
    x_test: NDArray[np.float32]
    y_test: NDArray[np.int64]
    name: str

    @property
    def n_classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width)."""
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> ImageData:
        """The first ``n_train`` training and ``n_test`` test images (None = all)."""
        return ImageData(
            self.x_train[:n_train],
            self.y_train[:n_train],
            self.x_test[:n_test],
            self.y_test[:n_test],
            self.name,
        )

    def validation_split(self, fraction: float = 0.2, seed: int = 0) -> ImageData:
        """Hold out ``fraction`` of the training set as the "test" set (for tuning rates
        without looking at the real test set)."""
        if not 0 < fraction < 1:
            raise DatasetError(f"validation fraction must be in (0, 1), got {fraction}")
        order = np.random.default_rng(seed).permutation(len(self.y_train))
        n_val = round(fraction * len(order))
        val, train = order[:n_val], order[n_val:]
        return ImageData(
            self.x_train[train],
            self.y_train[train],
            self.x_train[val],
            self.y_train[val],
            f"{self.name}/validation",
        )


def load_dataset(name: str, path: str | Path | None = None) -> ImageData:
    """Load ``digits``, ``mnist`` or ``fashion-mnist`` (the last two from ``path``).

    Raises:
        DatasetError: unknown name, missing path or files (with where to get them), malformed
            files.
    """
    if name == "digits":
        return load_digits()
    if name not in DATASET_NAMES:
        raise DatasetError(f"unknown data set {name!r}; known: {', '.join(DATASET_NAMES)}")
    if path is None and name == "fashion-mnist":
        if not DEBIAN_FASHION_MNIST.is_dir():
            raise DatasetError(
                f"fashion-mnist: no --data PATH given and {DEBIAN_FASHION_MNIST} does not exist; "
                "install Debian's package (apt-get install dataset-fashion-mnist) or pass "
                f"--data with the four IDX files (get them from {_SOURCES[name]})"
            )
        path = DEBIAN_FASHION_MNIST
    if path is None:
        raise DatasetError(
            f"{name} needs its files: pass --data PATH (a folder with the four IDX files "
            f"{', '.join(_IDX.values())} (.gz allowed), or an .npz with x_train, y_train, x_test, "
            f"y_test). Get them from {_SOURCES[name]}; nothing is downloaded at run time."
        )
    return load_image_files(path, name)


def load_digits() -> ImageData:
    """scikit-learn's 8x8 digits, /16 to [0, 1], a fixed stratified 75/25 split (seed 0)."""
    try:
        from sklearn.datasets import load_digits as sk_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - sklearn comes with the torch extra
        raise DatasetError(
            "the digits data set needs scikit-learn: pip install 'sarlearn[torch]'"
        ) from exc
    bunch = sk_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    return ImageData(x_tr, y_tr, x_te, y_te, "digits")


def load_image_files(path: str | Path, name: str = "mnist") -> ImageData:
    """MNIST-format images from a folder of IDX files or one .npz file (see module docstring)."""
    path = Path(path)
    where = _SOURCES.get(name, _SOURCES["mnist"])
    if not path.exists():
        raise DatasetError(
            f"{name}: {path} does not exist. Put the four IDX files ({', '.join(_IDX.values())}, "
            f".gz allowed) in a folder, or an .npz with x_train, y_train, x_test, y_test, and "
            f"pass its path. Get them from {where}; nothing is downloaded at run time."
        )
    if path.is_file():
        arrays = _read_npz(path)
    else:
        arrays = {}
        for key, stem in _IDX.items():
            candidates = [path / stem, path / (stem + ".gz"), path / stem.replace("-idx", ".idx")]
            found = next((p for p in candidates if p.is_file()), None)
            if found is None:
                raise DatasetError(
                    f"{name}: {path} has no {stem}[.gz]; it needs the four IDX files "
                    f"{', '.join(_IDX.values())}. Get them from {where}."
                )
            arrays[key] = read_idx(found)
    x_tr, x_te = (_images(arrays[k], k, path) for k in ("x_train", "x_test"))
    y_tr, y_te = (arrays[k].astype(np.int64).reshape(-1) for k in ("y_train", "y_test"))
    for x, y, part in ((x_tr, y_tr, "train"), (x_te, y_te, "test")):
        if len(x) != len(y):
            raise DatasetError(f"{path}: {len(x)} {part} images but {len(y)} labels")
    return ImageData(x_tr, y_tr, x_te, y_te, name)


def read_idx(path: str | Path) -> NDArray:
    """One IDX file (optionally gzipped): the big-endian array it holds."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DatasetError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if raw[2] not in dtypes:
        raise DatasetError(f"{path}: unknown IDX element type 0x{raw[2]:02x}")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    dtype = np.dtype(dtypes[raw[2]])
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise DatasetError(
            f"{path}: header says {tuple(dims)} ({expected} bytes) but holds {len(raw) - offset}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(dims)


def write_idx(path: str | Path, array: NDArray[np.uint8]) -> None:
    """Write a uint8 array as an IDX file (gzipped if ``path`` ends in .gz); for tests."""
    a = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, a.ndim]) + np.array(a.shape, dtype=">u4").tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header + a.tobytes())


def _read_npz(path: Path) -> dict[str, NDArray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in _IDX if k not in z.files]
            if missing:
                raise DatasetError(
                    f"{path} lacks {', '.join(missing)} (needs x_train, y_train, x_test, y_test)"
                )
            return {k: z[k] for k in _IDX}
    # EOFError: an empty file; BadZipFile: a zip archive cut short or damaged
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, DatasetError):
            raise
        raise DatasetError(f"cannot read {path} as .npz: {npz_load_problem(exc)}") from None


def _images(x: NDArray, key: str, path: Path) -> NDArray[np.float32]:
    if x.ndim == 3:
        x = x[:, None, :, :]
    if x.ndim != 4:
        raise DatasetError(f"{path}: {key} has shape {x.shape}, expected (n, height, width)")
    x = x.astype(np.float32)
    return x / 255.0 if x.max() > 1.0 else x


__all__ = [
    "DATASET_NAMES",
    "DEBIAN_FASHION_MNIST",
    "DatasetError",
    "ImageData",
    "load_dataset",
    "load_digits",
    "load_image_files",
    "read_idx",
    "write_idx",
]
