"""Deterministic index splits.

Index arrays are returned sorted so that every split keeps the order of the source files,
which makes splits easy to compare across runs and keeps the official order for inspection.
"""

from __future__ import annotations

import numbers

import numpy as np

from .core import DatasetError

# Datasets without an official test set get one fixed test split, independent of the run seed,
# so that test numbers from different seeds are measured on the same images.
TEST_FRACTION = 0.2
TEST_SEED = 0


def seeded_subset(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``min(size, n)`` of ``n`` items drawn without replacement: a subset that
    covers every class even when the items are stored class by class."""
    return np.sort(rng.permutation(n)[: min(size, n)])


def holdout_count(val_size: float | int, n: int) -> int:
    """Number of items `val_size` asks for out of `n` (fraction in [0, 1) or a count)."""
    if isinstance(val_size, bool) or not isinstance(val_size, numbers.Real):
        raise DatasetError(f"val_size must be a fraction in [0, 1) or a count, got {val_size!r}")
    if isinstance(val_size, numbers.Integral):
        count = int(val_size)
    elif 0.0 <= val_size < 1.0:
        count = round(float(val_size) * n)
    else:
        raise DatasetError(
            f"val_size={val_size} is not a fraction in [0, 1); pass an int to hold out a "
            "fixed number of training images"
        )
    if not 0 <= count < n:
        raise DatasetError(
            f"val_size={val_size} asks for {count} validation images but the training set has "
            f"only {n}; use a smaller val_size"
        )
    return count


def holdout_indices(n: int, val_size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split range(n) into (kept, held out) with a seeded permutation."""
    count = holdout_count(val_size, n)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[count:]), np.sort(perm[:count])


def stratified_holdout(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (kept, held out), holding out `fraction` of every class."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        held.append(rng.permutation(members)[: round(fraction * len(members))])
    held_out = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_out, assume_unique=True)
    return kept, held_out


def balanced_subset(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of ``n`` points, ``n // C`` of each of the C classes present.

    The ``n % C`` leftover labels go to distinct random classes, so exactly ``n`` are drawn when
    every class has enough points; a class with too few points contributes all it has.
    Vectorised: shuffle, group by class (stable sort keeps the shuffle within a class), keep
    each point whose rank within its class is below that class's quota.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    quota = np.full(len(classes), n // len(classes))
    quota[rng.choice(len(classes), n % len(classes), replace=False)] += 1
    order = rng.permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    return np.sort(order[rank < np.repeat(quota, counts)])
