"""What one metric of ``repvae evaluate`` is: how it is computed on a run, the JSON it writes,
the headline numbers reports and ``compare`` read from that JSON, and the lines the command
prints. Each metric module declares its ``METRIC`` beside its maths, so the layout of its
``evaluation/<metric>.json`` is known in that one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from repvae.data import ImageData
from repvae.evaluate.boosting import DCI_BACKEND
from repvae.models import Posterior
from repvae.represent import encode
from repvae.run import Run

Result = dict[str, Any]


@dataclass
class Settings:
    """What each metric computes; the defaults are the documented protocols."""

    kinds: list[str] = field(default_factory=lambda: ["map", "sample"])
    probes: list[str] = field(default_factory=lambda: ["linear", "logistic", "mlp", "knn"])
    protocol: str = "split"
    folds: int = 5
    probe_subset: int | None = None  # training images for probes (None: all)
    label_sizes: list[int | None] = field(default_factory=lambda: [10, 100, 1000, 10000, None])
    label_draws: int = 5
    label_probe: str = "logistic"
    iw_samples: int = 1000
    # test images for the bounds (None: all); 500 x K=1000 decodes keep it to minutes on a CPU
    likelihood_images: int | None = 500
    fid_samples: int = 10_000
    disentanglement_fast: bool = False
    # DCI's trees: "lightgbm" (fast) or "sklearn" (disentanglement_lib's); see disentanglement.dci
    dci_backend: str = DCI_BACKEND
    scatter_methods: list[str] = field(default_factory=lambda: ["pca", "tsne", "umap"])
    seed: int = 0


@dataclass
class Context:
    """What several metrics share: the run, its data, and the posterior of the chosen split."""

    run: Run
    data: ImageData
    split: str
    out: Path
    settings: Settings
    _posteriors: dict[str, Posterior] = field(default_factory=dict)

    def posterior(self, split: str | None = None) -> Posterior:
        split = split or self.split
        if split not in self._posteriors:
            data = getattr(self.data, split)
            self._posteriors[split] = encode(self.run.model, data.images, labels=data.labels)
        return self._posteriors[split]

    def images(self, split: str | None = None) -> torch.Tensor:
        return getattr(self.data, split or self.split).images


def skipped(reason: str) -> Result:
    """The result of a metric that does not apply to this run, with the reason."""
    return {"skipped": reason}


def no_headline(result: Result) -> dict[str, float]:
    return {}


def no_summary(result: Result) -> list[str]:
    return []


def values_at(paths: dict[str, tuple[str, ...]]) -> Callable[[Result], dict[str, float]]:
    """Headline values read at fixed key paths. A value that is absent (written by an older
    version) or undefined (bits/dim of a continuous likelihood, Inception FID without weights)
    is left out."""

    def read(result: Result) -> dict[str, float]:
        values: dict[str, float] = {}
        for name, keys in paths.items():
            value: Any = result
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                values[name] = value
        return values

    return read


@dataclass(frozen=True)
class Metric:
    """One metric of ``repvae evaluate``.

    ``compute`` returns the JSON written to ``evaluation/<name>.json`` (or ``skipped(reason)``);
    ``headline`` reads its scalar headline numbers (study rows, ``repvae compare``); ``summary``
    gives the lines the command prints.
    """

    name: str
    compute: Callable[[Context], Result]
    headline: Callable[[Result], dict[str, float]] = no_headline
    summary: Callable[[Result], list[str]] = no_summary
