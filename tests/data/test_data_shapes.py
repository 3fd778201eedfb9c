"""The procedural `shapes` sprites (geometry, factors, determinism) and the dSprites .npz loader."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from repvae.data import DatasetError, load_dataset, registry
from repvae.data.dsprites import FILENAME, URL
from repvae.data.shapes import FACTOR_NAMES, FACTOR_SIZES, SHAPES, load_shapes, render

MAX_SCALE = FACTOR_SIZES[1] - 1
CENTRE = 15


def area(images: torch.Tensor) -> torch.Tensor:
    """White pixels per image."""
    return (images[:, 0] == 255).sum((1, 2)).double()


def centroid(images: torch.Tensor) -> torch.Tensor:
    """(row, column) of the white pixels' mean position, per image."""
    white = (images[:, 0] == 255).double()
    rows = torch.arange(images.shape[2], dtype=torch.float64)
    mass = white.sum((1, 2))
    return torch.stack(
        [(white.sum(2) * rows).sum(1) / mass, (white.sum(1) * rows).sum(1) / mass], 1
    )


def grid(**fixed: int | list[int]) -> torch.Tensor:
    """Factor rows for every combination of the given values (ints or lists), in FACTOR_NAMES."""
    values = [np.atleast_1d(fixed[name]) for name in FACTOR_NAMES]
    mesh = np.meshgrid(*values, indexing="ij")
    return torch.from_numpy(np.stack([m.ravel() for m in mesh], 1).astype(np.int64))


def test_shapes_are_deterministic_with_valid_factors() -> None:
    a, b, c = load_shapes(400, 100), load_shapes(400, 100), load_shapes(400, 100, seed=1)
    assert a.train_images.tobytes() == b.train_images.tobytes()
    assert np.array_equal(a.test_factors, b.test_factors)
    assert not np.array_equal(a.train_factors, c.train_factors)
    assert a.train_images.shape == (400, 1, 64, 64) and a.train_images.dtype == np.uint8
    assert set(np.unique(a.train_images)) == {0, 255}
    factors = np.concatenate([a.train_factors, a.test_factors])
    assert factors.shape == (500, 5) and factors.dtype == np.int64
    assert (factors.min(0) == 0).all() and (factors.max(0) == np.array(FACTOR_SIZES) - 1).all()
    assert np.array_equal(a.train_labels, a.train_factors[:, 0])
    flat = np.ravel_multi_index(factors.T, FACTOR_SIZES)
    assert len(np.unique(flat)) == 500  # distinct grid points, so train and test are disjoint
    assert a.class_names == SHAPES and a.factor_names == FACTOR_NAMES
    assert np.array_equal(a.train_images, render(torch.from_numpy(a.train_factors)).numpy())


def test_largest_sprites_at_the_edges_are_not_clipped() -> None:
    edges = [0, FACTOR_SIZES[3] - 1]
    orientations = list(range(FACTOR_SIZES[2]))
    shapes = [0, 1, 2]
    at_edges = render(
        grid(shape=shapes, scale=MAX_SCALE, orientation=orientations, pos_x=edges, pos_y=edges)
    )
    border = torch.ones(64, 64, dtype=torch.bool)
    border[1:-1, 1:-1] = False
    assert int(at_edges[:, 0, border].max()) == 0  # a black frame around every sprite
    centred = area(
        render(
            grid(
                shape=shapes, scale=MAX_SCALE, orientation=orientations, pos_x=CENTRE, pos_y=CENTRE
            )
        )
    )
    ratio = area(at_edges).view(3, 40, 4) / centred.view(3, 40, 1)
    assert ((ratio - 1).abs() < 0.05).all()  # same area wherever it is: nothing cut off


def test_area_grows_with_scale_and_square_area_ignores_rotation() -> None:
    scales = list(range(FACTOR_SIZES[1]))
    images = render(
        grid(
            shape=[0, 1, 2],
            scale=scales,
            orientation=[0, 7, 13, 25],
            pos_x=[3, 15, 28],
            pos_y=[5, 20],
        )
    )
    mean = area(images).view(3, 6, -1).mean(2)
    assert (mean.diff(dim=1) > 0).all()
    square = area(
        render(
            grid(shape=0, scale=MAX_SCALE, orientation=list(range(40)), pos_x=CENTRE, pos_y=CENTRE)
        )
    )
    assert (square / 256 - 1).abs().max() < 0.04  # 16 x 16 pixels at scale 1


