"""The sections of a run's configuration and their checks.

``ModelConfig`` holds what every model family shares (latent size, networks, likelihood, the
KL weight, an optional PixelCNN decoder head); each family owns one more section of its own,
``model.<family>`` (e.g. ``model.vae.nesting``), declared in the family's module as a ``Section``
subclass and registered in ``FAMILIES``. The option names (families, likelihoods, architectures,
heads) come from the registries, so every check below reads the same list the code builds from.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from repvae.config.errors import choice, fail, finite, require
from repvae.config.registry import Registry
from repvae.data import DATASETS, ImageData, load_dataset


class Section:
    """Base of a family's own settings (a dataclass in the family's module).

    ``check`` validates them against the shared model settings and raises ``ConfigError``
    naming ``model.<family>.<field>``; ``describe`` is the short note a study adds to the
    method's label (e.g. " (shared decoder)"), naming the fields it covers in
    ``described_fields`` so that the label does not repeat them.
    """

    described_fields: tuple[str, ...] = ()

    def check(self, model: ModelConfig) -> None:
        """Raise ``ConfigError`` for invalid values; the default accepts everything."""

    def describe(self) -> str:
        return ""


class FamilyEntry(Protocol):
    """What the config layer needs of a registered family (``repvae.models`` defines it)."""

    @property
    def name(self) -> str: ...

    @property
    def section(self) -> type[Section]: ...


class LikelihoodEntry(Protocol):
    """What the config layer needs of a registered likelihood."""

    @property
    def discrete(self) -> bool: ...


@dataclass(frozen=True)
class Preset:
    """A named handful of settings for ``--model`` and study grids (not a class).

    ``overrides(latent_dim)`` returns dotted ``section.field`` values; ``replaces`` names the
    separately trained preset a nested preset stands in for (for training-cost comparisons).
    """

    name: str
    family: str
    overrides: Callable[[int], dict[str, Any]]
    replaces: str = ""
    help: str = ""


FAMILIES: Registry[FamilyEntry] = Registry("model.family", "model family")
LIKELIHOODS: Registry[LikelihoodEntry] = Registry("model.likelihood", "likelihood")
ARCHITECTURES: Registry[Any] = Registry("model.architecture", "architecture")
HEADS: Registry[Any] = Registry("model.head.kind", "PixelCNN decoder head")
PRESETS: Registry[Preset] = Registry("--model", "model preset")

# Values that are not registered options: chosen by the image shape, or no head at all.
AUTO_ARCHITECTURE = "auto"
NO_HEAD = "none"
DEVICES = ("auto", "cpu", "cuda", "gpu", "mps")
SCHEDULES = ("constant", "cosine")
LOGGERS = ("csv", "tensorboard", "none")
# "auto": bf16 mixed precision where the CPU or GPU computes bfloat16 natively, fp32 elsewhere;
# the rest are Lightning's settings that need no extra package (transformer-engine does)
PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true")


@dataclass
class DataConfig:
    name: str = "digits"
    root: str | None = None
    val_size: float = 0.1
    image_size: int | None = None
    grayscale: bool = False
    seed: int = 0

    def load(self) -> ImageData:
        """The dataset this section describes, splits included."""
        return load_dataset(
            self.name,
            self.root,
            val_size=self.val_size,
            seed=self.seed,
            image_size=self.image_size,
            grayscale=self.grayscale,
        )

    def check(self) -> None:
        if self.name not in DATASETS and not self.name.startswith("folder:"):
            fail(
                "data.name", f"unknown dataset {self.name!r}; choose from {DATASETS} or folder:PATH"
            )
        require("data.val_size", self.val_size > 0, "must be > 0 (a fraction < 1 or a count)")
        require("data.image_size", self.image_size is None or self.image_size >= 4, "must be >= 4")


@dataclass
class HeadConfig:
    """A PixelCNN head on the decoder's feature maps (Zhang et al.'s PixelVAE decoders).

    ``local`` sees the causal pixels within ``horizon`` (0: conditionally independent), ``full``
    stacks ``layers`` masked convs; ``features`` maps come from the decoder and ``channels`` is
    the head's width (the paper: 128).
    """

    kind: str = NO_HEAD
    horizon: int = 1
    channels: int = 32
    layers: int = 15
    features: int = 16

    def check(self, likelihood: str) -> None:
        choice("model.head.kind", self.kind, (NO_HEAD, *HEADS.names()))
        require("model.head.horizon", self.horizon >= 0, "must be >= 0")
        for name in ("channels", "layers", "features"):
            require(f"model.head.{name}", getattr(self, name) >= 1, "must be >= 1")
        if self.kind != NO_HEAD and likelihood in LIKELIHOODS:
            eight_bit = tuple(n for n, e in LIKELIHOODS.items() if e.discrete)
            require(
                "model.likelihood",
                LIKELIHOODS.get(likelihood).discrete,
                f"a PixelCNN decoder head needs an 8-bit likelihood {eight_bit}",
            )


@dataclass
class ModelConfig:
    family: str = "vae"
    latent_dim: int = 16
    architecture: str = AUTO_ARCHITECTURE
    hidden: int = 256
    likelihood: str = "bernoulli"
    # Gaussian / Laplace likelihoods only: the fixed scale (std / Laplace b), or learned (one
    # scalar per channel).
    sigma: float = 0.1
    learn_sigma: bool = False
    # 8-bit likelihoods: components of the discretised logistic mixture (logistic_mixture).
    n_mix: int = 10
    # Weight of the KL term, for families that have one; beta = 1 is the true negative ELBO.
    beta: float = 1.0
    head: HeadConfig = field(default_factory=HeadConfig)
    # The family's own settings (``model.<family>``); None: that family's defaults.
    section: Section | None = None

    def __post_init__(self) -> None:
        if self.section is None and self.family in FAMILIES:
            self.section = FAMILIES.get(self.family).section()

    @property
    def options(self) -> Any:
        """The family's own settings, typed by the family that reads them."""
        if self.section is None:
            FAMILIES.get(self.family)  # raises: unknown family
        return self.section

    def check(self) -> None:
        entry = FAMILIES.get(self.family)
        require("model.latent_dim", self.latent_dim >= 1, "must be >= 1")
        choice("model.architecture", self.architecture, (AUTO_ARCHITECTURE, *ARCHITECTURES.names()))
        choice("model.likelihood", self.likelihood, LIKELIHOODS.names())
        require("model.hidden", self.hidden >= 1, "must be >= 1")
        require("model.sigma", self.sigma > 0, "must be > 0")
        require("model.n_mix", self.n_mix >= 1, "must be >= 1")
        require("model.beta", self.beta >= 0, "must be >= 0")
        self.head.check(self.likelihood)
        if not isinstance(self.section, entry.section):
            fail(f"model.{self.family}", f"expected the {self.family} family's settings")
        self.section.check(self)

    def to_dict(self) -> dict[str, Any]:
        shared = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("head", "section")
        }
        out: dict[str, Any] = {**shared, "head": dataclasses.asdict(self.head)}
        if self.section is not None and dataclasses.fields(self.section):  # type: ignore[arg-type]
            out[self.family] = dataclasses.asdict(self.section)  # type: ignore[call-overload]
        return out


