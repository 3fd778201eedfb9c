"""SVHN (cropped digits) from the official MATLAB files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from .core import Arrays, DatasetError
from .download import Remote, ensure_files, fetch

FOLDER = "svhn"
_BASE_URL = "http://ufldl.stanford.edu/housenumbers/"
TRAIN = Remote(
    "train_32x32.mat", (_BASE_URL + "train_32x32.mat",), "e26dedcc434d2e4c54c9b2d4a06d8373"
)
TEST = Remote("test_32x32.mat", (_BASE_URL + "test_32x32.mat",), "eb5a983be6a315427106f1b164d9cef3")


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read X [32, 32, 3, N] and y [N, 1] as (uint8 [N, 3, 32, 32], int64 [N]).

    SVHN labels the digit 0 as 10; it becomes 0 so labels are the digits themselves.
    """
    fix = f"Delete {path} and download it again."
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises ValueError, OSError, MatReadError, ... on bad files
        raise DatasetError(
            f"{path.name} in {path.parent} is not a readable MATLAB file ({exc}). {fix}"
        ) from exc
    images, labels = mat.get("X"), mat.get("y")
    if not (
        isinstance(images, np.ndarray)
        and images.dtype == np.uint8
        and images.ndim == 4
        and images.shape[:3] == (32, 32, 3)
    ):
        raise DatasetError(f"{path.name} in {path.parent} has no uint8 X of 32x32x3xN. {fix}")
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if (
        labels.shape[0] != images.shape[3]
        or labels.min(initial=1) < 1
        or labels.max(initial=1) > 10
    ):
        raise DatasetError(
            f"{path.name} in {path.parent} does not have one label in 1..10 per image. {fix}"
        )
    labels[labels == 10] = 0
    images = np.ascontiguousarray(images.transpose(3, 2, 0, 1))
    return images, labels


def load_svhn(root: Path, download: bool) -> Arrays:
    """Load `<root>/svhn/{train,test}_32x32.mat`, downloading them if allowed."""
    folder = root / FOLDER
    remotes = {remote.filename: remote for remote in (TRAIN, TEST)}

    def find_missing() -> list[str]:
        return [name for name in remotes if not (folder / name).is_file()]

    def download_missing(missing: list[str]) -> None:
        for name in missing:
            fetch(remotes[name], folder)

    ensure_files(
        dataset="SVHN",
        folder=folder,
        root=root,
        find_missing=find_missing,
        download_missing=download_missing,
        download=download,
        how_to_get="Get them (format 2, cropped digits) from http://ufldl.stanford.edu/housenumbers/.",
    )
    train_images, train_labels = read_mat(folder / TRAIN.filename)
    test_images, test_labels = read_mat(folder / TEST.filename)
    digits = tuple(str(d) for d in range(10))
    return Arrays(train_images, train_labels, test_images, test_labels, digits)
