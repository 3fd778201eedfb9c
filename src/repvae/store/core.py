"""A durable store of full-size MAP embeddings, with ids, labels and (optionally) the images.

Embeddings are computed once, at full size; every client cuts them to the prefix it affords
(a Matryoshka model's nested sizes, or any size of a plain model, less well). On disk:

    STORE/manifest.json              format, the run, the embedding size, the prefix sizes to
                                     index, the metric, and the list of shards (the commit point)
    STORE/shards/NNNNN.safetensors   embeddings [n, D] float32, ids [n] int64, labels [n] int64,
                                     images [n, C, H, W] uint8; a SHA-256 of the tensors in its
                                     metadata, and where the images came from
    STORE/indexes/d<m>-n<N>.faiss    one FAISS index per prefix size m over the first N items

An append writes a new shard (temporary file, then rename), then the manifest (the same): a
crash before the manifest is replaced leaves the store as it was, plus an orphan shard file that
the next append removes. Indexes are a cache: one whose item count is not the manifest's is
rebuilt. Appends hold ``STORE/.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from repvae.files import atomic_path, write_text
from repvae.run import tensor_digest

FORMAT = 1
MANIFEST = "manifest.json"
METRICS = ("cosine", "l2")


class StoreError(ValueError):
    """A store that cannot be opened or written as asked; the message names the file."""


@dataclass
class Shard:
    file: str
    count: int
    first_id: int
    sha256: str
    source: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    run: str
    dim: int
    shape: list[int]
    prefixes: list[int]
    index_dims: list[int]
    metric: str
    class_names: list[str]
    shards: list[Shard] = field(default_factory=list)
    format: int = FORMAT
    created: str = ""

    @property
    def count(self) -> int:
        return sum(s.count for s in self.shards)

    def to_json(self) -> str:
        raw = {**self.__dict__, "shards": [s.__dict__ for s in self.shards]}
        return json.dumps(raw, indent=2)

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise StoreError(
                f"{path}: missing; is {path.parent} a store made by repvae index?"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise StoreError(f"{path}: damaged manifest ({err})") from None
        if raw.get("format") != FORMAT:
            raise StoreError(f"{path}: store format {raw.get('format')!r}, expected {FORMAT}")
        try:
            shards = [Shard(**s) for s in raw.pop("shards")]
            return cls(**raw, shards=shards)
        except (KeyError, TypeError) as err:
            raise StoreError(f"{path}: damaged manifest ({err})") from None


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    with open(root / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StoreError(f"{root}: another process is writing to this store") from None
        yield


class EmbeddingStore:
    """Full-size embeddings with ids and labels; prefix views and FAISS indexes on demand."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = root
        self.manifest = manifest
        self._arrays: dict[str, np.ndarray] | None = None
        self._normalised: dict[int, np.ndarray] = {}
        self._indexes: dict[int, Any] = {}

    # --- creating, opening, appending ---------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: str | Path,
        *,
        run: str,
        dim: int,
        shape: tuple[int, int, int],
        prefixes: list[int],
        index_dims: list[int],
        metric: str = "cosine",
        class_names: list[str] | None = None,
    ) -> EmbeddingStore:
        root = Path(root)
        if (root / MANIFEST).exists():
            raise StoreError(f"{root} already holds a store; add to it with --append")
        if metric not in METRICS:
            raise StoreError(f"--metric: must be one of {METRICS}, got {metric!r}")
        bad = [m for m in index_dims if not 0 < m <= dim]
        if bad:
            raise StoreError(f"--dims: sizes {bad} are not in 1..{dim} (the embedding size)")
        manifest = Manifest(
            run=run,
            dim=dim,
            shape=list(shape),
            prefixes=list(prefixes),
            index_dims=sorted(set(index_dims)),
            metric=metric,
            class_names=list(class_names or []),
            created=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )
        (root / "shards").mkdir(parents=True, exist_ok=True)
        write_text(root / MANIFEST, manifest.to_json())
        return cls(root, manifest)

    @classmethod
    def open(cls, root: str | Path) -> EmbeddingStore:
        root = Path(root)
        return cls(root, Manifest.read(root / MANIFEST))

    def append(
        self,
        embeddings: np.ndarray,
        labels: np.ndarray,
        images: np.ndarray | None = None,
        source: dict[str, Any] | None = None,
    ) -> np.ndarray:
        """Add items (crash-safe, see the module docstring); returns their ids."""
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        n = len(embeddings)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.manifest.dim:
            raise StoreError(
                f"embeddings must be [n, {self.manifest.dim}], got {list(embeddings.shape)}"
            )
        if len(labels) != n or (images is not None and len(images) != n):
            raise StoreError("embeddings, labels and images must have one row per item")
        with _locked(self.root):
            manifest = Manifest.read(self.root / MANIFEST)  # another append may have landed
            first = manifest.count
            ids = np.arange(first, first + n, dtype=np.int64)
            tensors = {
                "embeddings": torch.from_numpy(embeddings),
                "ids": torch.from_numpy(ids),
                "labels": torch.from_numpy(np.asarray(labels, dtype=np.int64)),
            }
            if images is not None:
                tensors["images"] = torch.from_numpy(np.ascontiguousarray(images, np.uint8))
            name = f"shards/{len(manifest.shards):05d}.safetensors"
            self._remove_orphans(manifest)
            digest = tensor_digest(tensors)
            with atomic_path(self.root / name) as temporary:
                save_file(tensors, str(temporary), metadata={"sha256": digest})
            manifest.shards.append(Shard(name, n, first, digest, dict(source or {})))
            write_text(self.root / MANIFEST, manifest.to_json())  # the commit point
            self.manifest = manifest
            self._arrays = None
            self._normalised.clear()
            self._indexes.clear()
        return ids

    def _remove_orphans(self, manifest: Manifest) -> None:
        """Shard files no manifest names: left by an append that crashed before its commit."""
        named = {s.file for s in manifest.shards}
        for path in (self.root / "shards").glob("*.safetensors"):
            if f"shards/{path.name}" not in named:
                path.unlink()

    # --- reading ------------------------------------------------------------------------------

    def _load(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            parts: dict[str, list[np.ndarray]] = {"embeddings": [], "ids": [], "labels": []}
            images: list[np.ndarray] = []
            for shard in self.manifest.shards:
                tensors = self._read_shard(shard)
                for key in parts:
                    parts[key].append(tensors[key].numpy())
                if "images" in tensors:
                    images.append(tensors["images"].numpy())
            arrays = {
                key: np.concatenate(values)
                if values
                else np.zeros((0, self.manifest.dim) if key == "embeddings" else 0)
                for key, values in parts.items()
            }
            arrays["embeddings"] = arrays["embeddings"].astype(np.float32, copy=False)
            if images and len(images) == len(self.manifest.shards):
                arrays["images"] = np.concatenate(images)
            self._arrays = arrays
        return self._arrays

    def _read_shard(self, shard: Shard) -> dict[str, torch.Tensor]:
        path = self.root / shard.file
        try:
            with safe_open(str(path), "pt") as f:
                tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
        except (SafetensorError, OSError) as err:
            raise StoreError(f"{path}: damaged or missing shard ({err})") from None
        if tensor_digest(tensors) != shard.sha256 or len(tensors["ids"]) != shard.count:
            raise StoreError(f"{path}: damaged shard (its tensors changed since it was written)")
        return tensors

    def __len__(self) -> int:
        return self.manifest.count

    @property
    def embeddings(self) -> np.ndarray:
        return self._load()["embeddings"]

    @property
    def labels(self) -> np.ndarray:
        return self._load()["labels"]

    @property
    def ids(self) -> np.ndarray:
        return self._load()["ids"]

    def has_images(self) -> bool:
        return "images" in self._load()

    def image(self, item: int) -> np.ndarray:
        return self._load()["images"][item]

    def item(self, item: int) -> tuple[np.ndarray, int]:
        """The full embedding and label of id ``item``."""
        if not 0 <= item < len(self):
            raise KeyError(item)
        arrays = self._load()
        return arrays["embeddings"][item], int(arrays["labels"][item])

    def prefix(self, m: int) -> np.ndarray:
        """The stored embeddings cut to ``m`` (L2-normalised for the cosine metric), cached."""
        if m not in self._normalised:
            self._normalised[m] = prepare(self.embeddings, m, self.manifest.metric)
        return self._normalised[m]

    def index(self, m: int) -> Any:
        """The FAISS flat index at prefix size ``m``: loaded from disk if current, else built."""
        if m not in self._indexes:
            import faiss  # optional dependency (repvae[serve])

            n = len(self)
            path = self.root / "indexes" / f"d{m}-n{n}.faiss"
            if path.exists():
                index = faiss.read_index(str(path))
            else:
                index = (
                    faiss.IndexFlatIP if self.manifest.metric == "cosine" else faiss.IndexFlatL2
                )(m)
                index.add(self.prefix(m))
                if m in self.manifest.index_dims:
                    for stale in (self.root / "indexes").glob(f"d{m}-n*.faiss"):
                        stale.unlink()
                    with atomic_path(path) as temporary:
                        faiss.write_index(index, str(temporary))
            self._indexes[m] = index
        return self._indexes[m]

    def build_indexes(self) -> list[int]:
        """Write the index of every configured prefix size (``--dims``)."""
        for m in self.manifest.index_dims:
            self.index(m)
        return self.manifest.index_dims


def prepare(vectors: np.ndarray, m: int, metric: str) -> np.ndarray:
    """Cut to the first ``m`` coordinates, then L2-normalise for cosine (truncate first, then
    normalise, as Matryoshka retrieval does: the prefix is the embedding the client has)."""
    cut = np.ascontiguousarray(vectors[:, :m], dtype=np.float32)
    if metric == "cosine":
        norms = np.linalg.norm(cut, axis=1, keepdims=True)
        cut = cut / np.maximum(norms, 1e-12)
    return cut


@contextlib.contextmanager
def store_threads(threads: int) -> Iterator[None]:
    """FAISS's OpenMP threads for the block: each calling thread gets a pool of its own, so a
    service answering requests in a thread pool keeps FAISS to few threads per request."""
    import faiss  # optional dependency (repvae[serve])

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)