def test_centroid_follows_position() -> None:
    positions = list(range(FACTOR_SIZES[3]))
    along_x = centroid(render(grid(shape=2, scale=3, orientation=0, pos_x=positions, pos_y=9)))
    along_y = centroid(render(grid(shape=2, scale=3, orientation=0, pos_x=9, pos_y=positions)))
    assert (along_x[:, 1].diff() > 0).all() and along_x[:, 0].std() < 0.5
    assert (along_y[:, 0].diff() > 0).all() and along_y[:, 1].std() < 0.5
    # the canvas centre region [0.2, 0.8] x 64 pixels, give or take the heart's asymmetry
    assert 11 < along_x[0, 1] < 15 and 49 < along_x[-1, 1] < 53


def test_shapes_differ_in_area_and_the_heart_is_upright() -> None:
    images = render(
        grid(shape=[0, 1, 2], scale=MAX_SCALE, orientation=0, pos_x=CENTRE, pos_y=CENTRE)
    )
    square, ellipse, heart = area(images).tolist()
    assert square > 1.2 * heart and heart > 1.2 * ellipse
    rows = (images[2, 0] == 255).sum(1)
    widest, lowest = int(rows.argmax()), int(rows.nonzero().max())
    assert widest < lowest - 8 and int(rows[lowest]) <= 2  # lobes on top, point at the bottom


def test_load_dataset_carries_factors(monkeypatch: pytest.MonkeyPatch) -> None:
    # the registered loader at a tenth of the default size, to keep the test fast
    monkeypatch.setattr(registry, "load_shapes", partial(load_shapes, 6000, 1000))
    data = load_dataset("shapes", val_size=0.1)
    assert (len(data.train), len(data.val), len(data.test)) == (5400, 600, 1000)
    assert data.shape == (1, 64, 64) and data.num_classes == 3
    assert data.factor_names == FACTOR_NAMES
    for split in (data.train, data.val, data.test):
        assert split.factors is not None and split.factors.shape == (len(split), 5)
        assert torch.equal(split.labels, split.factors[:, 0])
    assert data.val.factors is not None
    assert torch.equal(data.val.images[:20], render(data.val.factors[:20]))
    assert load_dataset("digits").train.factors is None


def write_dsprites(path: Path, n: int = 70) -> tuple[np.ndarray, np.ndarray]:
    """A small file with the official key names, including a pickled metadata entry."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 2, (n, 64, 64), dtype=np.uint8)
    classes = np.stack(
        [np.zeros(n, dtype=np.int64)] + [rng.integers(0, size, n) for size in FACTOR_SIZES], 1
    )
    metadata = np.array({"description": "fake"}, dtype=object)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        imgs=images,
        latents_classes=classes,
        latents_values=classes.astype(np.float64),
        metadata=metadata,
    )
    return images, classes


@pytest.mark.parametrize("folder", ["dsprites", "."])
def test_dsprites_loads_a_subset_with_factors(tmp_path: Path, folder: str) -> None:
    images, classes = write_dsprites(tmp_path / folder / FILENAME)
    data = load_dataset("dsprites", tmp_path, val_size=0)
    assert (len(data.train), len(data.test)) == (60, 10)
    assert data.shape == (1, 64, 64) and data.class_names == SHAPES
    assert data.factor_names == FACTOR_NAMES
    source = {image.tobytes(): row[1:] for image, row in zip(images * 255, classes, strict=True)}
    for split in (data.train, data.test):
        assert split.factors is not None
        assert torch.equal(split.labels, split.factors[:, 0])
        for image, factors in zip(split.images, split.factors, strict=True):
            assert factors.tolist() == source.pop(image[0].numpy().tobytes()).tolist()
    assert not source  # every image used once


def test_missing_dsprites_says_where_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=FILENAME) as info:
        load_dataset("dsprites", tmp_path)
    assert URL in str(info.value) and str((tmp_path / "dsprites").resolve()) in str(info.value)


def test_corrupt_dsprites_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "dsprites" / FILENAME
    path.parent.mkdir()
    path.write_bytes(b"not an npz file" * 10)
    with pytest.raises(DatasetError, match=f"{FILENAME} in .*not a readable"):
        load_dataset("dsprites", tmp_path)
    np.savez(path, imgs=np.zeros((4, 64, 64), dtype=np.uint8))
    with pytest.raises(DatasetError, match="latents_classes"):
        load_dataset("dsprites", tmp_path)
    np.savez(
        path,
        imgs=np.zeros((4, 32, 32), dtype=np.uint8),
        latents_classes=np.zeros((4, 6), dtype=np.int64),
    )
    with pytest.raises(DatasetError, match=f"{FILENAME} in .*does not hold"):
        load_dataset("dsprites", tmp_path)
    np.savez(
        path,
        imgs=np.full((4, 64, 64), 255, dtype=np.uint8),
        latents_classes=np.zeros((4, 6), dtype=np.int64),
    )
    with pytest.raises(DatasetError, match="0/1"):
        load_dataset("dsprites", tmp_path)
