"""Checksummed downloads, exercised offline through file:// URLs."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from repvae.data import DatasetError, load_dataset, registry
from repvae.data import cifar as cifar_module
from repvae.data.download import Remote, fetch


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_fetch_verifies_and_falls_back_to_next_mirror(tmp_path: Path) -> None:
    source = tmp_path / "mirror" / "file.bin"
    source.parent.mkdir()
    source.write_bytes(b"payload")
    urls = ((tmp_path / "missing" / "file.bin").as_uri(), source.as_uri())
    path = fetch(Remote("file.bin", urls, md5(b"payload")), tmp_path / "dest")
    assert path.read_bytes() == b"payload"


def test_checksum_mismatch_deletes_download(tmp_path: Path) -> None:
    source = tmp_path / "file.bin"
    source.write_bytes(b"tampered")
    dest = tmp_path / "dest"
    with pytest.raises(DatasetError, match="does not match"):
        fetch(Remote("file.bin", (source.as_uri(),), md5(b"original")), dest)
    assert list(dest.iterdir()) == []


def idx(array: np.ndarray) -> bytes:
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return bytes([0, 0, 8, array.ndim]) + dims + array.tobytes()


def test_mnist_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    files = {
        "train-images-idx3-ubyte": idx(np.zeros((4, 3, 3), np.uint8)),
        "train-labels-idx1-ubyte": idx(np.arange(4, dtype=np.uint8)),
        "t10k-images-idx3-ubyte": idx(np.ones((2, 3, 3), np.uint8)),
        "t10k-labels-idx1-ubyte": idx(np.arange(2, dtype=np.uint8)),
    }
    checksums = {}
    for name, payload in files.items():
        packed = gzip.compress(payload)
        (mirror / f"{name}.gz").write_bytes(packed)
        checksums[name] = md5(packed)
    spec = dataclasses.replace(registry.MNIST, mirrors=(mirror.as_uri() + "/",), md5=checksums)
    monkeypatch.setattr(registry, "MNIST", spec)
    data = load_dataset("mnist", tmp_path / "root", val_size=0)
    assert data.train.labels.tolist() == [0, 1, 2, 3] and len(data.test) == 2
    assert (tmp_path / "root" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_failed_download_lists_missing_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline = dataclasses.replace(registry.MNIST, mirrors=((tmp_path / "offline").as_uri() + "/",))
    monkeypatch.setattr(registry, "MNIST", offline)
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", tmp_path / "root")
    message = str(info.value)
    assert "Automatic download failed" in message
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert f"  {name}\n" in message
    assert str((tmp_path / "root" / "MNIST" / "raw").resolve()) in message
    assert "--data-root" in message and "REPVAE_DATA" in message


def test_cifar_download_extracts_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 4]}
    meta = {b"label_names": [f"c{i}".encode() for i in range(10)]}
    with tarfile.open(archive, "w:gz") as tar:
        for name in [*cifar_module.TRAIN_BATCHES, "test_batch", "batches.meta"]:
            data = pickle.dumps(meta if name == "batches.meta" else batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    remote = Remote(archive.name, (archive.as_uri(),), md5(archive.read_bytes()))
    monkeypatch.setattr(cifar_module, "ARCHIVE", remote)
    root = tmp_path / "root"
    data = load_dataset("cifar10", root, val_size=0)
    assert len(data.train) == 10 and data.class_names[3] == "c3"
    assert not (root / archive.name).exists()  # the archive is removed once extracted
