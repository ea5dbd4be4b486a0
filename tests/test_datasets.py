"""Data sets from local files: IDX (plain, gzipped), npz, digits; clear errors when missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sarlearn import datasets
from sarlearn.datasets import (
    DEBIAN_FASHION_MNIST,
    DatasetError,
    load_dataset,
    load_image_files,
    read_idx,
    write_idx,
)


def write_fake_mnist(folder: Path, n_train: int = 40, n_test: int = 20, gz: bool = True) -> None:
    """Four IDX files of 28x28 images whose class is a bright row at 2 * label."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        images[np.arange(n), 2 * labels + 3, :] = 255
        write_idx(folder / f"{part}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte{suffix}", labels)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("a.idx" + (".gz" if gz else ""))
    write_idx(path, a)
    np.testing.assert_array_equal(read_idx(path), a)


def test_mnist_folder_and_npz(tmp_path: Path) -> None:
    write_fake_mnist(tmp_path / "mnist")
    data = load_dataset("mnist", tmp_path / "mnist")
    assert data.x_train.shape == (40, 1, 28, 28) and data.x_train.dtype == np.float32
    assert data.x_test.shape == (20, 1, 28, 28) and data.y_test.dtype == np.int64
    assert data.x_train.min() >= 0 and data.x_train.max() == 1.0
    np.savez(
        tmp_path / "m.npz",
        x_train=(data.x_train[:, 0] * 255).astype(np.uint8),
        y_train=data.y_train,
        x_test=(data.x_test[:, 0] * 255).astype(np.uint8),
        y_test=data.y_test,
    )
    again = load_image_files(tmp_path / "m.npz")
    np.testing.assert_allclose(again.x_train, data.x_train)
    np.testing.assert_array_equal(again.y_test, data.y_test)


def test_digits_split_and_validation() -> None:
    pytest.importorskip("sklearn")
    data = load_dataset("digits")
    assert data.x_train.shape == (1347, 1, 8, 8) and len(data.y_test) == 450
    assert data.n_classes == 10 and data.x_train.max() == 1.0
    val = data.validation_split(0.2)
    assert len(val.y_train) + len(val.y_test) == 1347
    sub = data.subset(100, 50)
    assert len(sub.y_train) == 100 and len(sub.y_test) == 50


def test_missing_and_bad_files_say_what_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DatasetError, match="--data"):
        load_dataset("mnist")
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_dataset("fashion-mnist")
    with pytest.raises(DatasetError, match=r"does not exist.*fashion-mnist"):
        load_dataset("fashion-mnist", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte"):
        load_dataset("mnist", tmp_path / "empty")
    (tmp_path / "junk").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DatasetError, match="magic"):
        read_idx(tmp_path / "junk")
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 28, 28)))
    with pytest.raises(DatasetError, match="y_train"):
        load_image_files(tmp_path / "partial.npz")
    with pytest.raises(DatasetError, match="unknown data set"):
        load_dataset("cifar")


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason=f"Debian's Fashion-MNIST is not installed ({DEBIAN_FASHION_MNIST}): "
    "apt-get install dataset-fashion-mnist",
)
def test_debian_fashion_mnist_is_read_without_a_path() -> None:
    d = load_dataset("fashion-mnist")
    assert d.x_train.shape == (60000, 1, 28, 28) and d.x_test.shape == (10000, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and 0.0 <= d.x_train.min() < d.x_train.max() <= 1.0
    # Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
    assert np.bincount(d.y_train).tolist() == [6000] * 10
    assert np.bincount(d.y_test).tolist() == [1000] * 10
