"""CIFAR-10 in its canonical python-batch format, read without trusting pickle."""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .archive import safe_extract
from .core import Arrays, DatasetError
from .download import Remote, ensure_files, fetch

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
ARCHIVE = Remote(
    "cifar-10-python.tar.gz",
    ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    "c58f30108f718f92721af3b95e74349a",
)

# The only globals a pickled numpy array needs, mapped to the objects themselves (never
# imported by name, so a pickle cannot reach anything else). The callables are taken from
# numpy's own reductions because their module moved between numpy 1 and 2; protocol 5 pickles
# use _frombuffer, older protocols _reconstruct.
_RECONSTRUCT = np.empty(0, np.uint8).__reduce_ex__(2)[0]
_FROMBUFFER = np.empty(1, np.uint8).__reduce_ex__(5)[0]
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,  # how Python 3 pickles bytes at protocol < 3
}


def _not_a_batch(path: Path, why: str) -> DatasetError:
    return DatasetError(
        f"{path.name} in {path.parent} is not a CIFAR-10 batch file ({why}). Delete the "
        f"{path.parent.name} folder and download/extract cifar-10-python.tar.gz again."
    )


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that can build numpy arrays and builtins but call nothing else.

    A pickle can run arbitrary code only through the globals it names; refusing every global
    outside the numpy array machinery makes loading downloaded files safe.
    """

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _not_a_batch(self._path, f"it references {module}.{name}") from None


def read_pickle(path: Path) -> Any:
    """Unpickle a CIFAR file with the restricted unpickler; any failure names the file."""
    try:
        with path.open("rb") as f:
            return _ArrayOnlyUnpickler(f, path).load()
    except DatasetError:
        raise
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean "bad file"
        raise _not_a_batch(path, f"unpickling failed: {exc!r}") from exc


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch as (uint8 images [N, 3, 32, 32], int64 labels [N])."""
    batch = read_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise _not_a_batch(path, "expected a dict with keys b'data' and b'labels'")
    data, labels = batch[b"data"], batch[b"labels"]
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == 3 * 32 * 32
    ):
        raise _not_a_batch(path, "b'data' is not a uint8 array of shape [N, 3072]")
    labels = np.asarray(labels)
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise _not_a_batch(path, f"b'labels' is not {len(data)} integers")
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise _not_a_batch(path, "labels outside 0..9")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_class_names(path: Path) -> tuple[str, ...]:
    meta = read_pickle(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != 10:
        raise _not_a_batch(path, "expected b'label_names' with 10 names")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def load_cifar10(root: Path, download: bool) -> Arrays:
    """Load `<root>/cifar-10-batches-py`, downloading and extracting the archive if allowed."""
    folder = root / FOLDER

    def find_missing() -> list[str]:
        names = (*TRAIN_BATCHES, TEST_BATCH, META)
        return [name for name in names if not (folder / name).is_file()]

    def download_missing(_: list[str]) -> None:
        archive = fetch(ARCHIVE, root)
        safe_extract(archive, root)
        archive.unlink()

    ensure_files(
        dataset="CIFAR-10",
        folder=folder,
        root=root,
        find_missing=find_missing,
        download_missing=download_missing,
        download=download,
        how_to_get=(
            "Download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html "
            f"and extract it in {root.resolve()} (it creates {FOLDER}/)."
        ),
    )
    train = [read_batch(folder / name) for name in TRAIN_BATCHES]
    test_images, test_labels = read_batch(folder / TEST_BATCH)
    return Arrays(
        train_images=np.concatenate([images for images, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=test_images,
        test_labels=test_labels,
        class_names=read_class_names(folder / META),
    )
