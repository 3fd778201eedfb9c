"""`load_dataset`: one entry point from a dataset name to ready-to-use uint8 splits."""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .cifar import load_cifar10
from .core import Arrays, DatasetError, ImageData, Split
from .digits import load_digits
from .dsprites import load_dsprites
from .folder import archive_stem, load_folder
from .idx import FASHION_MNIST, MNIST, load_idx
from .paths import data_root
from .polymnist import MAX_MODALITIES, pair_by_class, polymnist
from .shapes import load_shapes
from .splits import holdout_indices
from .svhn import load_svhn
from .transforms import resize, to_grayscale

FOLDER_PREFIX = "folder:"

_LOADERS: dict[str, Callable[[Path, bool], Arrays]] = {
    "digits": lambda root, download: load_digits(),
    "mnist": lambda root, download: load_idx(MNIST, root, download),
    "fashion-mnist": lambda root, download: load_idx(FASHION_MNIST, root, download),
    "cifar10": load_cifar10,
    "svhn": load_svhn,
    "shapes": lambda root, download: load_shapes(),
    "dsprites": lambda root, download: load_dsprites(root),
}

# PolyMNIST-style multimodal digits (``polymnist.py``): 5 modalities, or M of them; and the
# same built from the embedded digits, for tests and demos


def _poly_mnist(modalities: int) -> Callable[[Path, bool], Arrays]:
    return lambda root, download: polymnist(load_idx(MNIST, root, download), modalities)


def _poly_digits(modalities: int) -> Callable[[Path, bool], Arrays]:
    return lambda root, download: polymnist(load_digits(), modalities)


_LOADERS["polymnist"] = _poly_mnist(MAX_MODALITIES)
_LOADERS["mnist-svhn"] = lambda root, download: pair_by_class(
    load_idx(MNIST, root, download), load_svhn(root, download)
)
for _m in range(2, MAX_MODALITIES + 1):
    _LOADERS[f"polymnist-{_m}"] = _poly_mnist(_m)
    _LOADERS[f"polydigits-{_m}"] = _poly_digits(_m)

DATASETS: tuple[str, ...] = tuple(_LOADERS)


def dataset_label(name: str) -> str:
    """A short name for run ids and tables: `folder:../x/cifar10.tar.gz` is `cifar10`."""
    if not name.startswith(FOLDER_PREFIX):
        return name
    path = Path(name.removeprefix(FOLDER_PREFIX).rstrip("/\\"))
    return archive_stem(path) or path.name or name


def _split(
    images: torch.Tensor, labels: np.ndarray, factors: np.ndarray | None, index: np.ndarray
) -> Split:
    rows = None if factors is None else torch.from_numpy(factors[index])
    return Split(images[torch.from_numpy(index)], torch.from_numpy(labels[index]), rows)


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    val_size: float | int = 0.1,
    seed: int = 0,
    image_size: int | None = None,
    grayscale: bool = False,
    download: bool = True,
) -> ImageData:
    """Load a dataset by name (see DATASETS) or as `folder:PATH`.

    The validation split is carved from the official training set with a permutation seeded
    by `seed`, so it is reproducible and never touches the test set. `image_size` resizes to
    image_size x image_size and `grayscale` converts RGB to one channel; both are applied
    here once, so the rest of the library sees fixed-shape uint8 tensors.
    """
    if image_size is not None:
        valid = isinstance(image_size, numbers.Integral) and not isinstance(image_size, bool)
        if not valid or image_size < 1:
            raise DatasetError(f"image_size must be a positive int or None, got {image_size!r}")
        image_size = int(image_size)
    root_path = data_root(root)
    if name.startswith(FOLDER_PREFIX):
        spec_path = name[len(FOLDER_PREFIX) :]
        if not spec_path:
            raise DatasetError("folder: needs a path, e.g. folder:~/images or folder:data.tar.gz")
        arrays = load_folder(spec_path, root_path, image_size, grayscale)
    else:
        key = name.strip().lower().replace("_", "-")
        if key not in _LOADERS:
            raise DatasetError(
                f"Unknown dataset {name!r}. Choose one of {', '.join(DATASETS)}, or "
                "folder:PATH for an image folder or .tar.gz archive."
            )
        name = key
        arrays = _LOADERS[key](root_path, download)

    train_images = torch.from_numpy(arrays.train_images)
    test_images = torch.from_numpy(arrays.test_images)
    if grayscale:
        train_images = to_grayscale(train_images)
        test_images = to_grayscale(test_images)
    if image_size is not None:
        train_images = resize(train_images, image_size)
        test_images = resize(test_images, image_size)

    keep, held_out = holdout_indices(len(arrays.train_labels), val_size, seed)
    return ImageData(
        name=name,
        train=_split(train_images, arrays.train_labels, arrays.train_factors, keep),
        val=_split(train_images, arrays.train_labels, arrays.train_factors, held_out),
        test=Split(
            test_images,
            torch.from_numpy(arrays.test_labels),
            None if arrays.test_factors is None else torch.from_numpy(arrays.test_factors),
        ),
        num_classes=len(arrays.class_names),
        class_names=arrays.class_names,
        factor_names=arrays.factor_names,
    )
