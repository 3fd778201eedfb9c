"""dSprites (Matthey et al. 2017) from the official .npz, when the user has downloaded it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .core import ROOT_HINT, Arrays, DatasetError
from .shapes import FACTOR_NAMES, FACTOR_SIZES, SEED, SHAPES, TEST_SIZE, TRAIN_SIZE, sample_grid

FOLDER = "dsprites"
FILENAME = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
URL = "https://github.com/google-deepmind/dsprites-dataset/raw/master/" + FILENAME
_REDOWNLOAD = f"Delete it and download it again from {URL}."


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read imgs uint8 [N, 64, 64] and latents_classes [N, 6] without unpickling anything.

    The file also holds a pickled `metadata` entry; it is never accessed, so allow_pickle=False
    costs nothing and a hostile file cannot run code.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, latents = npz["imgs"], npz["latents_classes"]
    except Exception as exc:  # BadZipFile, KeyError, ValueError, zlib.error, ... on a bad file
        raise DatasetError(
            f"{path.name} in {path.parent} is not a readable dSprites .npz ({exc}). {_REDOWNLOAD}"
        ) from exc
    if not (
        images.dtype == np.uint8
        and images.ndim == 3
        and images.shape[1:] == (64, 64)
        and np.issubdtype(latents.dtype, np.integer)
        and latents.shape == (len(images), 1 + len(FACTOR_SIZES))
    ):
        raise DatasetError(
            f"{path.name} in {path.parent} does not hold imgs uint8 [N, 64, 64] and "
            f"latents_classes [N, 6] (got {images.dtype} {images.shape} and {latents.dtype} "
            f"{latents.shape}). {_REDOWNLOAD}"
        )
    return images, latents


def load_dsprites(
    root: Path, train_size: int = TRAIN_SIZE, test_size: int = TEST_SIZE, seed: int = SEED
) -> Arrays:
    """A seeded random subset of `<root>/dsprites/` (or `<root>/`) dsprites_...64x64.npz.

    All 737,280 images take 3 GB as uint8, so disjoint random train/test subsets of the same
    sizes as `shapes` are kept (the same factor combinations, since both index one grid); a
    file with fewer images is used whole, split in the same proportion. The full file is
    decompressed once while loading, so loading needs ~3 GB of memory for a moment.
    """
    candidates = (root / FOLDER / FILENAME, root / FILENAME)
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise DatasetError(
            f"dSprites file {FILENAME} is missing: looked in {candidates[0].parent.resolve()} "
            f"and {root.resolve()}. Fix: download it from {URL} into "
            f"{candidates[0].parent.resolve()} (repvae does not download it for you). {ROOT_HINT}"
        )
    images, latents = read_npz(path)
    count = min(len(images), train_size + test_size)
    n_train = round(count * train_size / (train_size + test_size))
    index = sample_grid(count, seed, len(images))
    images, factors = images[index], latents[index, 1:].astype(np.int64)  # column 0 is colour
    if images.max(initial=0) > 1 or (factors < 0).any() or (factors >= FACTOR_SIZES).any():
        raise DatasetError(
            f"{path.name} in {path.parent} has pixels other than 0/1 or latent classes outside "
            f"the grid {FACTOR_SIZES}. {_REDOWNLOAD}"
        )
    images = images[:, None] * np.uint8(255)
    labels = factors[:, 0].copy()
    return Arrays(
        train_images=images[:n_train],
        train_labels=labels[:n_train],
        test_images=images[n_train:],
        test_labels=labels[n_train:],
        class_names=SHAPES,
        train_factors=factors[:n_train],
        test_factors=factors[n_train:],
        factor_names=FACTOR_NAMES,
    )
