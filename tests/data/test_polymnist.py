"""PolyMNIST-style data: modalities stacked along the channels, each a same-class digit over its
own background, deterministic, with the modality count checked."""

import numpy as np
import pytest

from repvae.data import load_dataset
from repvae.data import polymnist as polymnist_module
from repvae.data.core import Arrays
from repvae.data.digits import load_digits
from repvae.data.polymnist import background, compose, pair_by_class


def test_modalities_are_stacked_along_the_channels_with_the_base_labels():
    base = load_digits()
    data = load_dataset("polydigits-3")
    assert data.train.images.shape[1:] == (9, 8, 8) and data.num_classes == 10
    assert len(data.train.labels) + len(data.val.labels) == len(base.train_labels)
    np.testing.assert_array_equal(np.sort(data.test.labels.numpy()), np.sort(base.test_labels))


def test_each_modality_draws_a_same_class_digit_with_its_stroke_inverted(monkeypatch):
    base = load_digits()
    images, labels = base.train_images[:300], base.train_labels[:300]
    poly = compose(images, labels, 3, seed=0)
    np.testing.assert_array_equal(poly, compose(images, labels, 3, seed=0))  # deterministic
    assert not np.array_equal(background(0), background(1))
    # on a flat background of 40 the rule is exact: 40 without ink, 255 - 40 under full ink
    monkeypatch.setattr(
        polymnist_module, "background", lambda m, size=64: np.full((3, size, size), 40, np.uint8)
    )
    flat = compose(images, labels, 3, seed=0)
    expected = np.round(40 + (215 - 40) * images[:, 0].astype(float) / 255)
    np.testing.assert_array_equal(flat[:, 0], expected)  # modality 1: the digit itself
    # modalities 2 and 3: a digit of the same class (another instance, as in PolyMNIST)
    ink = np.round((images[:, 0].astype(float)) * (215 - 40) / 255 + 40)
    for m in (1, 2):
        drawn = flat[:, 3 * m]
        for i in range(0, 300, 37):
            same = np.flatnonzero(labels == labels[i])
            assert any(np.array_equal(drawn[i], ink[k]) for k in same)


def test_a_modality_count_out_of_range_is_refused():
    base = load_digits()
    with pytest.raises(ValueError, match=r"modalities must be 1\.\.5"):
        compose(base.train_images[:4], base.train_labels[:4], 6)


def test_mnist_svhn_pairs_every_gray_digit_with_a_same_class_colour_digit():
    gray = load_digits()
    rng = np.random.default_rng(0)
    n = 200  # a stand-in for SVHN: colour 16x16 images whose first pixel encodes their class
    labels = np.arange(n) % 10
    colour = rng.integers(0, 256, (n, 3, 16, 16), dtype=np.uint8)
    colour[:, 0, 0, 0] = labels * 20
    fake = Arrays(
        colour, labels.astype(np.int64), colour[:50], labels[:50].astype(np.int64), gray.class_names
    )
    paired = pair_by_class(gray, fake)
    assert paired.train_images.shape == (len(gray.train_labels), 6, 16, 16)
    assert (paired.train_images[:, 1] == paired.train_images[:, 0]).all()  # gray repeated
    np.testing.assert_array_equal(paired.train_images[:, 3, 0, 0] // 20, gray.train_labels)
    np.testing.assert_array_equal(paired.test_images[:, 3, 0, 0] // 20, gray.test_labels)
