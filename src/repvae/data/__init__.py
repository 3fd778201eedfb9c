"""Datasets as uint8 tensors with fixed, seeded train/val/test splits.

`load_dataset("mnist")` returns an `ImageData`; every user-fixable data problem raises
`DatasetError` with a message saying which file, which folder and what to do.
"""

from .core import DatasetError, ImageData, Split
from .paths import data_root
from .registry import DATASETS, dataset_label, load_dataset

__all__ = [
    "DATASETS",
    "DatasetError",
    "ImageData",
    "Split",
    "data_root",
    "dataset_label",
    "load_dataset",
]
