"""In-memory batching: a whole split lives as one uint8 tensor, batches are index slices.

A ``torch.utils.data.DataLoader`` over a per-sample ``Dataset`` spends most of a small model's
step in Python (``__getitem__`` + collate per image); slicing a resident tensor with a random
permutation is one indexing op per batch (see benchmarks/train_throughput.py for the measured gain).
Lightning accepts any sized iterable as a loader; for DDP each rank takes a disjoint stride of
the epoch's permutation (set by the training module from the trainer).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


class TensorBatches:
    """Iterable over (images, labels) batches of an in-memory split, reshuffled each epoch."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        min_last: int = 1,
    ) -> None:
        """``drop_last`` drops an incomplete last batch; ``min_last`` drops a last batch smaller
        than that (training passes 2: BatchNorm cannot normalise a batch of one image)."""
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.min_last = batch_size if drop_last else min_last
        self.epoch = 0
        self.rank, self.world_size = 0, 1

    def _num_items(self) -> int:
        n = len(self.images)
        return n // self.world_size if self.world_size > 1 else n

    def __len__(self) -> int:
        full, rest = divmod(self._num_items(), self.batch_size)
        return full + int(rest > 0 and rest >= self.min_last)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.images)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=generator)
            self.epoch += 1
        else:
            order = None
        if self.world_size > 1:
            base = order if order is not None else torch.arange(n)
            order = base[self.rank : self._num_items() * self.world_size : self.world_size]
        stop = len(self) * self.batch_size
        for start in range(0, stop, self.batch_size):
            end = min(start + self.batch_size, self._num_items())
            if order is None:
                yield self.images[start:end], self.labels[start:end]
            else:
                index = order[start:end]
                yield self.images[index], self.labels[index]


class SemiSupervisedBatches:
    """Batches for semi-supervised training: each unlabelled batch (labels hidden as -1) is
    joined by a batch of the few labelled images, which are cycled through (reshuffled on every
    pass) so that every step sees labels however few there are. An epoch is one pass over the
    unlabelled images (over the labelled ones when every image is labelled)."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        labelled: torch.Tensor,
        batch_size: int,
        *,
        seed: int = 0,
    ) -> None:
        mask = torch.zeros(len(images), dtype=torch.bool)
        mask[labelled] = True
        self.labelled = TensorBatches(
            images[mask], labels[mask], min(batch_size, int(mask.sum())), shuffle=True, seed=seed
        )
        hidden = torch.full((int((~mask).sum()),), -1, dtype=labels.dtype)
        self.unlabelled = (
            TensorBatches(images[~mask], hidden, batch_size, shuffle=True, seed=seed + 1)
            if len(hidden)
            else None
        )
        self.epoch, self.rank, self.world_size = 0, 0, 1

    def _parts(self) -> list[TensorBatches]:
        parts = [self.labelled] if self.unlabelled is None else [self.unlabelled, self.labelled]
        for part in parts:
            part.rank, part.world_size = self.rank, self.world_size
        return parts

    def __len__(self) -> int:
        return len(self._parts()[0])

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        parts = self._parts()
        self.labelled.epoch = self.epoch * 1_000  # distinct shuffles for the many passes
        if len(parts) == 1:
            self.epoch += 1
            yield from self.labelled
            return
        unlabelled = parts[0]
        unlabelled.epoch = self.epoch
        self.epoch += 1
        labelled = iter(self.labelled)
        for x_u, y_u in unlabelled:
            try:
                x_l, y_l = next(labelled)
            except StopIteration:
                labelled = iter(self.labelled)
                x_l, y_l = next(labelled)
            yield torch.cat([x_u, x_l]), torch.cat([y_u, y_l])
