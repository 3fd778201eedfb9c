"""SVHN .mat files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from repvae.data import DatasetError, load_dataset


def write_svhn(root: Path, n: int = 6) -> dict[str, np.ndarray]:
    folder = root / "svhn"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for split in ("train", "test"):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [2], [9], [10], [5]], dtype=np.uint8)[:n]
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": x, "y": y})
        written[split] = x
    return written


def test_svhn_loads_and_maps_10_to_0(tmp_path: Path) -> None:
    written = write_svhn(tmp_path)
    data = load_dataset("svhn", tmp_path, val_size=0, download=False)
    assert data.shape == (3, 32, 32)
    assert data.test.labels.tolist() == [0, 1, 2, 9, 0, 5]
    expected = torch.from_numpy(written["train"]).permute(3, 2, 0, 1)  # [N, C, H, W]
    assert torch.equal(data.train.images, expected)
    # pixel (row 3, column 7, green) of image 2, read straight from the MATLAB layout
    assert data.test.images[2, 1, 3, 7] == int(written["test"][3, 7, 1, 2])


def test_unreadable_mat_names_file(tmp_path: Path) -> None:
    write_svhn(tmp_path)
    (tmp_path / "svhn" / "test_32x32.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(DatasetError, match=r"test_32x32\.mat"):
        load_dataset("svhn", tmp_path, download=False)


def test_missing_svhn_offline(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"train_32x32\.mat\n  test_32x32\.mat"):
        load_dataset("svhn", tmp_path, download=False)
