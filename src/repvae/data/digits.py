"""scikit-learn's bundled 8x8 digits: real images that need no download, for tests and demos."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits as sklearn_digits

from .core import Arrays
from .splits import TEST_FRACTION, TEST_SEED, stratified_holdout


def load_digits() -> Arrays:
    """The 1,797 digits as uint8 [N, 1, 8, 8] with a fixed stratified 20% test split.

    The source pixels are 0..16; they are scaled to 0..255 so that every dataset shares one
    pixel range.
    """
    bunch = sklearn_digits()
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    train, test = stratified_holdout(labels, TEST_FRACTION, TEST_SEED)
    return Arrays(
        train_images=images[train],
        train_labels=labels[train],
        test_images=images[test],
        test_labels=labels[test],
        class_names=tuple(str(d) for d in range(10)),
    )