@dataclass
class TrainConfig:
    """How a run trains. The speed defaults are measured choices (the figures are in
    results/speed-peers and results/precision-parity): ``precision: auto`` is bf16 mixed
    precision where the CPU or GPU has native bf16, fp32 elsewhere, because bf16 trains faster
    at the same validation loss and probe accuracy (over many seeds: one pair of runs differs
    as much by the CPU thread count alone). Batch 128 with a constant learning rate, because
    batch 256, a warm-up + cosine schedule and ``torch.compile`` did not pay for themselves on
    runs of a few minutes."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    patience: int = 5
    kl_warmup_steps: int = 0
    # learning rate over training: constant, or a linear warm-up over warmup_steps followed by
    # a cosine decay to zero at the last step (warm-up + cosine, per step)
    schedule: str = "constant"
    warmup_steps: int = 0
    max_steps: int = -1
    # stop after this much training wall time (Lightning's max_time), whatever the epochs
    max_minutes: float | None = None
    train_subset: int | None = None
    # Semi-supervised models: how many training labels they may see (class-balanced, seeded
    # by train.seed; null: all). The other training images are used without their labels.
    labelled: int | None = None
    precision: str = "auto"
    progress: bool = True
    logger: str = "csv"

    def check(self) -> None:
        require("train.labelled", self.labelled is None or self.labelled >= 1, "must be >= 1")
        require("train.epochs", self.epochs >= 1, "must be >= 1")
        require("train.batch_size", self.batch_size >= 1, "must be >= 1")
        require("train.lr", self.lr > 0, "must be > 0")
        require("train.weight_decay", self.weight_decay >= 0, "must be >= 0")
        require("train.patience", self.patience >= 1, "must be >= 1")
        require("train.kl_warmup_steps", self.kl_warmup_steps >= 0, "must be >= 0")
        require(
            "train.train_subset",
            self.train_subset is None or self.train_subset >= 1,
            "must be >= 1",
        )
        require("train.num_nodes", self.num_nodes >= 1, "must be >= 1")
        require(
            "train.max_minutes", self.max_minutes is None or self.max_minutes > 0, "must be > 0"
        )
        choice("train.device", self.device, DEVICES)
        choice("train.logger", self.logger, LOGGERS)
        choice("train.precision", self.precision, PRECISIONS)
        choice("train.schedule", self.schedule, SCHEDULES)
        require("train.warmup_steps", self.warmup_steps >= 0, "must be >= 0")


def check_finite(section: str, values: object) -> None:
    """Every float of a section (and of its nested sections) is finite."""
    if not dataclasses.is_dataclass(values):
        return
    for f in dataclasses.fields(values):
        if f.name == "section":  # a family's section is checked under its own name
            continue
        value = getattr(values, f.name)
        name = f"{section}.{f.name}"
        if isinstance(value, float):
            finite(name, value)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, float):
                    finite(f"{name}[{i}]", item)
        elif dataclasses.is_dataclass(value):
            check_finite(name, value)
