"""MNIST-style IDX files: parsing, validation of damaged files, missing files, real MNIST."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from repvae.data import DatasetError, load_dataset
from repvae.data.splits import holdout_indices

SHARED_MNIST = Path("/work/shared/datasets")
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array the way the IDX format does (magic 0x0000 08 ndim, then dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_file(folder: Path, name: str, payload: bytes, gz: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{name}.gz" if gz else name)
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def write_mnist(root: Path, gz: bool, n_train: int = 30, n_test: int = 10) -> dict[str, np.ndarray]:
    """Tiny MNIST-layout dataset with non-square 5x4 images, so H/W order is checked too."""
    rng = np.random.default_rng(1)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 5, 4), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 5, 4), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for key, array in arrays.items():
        write_file(root / "MNIST" / "raw", FILES[key], idx_bytes(array), gz)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path: Path, gz: bool) -> None:
    arrays = write_mnist(tmp_path, gz)
    data = load_dataset("mnist", tmp_path, val_size=0, download=False)
    assert data.name == "mnist"
    assert data.shape == (1, 5, 4)
    assert data.train.images.dtype == torch.uint8 and data.train.labels.dtype == torch.int64
    assert torch.equal(data.train.images[:, 0], torch.from_numpy(arrays["train_images"]))
    assert torch.equal(data.train.labels, torch.from_numpy(arrays["train_labels"]).long())
    assert torch.equal(data.test.images[:, 0], torch.from_numpy(arrays["test_images"]))
    assert torch.equal(data.test.labels, torch.from_numpy(arrays["test_labels"]).long())
    assert len(data.val) == 0
    assert data.class_names == tuple("0123456789")


def test_val_is_carved_from_train_in_order(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, gz=True)
    data = load_dataset("mnist", tmp_path, val_size=6, seed=3, download=False)
    keep, held = holdout_indices(30, 6, 3)
    assert (len(data.train), len(data.val), len(data.test)) == (24, 6, 10)
    assert torch.equal(data.train.images[:, 0], torch.from_numpy(arrays["train_images"][keep]))
    assert torch.equal(data.val.images[:, 0], torch.from_numpy(arrays["train_images"][held]))


def test_fashion_mnist_layout_and_class_names(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    (tmp_path / "MNIST").rename(tmp_path / "FashionMNIST")
    data = load_dataset("fashion-mnist", tmp_path, download=False)
    assert data.class_names[0] == "T-shirt/top" and data.class_names[9] == "Ankle boot"
    assert data.num_classes == 10


def test_uncompressed_file_preferred_over_gz(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, gz=True)
    raw = tmp_path / "MNIST" / "raw"
    write_file(raw, FILES["train_labels"], idx_bytes(arrays["train_labels"]), gz=False)
    (raw / f"{FILES['train_labels']}.gz").write_bytes(b"junk that is never read")
    assert len(load_dataset("mnist", tmp_path, download=False).train) == 27


@pytest.mark.parametrize("damage", ["garbage", "cut"])
def test_corrupt_gzip_names_file(tmp_path: Path, damage: str) -> None:
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(
        b"\x1f\x8b\x08\x00garbage" * 3 if damage == "garbage" else data[: len(data) // 2]
    )
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz") as info:
        load_dataset("mnist", tmp_path, download=False)
    assert "Delete" in str(info.value)


def test_truncated_payload_names_file(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, gz=False)
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(idx_bytes(arrays["test_images"])[:-7])
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.*truncated"):
        load_dataset("mnist", tmp_path, download=False)


def test_wrong_magic_names_file(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)
    write_file(tmp_path / "MNIST" / "raw", "t10k-labels-idx1-ubyte", b"\x12\x34\x56\x78" * 5, True)
    with pytest.raises(DatasetError, match=r"t10k-labels-idx1-ubyte\.gz.*not an IDX file"):
        load_dataset("mnist", tmp_path, download=False)


def test_label_file_in_place_of_images_is_refused(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, gz=True)
    raw = tmp_path / "MNIST" / "raw"
    write_file(raw, FILES["train_images"], idx_bytes(arrays["train_labels"]), gz=True)
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte\.gz.*expected uint8 with 3"):
        load_dataset("mnist", tmp_path, download=False)


def test_count_mismatch_names_both_files(tmp_path: Path) -> None:
    arrays = write_mnist(tmp_path, gz=True)
    raw = tmp_path / "MNIST" / "raw"
    write_file(raw, FILES["train_labels"], idx_bytes(arrays["train_labels"][:-1]), gz=True)
    with pytest.raises(DatasetError, match="30 images") as info:
        load_dataset("mnist", tmp_path, download=False)
    assert "train-images-idx3-ubyte" in str(info.value)
    assert "train-labels-idx1-ubyte" in str(info.value)


def test_missing_files_offline_lists_them(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)
    raw = tmp_path / "MNIST" / "raw"
    (raw / "t10k-images-idx3-ubyte.gz").unlink()
    (raw / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", tmp_path, download=False)
    message = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "train-labels-idx1-ubyte.gz" in message
    assert "train-images-idx3-ubyte" not in message
    assert str(raw.resolve()) in message
    assert "--data-root" in message and "REPVAE_DATA" in message


@pytest.mark.skipif(not (SHARED_MNIST / "MNIST" / "raw").is_dir(), reason="no shared MNIST")
def test_real_mnist() -> None:
    data = load_dataset("mnist", SHARED_MNIST, download=False)
    assert (len(data.train), len(data.val), len(data.test)) == (54_000, 6_000, 10_000)
    assert data.shape == (1, 28, 28)
    keep, _ = holdout_indices(60_000, 0.1, 0)
    first = data.train.labels[0] if keep[0] == 0 else data.val.labels[0]
    assert int(first) == 5
    counts = torch.bincount(torch.cat([data.train.labels, data.val.labels]), minlength=10)
    assert counts[:3].tolist() == [5923, 6742, 5958]
