"""The in-memory dataset types shared by every loader, and the one error type users see."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class DatasetError(Exception):
    """A data problem the user can fix (missing/corrupt file, bad layout, bad argument).

    Messages name the file(s), the folder and the fix, so that the CLI can print them as they
    are instead of a stack trace.
    """


ROOT_HINT = (
    "To use another data folder pass --data-root DIR (root=... in Python) "
    "or set the REPVAE_DATA environment variable."
)


@dataclass(frozen=True, repr=False)
class Split:
    """One split as aligned tensors: images, labels and, for synthetic data, generative factors.

    Images stay uint8 so that a whole dataset fits in memory at a quarter of the float size;
    conversion to float happens per batch, where the model needs it. Factors (the index of each
    generative factor's value) are what disentanglement metrics score against; datasets that do
    not know them leave None.
    """

    images: torch.Tensor  # uint8 [N, C, H, W]
    labels: torch.Tensor  # int64 [N]
    factors: torch.Tensor | None = None  # int64 [N, F]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"Split.images must be uint8 [N, C, H, W], got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.ndim != 1:
            raise ValueError(
                f"Split.labels must be int64 [N], got {self.labels.dtype} "
                f"{tuple(self.labels.shape)}"
            )
        if self.images.shape[0] != self.labels.shape[0]:
            raise ValueError(
                f"Split has {self.images.shape[0]} images but {self.labels.shape[0]} labels"
            )
        if self.factors is not None:
            if self.factors.dtype != torch.int64 or self.factors.ndim != 2:
                raise ValueError(
                    f"Split.factors must be int64 [N, F], got {self.factors.dtype} "
                    f"{tuple(self.factors.shape)}"
                )
            if self.factors.shape[0] != self.images.shape[0]:
                raise ValueError(
                    f"Split has {self.images.shape[0]} images but {self.factors.shape[0]} "
                    "factor rows"
                )
            object.__setattr__(self, "factors", self.factors.contiguous())
        # Frozen dataclass: assigning through object is the sanctioned way to normalise a field.
        object.__setattr__(self, "images", self.images.contiguous())
        object.__setattr__(self, "labels", self.labels.contiguous())

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        # The default repr would print tensor contents; the shape is what a log needs.
        return f"Split(n={len(self)}, image_shape={tuple(self.images.shape[1:])})"


@dataclass(frozen=True)
class ImageData:
    """A dataset with fixed train/val/test splits, its class names and its factor names.

    `factor_names` is empty unless every split carries factors, so code that needs factors can
    test one field instead of three splits.
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    class_names: tuple[str, ...]
    factor_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: num_classes={self.num_classes} but "
                f"{len(self.class_names)} class names"
            )
        for split_name, split in (("train", self.train), ("val", self.val), ("test", self.test)):
            if split.images.shape[1:] != self.train.images.shape[1:]:
                raise ValueError(
                    f"{self.name}: {split_name} images are {tuple(split.images.shape[1:])}, "
                    f"train images are {tuple(self.train.images.shape[1:])}"
                )
            labels = split.labels
            if len(split) and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise ValueError(f"{self.name}: {split_name} has labels outside 0..num_classes-1")
            if split.factors is None:
                if self.factor_names:
                    raise ValueError(f"{self.name}: {split_name} has no factors but factor names")
            elif split.factors.shape[1] != len(self.factor_names):
                raise ValueError(
                    f"{self.name}: {split_name} has {split.factors.shape[1]} factors but "
                    f"{len(self.factor_names)} factor names"
                )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        c, h, w = self.train.images.shape[1:]
        return int(c), int(h), int(w)


@dataclass(frozen=True)
class Arrays:
    """A dataset's official train and test sets as numpy arrays, as a format loader returns them.

    Validation carving, resizing and grayscale conversion happen after this, in one place, so
    each format loader only has to parse its files.
    """

    train_images: np.ndarray  # uint8 [N, C, H, W]
    train_labels: np.ndarray  # int64 [N]
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]
    train_factors: np.ndarray | None = None  # int64 [N, F]
    test_factors: np.ndarray | None = None
    factor_names: tuple[str, ...] = ()
