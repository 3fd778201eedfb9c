"""Image folders and tar archives of them."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repvae.data import DatasetError, dataset_label, load_dataset
from repvae.data import folder as folder_module
from repvae.data.transforms import to_grayscale


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Extractions go to the user cache: point it into tmp_path so tests never touch ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _extracted(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "repvae" / "data" / "extracted"


def save(path: Path, pixels: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(pixels)
    (image.convert(mode) if mode else image).save(path)


def make_split_layout(base: Path, size: tuple[int, int] = (6, 5)) -> dict[str, list[np.ndarray]]:
    """train/{cat,dog} with 3 PNGs each, test/{cat,dog} with 1 each; returns pixels by split."""
    rng = np.random.default_rng(0)
    pixels: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    for split, count in (("train", 3), ("test", 1)):
        for cls in ("cat", "dog"):  # sorted order, so label 0 = cat
            for i in range(count):
                array = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                save(base / split / cls / f"{i:03d}.png", array)
                pixels[split].append(array)
    return pixels


def chw(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


def test_split_layout(tmp_path: Path) -> None:
    pixels = make_split_layout(tmp_path / "imgs")
    data = load_dataset(f"folder:{tmp_path / 'imgs'}", tmp_path / "root", val_size=0)
    assert data.class_names == ("cat", "dog")
    assert data.shape == (3, 5, 6)
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert data.test.labels.tolist() == [0, 1]
    assert torch.equal(data.train.images, chw(pixels["train"]))
    assert torch.equal(data.test.images, chw(pixels["test"]))
    assert data.name == f"folder:{tmp_path / 'imgs'}"


def test_flat_layout_gets_stratified_test_split(tmp_path: Path) -> None:
    for cls in ("b", "a", "c"):
        for i in range(5):
            save(tmp_path / "flat" / cls / f"{i}.png", np.full((4, 4, 3), i * 10, np.uint8))
    (tmp_path / "flat" / "a" / "notes.txt").write_text("not an image, ignored")
    data = load_dataset(f"folder:{tmp_path / 'flat'}", tmp_path, val_size=0)
    assert data.class_names == ("a", "b", "c")
    assert sorted(data.test.labels.tolist()) == [0, 1, 2]  # round(0.2 * 5) = 1 per class
    assert len(data.train) == 12


def test_modes_are_converted_to_rgb(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    for cls, mode in (("gray", "L"), ("palette", "P"), ("rgba", "RGBA"), ("rgb", None)):
        save(tmp_path / "m" / cls / "x.png", rgb, mode)
        save(tmp_path / "m" / cls / "y.png", rgb, mode)
    data = load_dataset(f"folder:{tmp_path / 'm'}", tmp_path, val_size=0)
    assert data.shape == (3, 4, 4)
    rgba = data.train.images[data.train.labels == data.class_names.index("rgba")][0]
    assert torch.equal(rgba, torch.from_numpy(rgb).permute(2, 0, 1))


def test_different_sizes_need_image_size(tmp_path: Path) -> None:
    save(tmp_path / "s" / "a" / "big.png", np.zeros((10, 12, 3), np.uint8))
    save(tmp_path / "s" / "a" / "small.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DatasetError, match="image_size"):
        load_dataset(f"folder:{tmp_path / 's'}", tmp_path)
    data = load_dataset(f"folder:{tmp_path / 's'}", tmp_path, image_size=8, val_size=0)
    assert data.shape == (3, 8, 8)


def test_grayscale_matches_rgb_conversion(tmp_path: Path) -> None:
    make_split_layout(tmp_path / "imgs")
    spec = f"folder:{tmp_path / 'imgs'}"
    rgb = load_dataset(spec, tmp_path, val_size=0)
    gray = load_dataset(spec, tmp_path, val_size=0, grayscale=True)
    assert gray.shape == (1, 5, 6)
    assert torch.equal(gray.train.images, to_grayscale(rgb.train.images))


def test_unreadable_image_names_file(tmp_path: Path) -> None:
    make_split_layout(tmp_path / "imgs")
    (tmp_path / "imgs" / "train" / "dog" / "001.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(DatasetError, match=r"001\.png"):
        load_dataset(f"folder:{tmp_path / 'imgs'}", tmp_path)


def test_bad_layouts(tmp_path: Path) -> None:
    make_split_layout(tmp_path / "imgs")
    save(tmp_path / "imgs" / "test" / "bird" / "0.png", np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(DatasetError, match="bird"):
        load_dataset(f"folder:{tmp_path / 'imgs'}", tmp_path)
    save(tmp_path / "only" / "train" / "a" / "0.png", np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(DatasetError, match="no test/"):
        load_dataset(f"folder:{tmp_path / 'only'}", tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nowhere'}", tmp_path)


def test_relative_path_falls_back_to_data_root(tmp_path: Path, monkeypatch) -> None:
    make_split_layout(tmp_path / "root" / "imgs")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    assert len(load_dataset("folder:imgs", tmp_path / "root", val_size=0).train) == 6


def make_archive(tmp_path: Path) -> Path:
    make_split_layout(tmp_path / "src" / "pets")
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "pets", arcname="pets")  # wrapped in one top folder
    return archive


def test_archive_is_extracted_into_user_cache(tmp_path: Path) -> None:
    archive = make_archive(tmp_path)
    root = tmp_path / "root"
    from_archive = load_dataset(f"folder:{archive}", root, val_size=0)
    from_folder = load_dataset(f"folder:{tmp_path / 'src' / 'pets'}", root, val_size=0)
    assert torch.equal(from_archive.train.images, from_folder.train.images)
    assert (_extracted(tmp_path) / "pets" / "pets" / "train" / "cat" / "000.png").is_file()
    caches = list((_extracted(tmp_path)).glob("*.npz"))
    assert [c.name for c in caches] == ["pets.native-rgb.v1.npz"]
    with np.load(caches[0], allow_pickle=False) as npz:  # plain arrays, no pickled objects
        assert npz["class_names"].tolist() == ["cat", "dog"]


def test_second_archive_load_uses_cache(tmp_path: Path, monkeypatch) -> None:
    archive = make_archive(tmp_path)
    root = tmp_path / "root"
    first = load_dataset(f"folder:{archive}", root, val_size=2, seed=1)

    def no_decoding(*args: object) -> None:
        raise AssertionError("the cache should have been used")

    with monkeypatch.context() as patched:
        patched.setattr(folder_module, "_decode", no_decoding)
        patched.setattr(folder_module, "safe_extract", no_decoding)
        second = load_dataset(f"folder:{archive}", root, val_size=2, seed=1)
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(first, split).images, getattr(second, split).images)
        assert torch.equal(getattr(first, split).labels, getattr(second, split).labels)
    assert second.class_names == ("cat", "dog")
    gray = load_dataset(f"folder:{archive}", root, grayscale=True, image_size=3)
    assert gray.shape == (1, 3, 3)
    names = sorted(c.name for c in (_extracted(tmp_path)).glob("*.npz"))
    assert names == ["pets.3px-gray.v1.npz", "pets.native-rgb.v1.npz"]


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("member", ["../evil.png", "a/../../evil.png", "/tmp/evil.png"])
def test_archive_path_traversal_refused(tmp_path: Path, member: str) -> None:
    archive = tmp_path / "bad.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_bytes(tar, "cls/ok.png", b"x")
        add_bytes(tar, member, b"evil")
    root = tmp_path / "root"
    with pytest.raises(DatasetError, match="outside the extraction folder"):
        load_dataset(f"folder:{archive}", root)
    assert not (_extracted(tmp_path) / "bad").exists()
    assert not (root / "evil.png").exists() and not (tmp_path / "evil.png").exists()


def test_archive_links_refused(tmp_path: Path) -> None:
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("cls/secret.png")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(DatasetError, match="link or special file"):
        load_dataset(f"folder:{archive}", tmp_path / "root")


def test_corrupt_archive_names_it(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(b"\x1f\x8b\x08\x00 definitely not gzip")
    with pytest.raises(DatasetError, match=r"broken\.tar\.gz"):
        load_dataset(f"folder:{archive}", tmp_path / "root")


def test_unwritable_data_root_falls_back_to_user_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = make_archive(tmp_path)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the data root folder would be, so nothing can be created")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = load_dataset(f"folder:{archive}", blocked, val_size=0)
    assert len(data.train) == 6
    assert (tmp_path / "cache" / "repvae" / "data" / "extracted" / "pets").is_dir()


def test_damaged_cache_is_rebuilt(tmp_path: Path) -> None:
    archive = make_archive(tmp_path)
    root = tmp_path / "root"
    first = load_dataset(f"folder:{archive}", root)
    cache = _extracted(tmp_path) / "pets.native-rgb.v1.npz"
    cache.write_bytes(b"PK\x03\x04 not really a zip")
    second = load_dataset(f"folder:{archive}", root)
    assert torch.equal(first.train.images, second.train.images)
    with np.load(cache, allow_pickle=False) as npz:
        assert npz["train_images"].shape == (6, 3, 5, 6)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("mnist", "mnist"),
        ("folder:../shared/datasets/cifar10-jpeg.tar.gz", "cifar10-jpeg"),
        ("folder:/data/pets/", "pets"),
        ("folder:flowers.tgz", "flowers"),
    ],
)
def test_dataset_label_names_folders_by_their_last_component(name: str, label: str) -> None:
    assert dataset_label(name) == label
