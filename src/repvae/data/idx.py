"""MNIST and Fashion-MNIST from the original IDX files, in torchvision's `<root>/<Name>/raw`."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .core import Arrays, DatasetError
from .download import Remote, ensure_files, fetch

# IDX type codes (third magic byte) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_TRAIN_IMAGES = "train-images-idx3-ubyte"
_TRAIN_LABELS = "train-labels-idx1-ubyte"
_TEST_IMAGES = "t10k-images-idx3-ubyte"
_TEST_LABELS = "t10k-labels-idx1-ubyte"
_FILES = (_TRAIN_IMAGES, _TRAIN_LABELS, _TEST_IMAGES, _TEST_LABELS)


@dataclass(frozen=True)
class IdxDataset:
    """Where an IDX dataset lives locally and upstream."""

    title: str
    folder: str  # under the data root, as torchvision names it
    mirrors: tuple[str, ...]
    md5: dict[str, str]  # of the gzipped files
    class_names: tuple[str, ...]
    homepage: str


MNIST = IdxDataset(
    title="MNIST",
    folder="MNIST",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    md5={
        _TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        _TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        _TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        _TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    class_names=tuple(str(d) for d in range(10)),
    homepage="http://yann.lecun.com/exdb/mnist/",
)

FASHION_MNIST = IdxDataset(
    title="Fashion-MNIST",
    folder="FashionMNIST",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    md5={
        _TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        _TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
        _TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
        _TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
    },
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    homepage="https://github.com/zalandoresearch/fashion-mnist",
)


def _redownload(path: Path) -> str:
    return f"Delete {path} and download it again (load_dataset(..., download=True) does so)."


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if path.name.endswith(".gz") else data
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{path.name} in {path.parent} could not be read ({exc}); the file is corrupt or "
            f"truncated. {_redownload(path)}"
        ) from exc


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (gunzipping `*.gz`) into a native-endian array of the declared shape.

    The header is checked against the payload size so that a truncated file is reported as such
    instead of surfacing later as a reshape error.
    """
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(
            f"{path.name} in {path.parent} is not an IDX file (magic number "
            f"0x{raw[:4].hex()}). {_redownload(path)}"
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(
            f"{path.name} in {path.parent} is truncated inside its header. {_redownload(path)}"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = header + math.prod(dims) * dtype.itemsize
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "longer than its header says"
        raise DatasetError(
            f"{path.name} in {path.parent} is {problem}: its header declares shape {dims} "
            f"({expected} bytes) but it has {len(raw)} bytes. {_redownload(path)}"
        )
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # a writable native-endian copy


def _locate(folder: Path, name: str) -> Path | None:
    """The uncompressed file if present (cheapest to read), else the gzipped one."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_pair(images_path: Path, labels_path: Path, num_classes: int) -> tuple[np.ndarray, ...]:
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    for path, array, ndim in ((images_path, images, 3), (labels_path, labels, 1)):
        if array.dtype != np.uint8 or array.ndim != ndim:
            raise DatasetError(
                f"{path.name} in {path.parent} holds {array.dtype} data of shape "
                f"{array.shape}, expected uint8 with {ndim} dimension(s); it is not the file "
                f"its name says. {_redownload(path)}"
            )
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path.name} has {len(images)} images but {labels_path.name} has "
            f"{len(labels)} labels (folder {images_path.parent}); one of them is from another "
            f"release or damaged. Delete both and download them again."
        )
    if len(labels) and int(labels.max()) >= num_classes:
        raise DatasetError(
            f"{labels_path.name} in {labels_path.parent} has label {int(labels.max())}, "
            f"outside 0..{num_classes - 1}. {_redownload(labels_path)}"
        )
    return images[:, None], labels.astype(np.int64)


def load_idx(spec: IdxDataset, root: Path, download: bool) -> Arrays:
    """Load an IDX dataset from `<root>/<folder>/raw`, downloading missing files if allowed."""
    folder = root / spec.folder / "raw"

    def find_missing() -> list[str]:
        return [f"{name}.gz" for name in _FILES if _locate(folder, name) is None]

    def download_missing(missing: list[str]) -> None:
        for filename in missing:
            urls = tuple(mirror + filename for mirror in spec.mirrors)
            fetch(Remote(filename, urls, spec.md5[filename.removesuffix(".gz")]), folder)

    ensure_files(
        dataset=spec.title,
        folder=folder,
        root=root,
        find_missing=find_missing,
        download_missing=download_missing,
        download=download,
        how_to_get=(
            f"Get the four IDX files from {spec.homepage} (gzipped or not, names as listed)."
        ),
    )
    paths = {name: _locate(folder, name) or folder / f"{name}.gz" for name in _FILES}
    n = len(spec.class_names)
    train_images, train_labels = _read_pair(paths[_TRAIN_IMAGES], paths[_TRAIN_LABELS], n)
    test_images, test_labels = _read_pair(paths[_TEST_IMAGES], paths[_TEST_LABELS], n)
    return Arrays(train_images, train_labels, test_images, test_labels, spec.class_names)
