"""Types, data root resolution, dataset names and the vectorised transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repvae.data import DATASETS, DatasetError, ImageData, Split, data_root, load_dataset
from repvae.data.transforms import resize, to_grayscale


def split(n: int, shape: tuple[int, ...] = (1, 2, 2)) -> Split:
    return Split(torch.zeros((n, *shape), dtype=torch.uint8), torch.zeros(n, dtype=torch.int64))


def test_split_and_image_data() -> None:
    s = split(3)
    assert len(s) == 3 and repr(s) == "Split(n=3, image_shape=(1, 2, 2))"
    transposed = Split(torch.zeros((3, 2, 2, 1), dtype=torch.uint8).permute(0, 3, 1, 2), s.labels)
    assert transposed.images.is_contiguous()
    data = ImageData("x", s, split(1), split(2), 2, ("a", "b"))
    assert data.shape == (1, 2, 2)
    with pytest.raises(ValueError, match="uint8"):
        Split(torch.zeros((1, 1, 2, 2)), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(ValueError, match="labels"):
        Split(torch.zeros((2, 1, 2, 2), dtype=torch.uint8), torch.zeros(1, dtype=torch.int64))
    with pytest.raises(ValueError, match="test images"):
        ImageData("x", s, split(1), split(2, (3, 2, 2)), 2, ("a", "b"))


def test_factors_are_validated() -> None:
    images, labels = torch.zeros((3, 1, 2, 2), dtype=torch.uint8), torch.zeros(3, dtype=torch.int64)
    factors = torch.zeros((3, 2), dtype=torch.int64)
    s = Split(images, labels, factors.t().contiguous().t())
    assert s.factors is not None and s.factors.is_contiguous()
    assert Split(images, labels).factors is None
    with pytest.raises(ValueError, match="int64"):
        Split(images, labels, factors.int())
    with pytest.raises(ValueError, match="factor rows"):
        Split(images, labels, factors[:2])
    data = ImageData("x", s, s, s, 1, ("a",), ("f", "g"))
    assert data.factor_names == ("f", "g")
    with pytest.raises(ValueError, match="2 factors but 1 factor names"):
        ImageData("x", s, s, s, 1, ("a",), ("f",))
    with pytest.raises(ValueError, match="val has no factors"):
        ImageData("x", s, Split(images, labels), s, 1, ("a",), ("f", "g"))


def test_data_root_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("REPVAE_DATA", raising=False)
    assert data_root() == tmp_path / "home" / ".cache" / "repvae" / "data"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "repvae" / "data"
    monkeypatch.setenv("REPVAE_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "explicit") == tmp_path / "explicit"
    assert data_root(str(tmp_path / "s")) == tmp_path / "s"
    assert data_root("~/d") == tmp_path / "home" / "d"
    assert not (tmp_path / "env").exists()  # resolving creates nothing


def test_dataset_names() -> None:
    single = ("digits", "mnist", "fashion-mnist", "cifar10", "svhn", "shapes", "dsprites")
    multimodal = ("polymnist", "mnist-svhn", "polymnist-2", "polydigits-2")
    assert DATASETS[: len(single)] == single and set(multimodal) <= set(DATASETS)
    assert load_dataset("Digits").name == "digits"
    with pytest.raises(DatasetError, match=r"Unknown dataset 'imagenet'.*fashion-mnist.*folder:"):
        load_dataset("imagenet")
    with pytest.raises(DatasetError, match="image_size"):
        load_dataset("digits", image_size=0)


def test_grayscale_matches_pil() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (7, 5, 3), dtype=np.uint8)
    expected = np.array(Image.fromarray(rgb).convert("L"))
    ours = to_grayscale(torch.from_numpy(rgb).permute(2, 0, 1)[None])
    assert ours.shape == (1, 1, 7, 5)
    assert torch.equal(ours[0, 0], torch.from_numpy(expected))


def test_resize_is_close_to_pil() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (12, 12, 3), dtype=np.uint8)
    for size in (5, 20):
        expected = np.array(Image.fromarray(rgb).resize((size, size), Image.Resampling.BILINEAR))
        ours = resize(torch.from_numpy(rgb).permute(2, 0, 1)[None], size)[0].permute(1, 2, 0)
        assert ours.dtype == torch.uint8
        assert (ours.int() - torch.from_numpy(expected).int()).abs().max() <= 2
    same = torch.zeros((2, 1, 4, 4), dtype=torch.uint8)
    assert resize(same, 4) is same
