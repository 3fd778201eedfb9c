"""Filling a store: a dataset split encoded once, in shards, with a progress bar.

Each shard (``shard_size`` images) is appended as soon as it is encoded, and records which
images of which dataset split it holds, so an indexing run that is interrupted keeps the shards
it finished, and running it again adds only the images that are missing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from repvae.data import ImageData
from repvae.export import Encoder
from repvae.store.core import EmbeddingStore

SHARD_SIZE = 10_000


def _done_ranges(store: EmbeddingStore, dataset: str, split: str) -> list[tuple[int, int]]:
    return [
        (s.source["start"], s.source["end"])
        for s in store.manifest.shards
        if s.source.get("dataset") == dataset and s.source.get("split") == split
    ]


def index_split(
    store: EmbeddingStore,
    encoder: Encoder,
    data: ImageData,
    split: str,
    *,
    shard_size: int = SHARD_SIZE,
    keep_images: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> int:
    """Encode ``data``'s ``split`` into ``store``; returns how many images were added."""
    part = getattr(data, split)
    images, labels = part.images.numpy(), part.labels.numpy()
    done = _done_ranges(store, data.name, split)
    todo = [
        (start, min(start + shard_size, len(images)))
        for start in range(0, len(images), shard_size)
        if not any(a <= start and min(start + shard_size, len(images)) <= b for a, b in done)
    ]
    if log and done:
        log(f"{sum(b - a for a, b in done)} images of {data.name}/{split} are in the store already")
    added = 0
    with tqdm(total=sum(b - a for a, b in todo), disable=not progress, unit="img") as bar:
        for start, end in todo:
            batch = images[start:end]
            embeddings = np.concatenate(
                [encoder(batch[i : i + 1024]) for i in range(0, len(batch), 1024)]
            )
            store.append(
                embeddings,
                labels[start:end],
                batch if keep_images else None,
                {"dataset": data.name, "split": split, "start": start, "end": end},
            )
            added += end - start
            bar.update(end - start)
    return added
