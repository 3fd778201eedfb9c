"""Any folder (or tar archive) of class-labelled images.

Layouts: `PATH/{train,test}/<class>/<image>` uses the given test split; `PATH/<class>/<image>`
gets a fixed stratified test split. Archives are extracted once under
`<data root>/extracted/<stem>/` and their decoded pixels cached as `.npz` next to the
extraction, because decoding tens of thousands of small JPEGs takes far longer than reading
one array file.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from .archive import safe_extract
from .core import ROOT_HINT, Arrays, DatasetError
from .paths import user_cache_dir
from .splits import TEST_FRACTION, TEST_SEED, stratified_holdout

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")
_CACHE_VERSION = 1  # bump when decoding changes, so stale caches are ignored
_CACHE_ARRAYS = {  # name -> (dtype, ndim) of the numeric arrays in a cache file
    "train_images": (np.dtype(np.uint8), 4),
    "train_labels": (np.dtype(np.int64), 1),
    "test_images": (np.dtype(np.uint8), 4),
    "test_labels": (np.dtype(np.int64), 1),
}
_CACHE_KEYS = (*_CACHE_ARRAYS, "class_names")


def _hidden(path: Path) -> bool:
    return path.name.startswith(".") or path.name == "__MACOSX"


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(path) and path.is_file()


def resolve_path(spec_path: str, root: Path) -> Path:
    """Find `spec_path` relative to the working directory, else relative to the data root."""
    path = Path(spec_path).expanduser()
    if path.exists():
        return path
    if not path.is_absolute() and (root / path).exists():
        return root / path
    tried = [str(path.resolve())]
    if not path.is_absolute():
        tried.append(str((root / path).resolve()))
    raise DatasetError(
        f"folder:{spec_path} does not exist (looked for {' and '.join(tried)}). Give the path "
        "of an image folder or .tar.gz archive, relative to the current directory or to the "
        f"data root. {ROOT_HINT}"
    )


def archive_stem(path: Path) -> str | None:
    """The archive name without its tar suffix, or None if `path` is not a tar archive."""
    for suffix in ARCHIVE_SUFFIXES:
        if path.name.lower().endswith(suffix) and len(path.name) > len(suffix):
            return path.name[: -len(suffix)]
    return None


def _extraction_base(root: Path, stem: str, archive: Path) -> Path:
    """Extractions are derived data: they go to the user cache folder, never beside the archive
    or into the data root (which may be a shared, read-only or version-controlled dataset
    folder)."""
    base = user_cache_dir() / "extracted"
    try:
        base.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=base):
            return base
    except OSError as exc:
        raise DatasetError(
            f"Cannot extract {archive}: {base} is not writable ({exc}). Set XDG_CACHE_HOME to a "
            "writable folder, or extract the archive yourself and pass the folder."
        ) from exc


def _extract_once(archive: Path, dest: Path) -> Path:
    """Extract into a temporary sibling, then rename, so `dest` only ever exists complete."""
    if dest.is_dir():
        return dest
    log.info("extracting %s into %s", archive, dest)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        safe_extract(archive, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the extraction is meant to be shared
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # otherwise a concurrent process finished first: use its copy
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return dest


def _unwrap(folder: Path) -> Path:
    """Step into a single wrapper directory, as many archives have one (`name/train/...`)."""
    entries = [p for p in folder.iterdir() if not _hidden(p)]
    if len(entries) == 1 and entries[0].is_dir():
        inner = entries[0]
        if not any(_is_image(p) for p in inner.iterdir()):
            return inner
    return folder


def _class_dirs(folder: Path) -> list[str]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not _hidden(p))
    if not names:
        raise DatasetError(
            f"{folder} has no class folders. Expected PATH/<class>/<image> or "
            f"PATH/{{train,test}}/<class>/<image> with images of type "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}."
        )
    return names


def _list_images(folder: Path, classes: list[str]) -> tuple[list[Path], np.ndarray]:
    """Image files under `folder/<class>/`, in class then file-name order, with their labels."""
    unknown = sorted(set(_class_dirs(folder)) - set(classes))
    if unknown:
        raise DatasetError(
            f"{folder} has class folders {unknown} that the training split does not have. "
            "Every test class needs training images: rename or remove these folders."
        )
    files: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        images = sorted(p for p in class_dir.iterdir() if _is_image(p))
        if not images:
            raise DatasetError(
                f"Class folder {class_dir} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})."
                " Add images or remove the folder."
            )
        files += images
        labels += [label] * len(images)
    return files, np.asarray(labels, dtype=np.int64)


def _decode(path: Path, image_size: int | None, grayscale: bool) -> np.ndarray:
    """One image as uint8 [C, H, W]; every mode becomes RGB (or L) the same way."""
    try:
        with Image.open(path) as opened:
            img: Image.Image = opened
            if img.mode == "P" and "transparency" in img.info:
                img = img.convert("RGBA")  # what PIL asks for, to interpret the transparency
            if img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            img = img.convert("L" if grayscale else "RGB")
            if image_size is not None and img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
            pixels = np.asarray(img)
    except Exception as exc:  # PIL raises many types on damaged files; all mean "unreadable"
        raise DatasetError(
            f"Cannot read image {path.name} in {path.parent} ({exc}). Replace or delete it."
        ) from exc
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _decode_all(files: list[Path], image_size: int | None, grayscale: bool) -> np.ndarray:
    log.info("decoding %d images under %s", len(files), os.path.commonpath(files))
    first = _decode(files[0], image_size, grayscale)
    out = np.empty((len(files), *first.shape), dtype=np.uint8)
    out[0] = first
    for i, path in enumerate(files[1:], start=1):
        pixels = _decode(path, image_size, grayscale)
        if pixels.shape != first.shape:
            raise DatasetError(
                f"{path} is {pixels.shape[2]}x{pixels.shape[1]} but {files[0]} is "
                f"{first.shape[2]}x{first.shape[1]}. Pass image_size=N (--image-size N) to "
                "resize every image to N x N."
            )
        out[i] = pixels
    return out


def load_tree(folder: Path, image_size: int | None, grayscale: bool) -> Arrays:
    """Decode an image folder in either layout into train/test arrays."""
    train_dir, test_dir = folder / "train", folder / "test"
    if train_dir.is_dir() != test_dir.is_dir():
        present, absent = (train_dir, test_dir) if train_dir.is_dir() else (test_dir, train_dir)
        raise DatasetError(
            f"{folder} has {present.name}/ but no {absent.name}/. Use PATH/train/<class> with "
            "PATH/test/<class>, or put the class folders directly in PATH."
        )
    if train_dir.is_dir():
        if (folder / "val").is_dir():
            log.warning("ignoring %s: validation images are carved from train/", folder / "val")
        classes = _class_dirs(train_dir)
        train_files, train_labels = _list_images(train_dir, classes)
        test_files, test_labels = _list_images(test_dir, classes)
        images = _decode_all(train_files + test_files, image_size, grayscale)
        train_images, test_images = images[: len(train_files)], images[len(train_files) :]
    else:
        classes = _class_dirs(folder)
        files, labels = _list_images(folder, classes)
        images = _decode_all(files, image_size, grayscale)
        train, test = stratified_holdout(labels, TEST_FRACTION, TEST_SEED)
        train_images, train_labels = images[train], labels[train]
        test_images, test_labels = images[test], labels[test]
    return Arrays(train_images, train_labels, test_images, test_labels, tuple(classes))


def _read_cache(path: Path) -> Arrays | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in _CACHE_KEYS}
    except Exception as exc:  # a damaged cache is rebuilt, never fatal
        log.warning("ignoring unreadable cache %s (%s)", path, exc)
        return None
    layout = {key: (arrays[key].dtype, arrays[key].ndim) for key in _CACHE_ARRAYS}
    if layout != _CACHE_ARRAYS:
        log.warning("ignoring cache %s with unexpected arrays", path)
        return None
    return Arrays(
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"],
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"],
        class_names=tuple(str(name) for name in arrays["class_names"]),
    )


def _write_cache(path: Path, arrays: Arrays) -> None:
    """Write atomically (temp file + rename) so a reader never sees a half-written cache."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as f:
            np.savez(
                f,
                train_images=arrays.train_images,
                train_labels=arrays.train_labels,
                test_images=arrays.test_images,
                test_labels=arrays.test_labels,
                class_names=np.asarray(arrays.class_names, dtype=str),
            )
        os.replace(tmp, path)
    except OSError as exc:  # a read-only data root only costs speed
        tmp.unlink(missing_ok=True)
        log.warning("could not write cache %s (%s)", path, exc)


def load_folder(spec_path: str, root: Path, image_size: int | None, grayscale: bool) -> Arrays:
    """Load `folder:PATH`, where PATH is an image folder or a tar archive of one."""
    path = resolve_path(spec_path, root)
    if path.is_dir():
        return load_tree(path, image_size, grayscale)
    stem = archive_stem(path)
    if stem is None:
        raise DatasetError(
            f"folder:{spec_path} is a file but not a tar archive ({', '.join(ARCHIVE_SUFFIXES)})."
            " Give an image folder or an archive of one."
        )
    extracted = _extraction_base(root, stem, path)
    folder = _extract_once(path, extracted / stem)
    size_tag = f"{image_size}px" if image_size is not None else "native"
    color_tag = "gray" if grayscale else "rgb"
    cache = extracted / f"{stem}.{size_tag}-{color_tag}.v{_CACHE_VERSION}.npz"
    arrays = _read_cache(cache)
    if arrays is None:
        arrays = load_tree(_unwrap(folder), image_size, grayscale)
        _write_cache(cache, arrays)
    return arrays
