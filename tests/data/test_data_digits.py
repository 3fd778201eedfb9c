"""The embedded sklearn digits dataset and its seeded splits."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from repvae.data import DatasetError, ImageData, load_dataset


def rows(data: ImageData) -> Counter:
    """Multiset of (image bytes, label) over all splits, to prove the splits partition the data."""
    counter: Counter = Counter()
    for split in (data.train, data.val, data.test):
        for image, label in zip(split.images, split.labels, strict=True):
            counter[image.numpy().tobytes(), int(label)] += 1
    return counter


def test_digits_contents() -> None:
    data = load_dataset("digits")
    assert len(data.train) + len(data.val) + len(data.test) == 1797
    assert data.shape == (1, 8, 8) and data.num_classes == 10
    assert data.train.images.dtype == torch.uint8
    assert int(data.train.images.min()) == 0 and int(data.train.images.max()) == 255
    source = load_digits()
    expected = np.round(source.images * 255 / 16).astype(np.uint8)
    pairs = zip(expected, source.target, strict=True)
    reference = Counter((image[None].tobytes(), int(label)) for image, label in pairs)
    assert rows(data) == reference  # every image exactly once: no overlap, nothing lost


def test_digits_splits_are_seeded() -> None:
    a, b, c = (
        load_dataset("digits", seed=0),
        load_dataset("digits", seed=0),
        load_dataset("digits", seed=1),
    )
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(a, split).images, getattr(b, split).images)
        assert torch.equal(getattr(a, split).labels, getattr(b, split).labels)
    assert len(a.val) == len(c.val)
    assert not torch.equal(a.val.images, c.val.images)
    # the test split is fixed so that test scores from different seeds are comparable
    assert torch.equal(a.test.images, c.test.images)


def test_digits_test_split_is_stratified() -> None:
    data = load_dataset("digits")
    per_class = np.bincount(load_digits().target)
    assert data.test.labels.bincount().tolist() == [round(0.2 * n) for n in per_class]


@pytest.mark.parametrize(
    ("val_size", "expected"), [(0.1, 144), (100, 100), (np.int64(7), 7), (0, 0)]
)
def test_val_size(val_size: float, expected: int) -> None:
    assert len(load_dataset("digits", val_size=val_size).val) == expected


@pytest.mark.parametrize("val_size", [1.0, -0.1, 5000, -1, True, "0.1"])
def test_bad_val_size(val_size: object) -> None:
    with pytest.raises(DatasetError, match="val_size"):
        load_dataset("digits", val_size=val_size)  # type: ignore[arg-type]


def test_resize_and_grayscale_on_array_datasets() -> None:
    data = load_dataset("digits", image_size=16, grayscale=True)
    assert data.shape == (1, 16, 16)
    assert data.train.images.dtype == torch.uint8
