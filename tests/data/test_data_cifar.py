"""CIFAR-10 python batches: loading, the restricted unpickler, missing files."""

from __future__ import annotations

import builtins
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from repvae.data import DatasetError, load_dataset

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def write_cifar(root: Path, protocol: int = 2, per_batch: int = 4) -> dict[str, dict]:
    """Batches shaped like the real ones: uint8 data [N, 3072], labels a python list."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for name in [*BATCHES, "test_batch"]:
        batch = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        batches[name] = batch
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return batches


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_batches_load(tmp_path: Path, protocol: int) -> None:
    batches = write_cifar(tmp_path, protocol)
    data = load_dataset("cifar10", tmp_path, val_size=0, download=False)
    expected = np.concatenate([batches[name][b"data"] for name in BATCHES]).reshape(-1, 3, 32, 32)
    assert data.shape == (3, 32, 32)
    assert torch.equal(data.train.images, torch.from_numpy(expected))
    labels = [label for name in BATCHES for label in batches[name][b"labels"]]
    assert data.train.labels.tolist() == labels
    assert data.test.labels.tolist() == batches["test_batch"][b"labels"]
    assert data.class_names == tuple(CLASSES)


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return (os.system, (self.command,))


class _RunsExec:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self) -> tuple:
        return (builtins.exec, (self.code,))


@pytest.mark.parametrize("kind", ["os.system", "exec"])
def test_malicious_pickle_is_refused_without_running(tmp_path: Path, kind: str) -> None:
    write_cifar(tmp_path)
    marker = tmp_path / "pwned"
    payload = (
        _RunsShell(f"touch {marker}")
        if kind == "os.system"
        else _RunsExec(f"open({str(marker)!r}, 'w').close()")
    )
    target = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    target.write_bytes(pickle.dumps({b"data": payload, b"labels": []}, protocol=2))
    with pytest.raises(DatasetError, match=r"data_batch_3.*not a CIFAR-10 batch"):
        load_dataset("cifar10", tmp_path, download=False)
    assert not marker.exists()


def test_wrong_structure_is_refused(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    target = tmp_path / "cifar-10-batches-py" / "test_batch"
    target.write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(DatasetError, match=r"test_batch.*\[N, 3072\]"):
        load_dataset("cifar10", tmp_path, download=False)


def test_truncated_pickle_is_refused(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    target = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(DatasetError, match="data_batch_1"):
        load_dataset("cifar10", tmp_path, download=False)


def test_missing_files_offline_lists_them(tmp_path: Path) -> None:
    write_cifar(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    (folder / "data_batch_4").unlink()
    (folder / "batches.meta").unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset("cifar10", tmp_path, download=False)
    message = str(info.value)
    assert "data_batch_4" in message and "batches.meta" in message
    assert "data_batch_1" not in message
    assert str(folder.resolve()) in message and "REPVAE_DATA" in message
