"""The contract every model family provides, and the registry families join.

Training, representations, evaluation and reports talk to a model only through ``Model``'s
methods and its ``capabilities``; they never ask which family it is. A family is one module:
a ``Section`` of settings, a ``Model`` subclass, its presets, and one ``register_family`` call;
``repvae.models`` imports the module, which is the only line a new family adds elsewhere.

A capability a family lacks comes with its reason (``Capabilities.why_not``), which is what a
skipped metric or a refused representation says to the user.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar, cast

import torch
from torch import nn

from repvae.config import FAMILIES, PRESETS, ModelConfig, Preset, Section
from repvae.models.distributions import Posterior, standard_normal_log_prob

T = TypeVar("T")

STYLE_NOTE = (
    "the encoder q(z|x,y) reads each image's label, so z is the label-free style code: a label "
    "probe on it measures how much of the class leaks into the style, not a fair "
    "representation score"
)


class Unsupported(ValueError):
    """A model was asked for something its family cannot do; the message says why."""


@dataclass
class LossTerms:
    """The scalar loss to optimise and the batch-averaged terms to log (per prefix when nested)."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]


@dataclass(frozen=True)
class Capabilities:
    """What a model can do. Each flag is a question the pipeline asks instead of the family's
    name; ``unsupported`` says why for the flags that are off (shown to the user)."""

    # q(z|x) is a diagonal Gaussian density: sampled kinds (sample, samples:K), the [mu, sigma]
    # kind, the information metrics (KL, entropy) and KL-ranked traversals.
    continuous_posterior: bool = True
    # trained to make every prefix z[:m] in ``Model.prefixes`` stand alone (Matryoshka)
    nested: bool = False
    # p(z) is N(0, I) over the whole latent: the information metrics' KL to the prior
    standard_normal_prior: bool = True
    # has its own classifier q(y|x) (``Model.classify``)
    classifier: bool = False
    # p(x) is bounded through log p(x|z), the prior and q(z|x): ELBO and IWAE
    likelihood_bound: bool = True
    # trained on a labelled subset of the images (``train.labelled``) and the rest unlabelled
    needs_labels: bool = False
    # draws images from its prior (``Model.sample``)
    generates: bool = True
    # its decoder reads a class label: samples and reconstructions are per class
    conditional: bool = False
    # p(x|z) is autoregressive (a PixelCNN): generation goes pixel by pixel
    autoregressive: bool = False
    # fitted in closed form by ``Model.fit`` instead of by gradient steps
    closed_form: bool = False
    # q(z|x, y) reads the class label (``Model.encode_labelled``): representations are encoded
    # with each image's label, so the code is the label-free "style" and a label probe on it
    # measures what of the label leaks into the style, not how good the representation is
    label_encoder: bool = False
    # what a label probe on the code measures where that is not the representation's quality
    # (e.g. ``STYLE_NOTE`` for a code kept apart from the class); probes and reports repeat it
    code_note: str = ""
    # images are this many modalities stacked along the channels (``Model.encode_subset``)
    modalities: int = 1
    # the family's own representation kinds beyond map/sample/samples:K/dist, name -> what it
    # is; each is the field of that name of the family's posterior, [B, F] per batch
    kinds: Mapping[str, str] = field(default_factory=dict)
    unsupported: Mapping[str, str] = field(default_factory=dict)

    def why_not(self, capability: str) -> str:
        """The reason a capability that is off is off (for skip and error messages)."""
        return self.unsupported.get(capability, f"this model has no {capability.replace('_', ' ')}")


class Model(nn.Module, ABC):
    """What every family provides. Images are uint8 (or floats in [0, 1]) ``[B, C, H, W]``."""

    def __init__(self, config: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.config = config
        c, h, w = shape
        self.shape = (c, h, w)
        self.latent_dim = config.latent_dim
        self.num_classes = num_classes

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities: ...

    @property
    def family(self) -> str:
        return self.config.family

    @property
    def representation_dim(self) -> int:
        """Numbers in the ``map`` representation of one image (the latent size unless a family
        encodes to something larger, e.g. a VQ-VAE's code map)."""
        return self.latent_dim

    @property
    def prefixes(self) -> list[int]:
        """The representation sizes the model was trained to use alone (just the full size
        unless nested); representations are cut to these."""
        return [self.representation_dim]

    def _prefix(self, prefix: int | None) -> int:
        """``prefix`` checked against the trained ones (None: the full latent)."""
        m = self.prefixes[-1] if prefix is None else prefix
        if m not in self.prefixes:
            raise Unsupported(f"no decoder for prefix {m}; trained prefixes: {self.prefixes}")
        return m

    def unsupported(self, capability: str) -> Unsupported:
        return Unsupported(f"the {self.family} family: {self.capabilities.why_not(capability)}")

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float in [0, 1]; float input is assumed to be in [0, 1] already."""
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x

    @abstractmethod
    def encode(self, x: torch.Tensor) -> Posterior:
        """q(z|x); ``encode(x).mean`` is the deterministic (MAP) representation."""

    def encode_subset(self, x: torch.Tensor, modalities: Sequence[int]) -> Posterior:
        """q(z | only the given modalities, 0-based) of multimodal images (``modalities`` > 1)."""
        raise Unsupported(f"the {self.family} family reads one modality")

    def encode_labelled(self, x: torch.Tensor, labels: torch.Tensor) -> Posterior:
        """q(z|x, y) with the images' known ``labels`` (families that are ``label_encoder``)."""
        raise self.unsupported("label_encoder")

    @abstractmethod
    def loss(
        self, x: torch.Tensor, beta_scale: float = 1.0, *, labels: torch.Tensor | None = None
    ) -> LossTerms:
        """The batch-averaged training loss. ``beta_scale`` is the KL warm-up factor;
        ``labels`` are class labels where the family reads them (-1: unknown)."""

    def validation_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> LossTerms:
        """The loss the best epoch is chosen by (the training loss unless a family says)."""
        return self.loss(x, labels=labels)

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, prefix: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reconstruction in [0, 1]: the posterior mean decoded (see ``generate``)."""
        return self.generate(self.encode(x).mean, prefix, generator)

    def generate(
        self,
        z: torch.Tensor,
        prefix: int | None = None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images in [0, 1] decoded from latents ``z`` (and ``labels`` for conditional models)."""
        raise self.unsupported("generates")

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        prefix: int | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images decoded from prior draws z ~ N(0, I)."""
        if not self.capabilities.generates:
            raise self.unsupported("generates")
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.generate(z, prefix, generator, labels)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of the family's own classifier q(y|x)."""
        raise self.unsupported("classifier")

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per row for images ``x`` in [0, 1] and full-size latents ``z``."""
        raise self.unsupported("likelihood_bound")

    def prior_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) summed over the latent (the standard normal unless a family says)."""
        return standard_normal_log_prob(z)

    @property
    def discrete_likelihood(self) -> bool:
        """Whether -log p(x|z) is a code length over the 256 pixel values (bits/dim comparable
        with the literature)."""
        return False

    def label_budget(self, labelled: int, total: int) -> None:
        """Told before training how many of the ``total`` training images carry labels
        (families that ``needs_labels``)."""

    def fit(self, images: torch.Tensor) -> dict[str, float]:
        """The closed-form fit (families that are ``closed_form``); returns what to log."""
        raise self.unsupported("closed_form")

    @torch.no_grad()
    def in_batches(
        self, images: torch.Tensor, fn: Callable[[torch.Tensor], T], batch: int = 1024
    ) -> list[T]:
        """``fn`` on ``images`` a batch at a time, on the model's device, in evaluation mode
        (the mode it was in is restored): for summaries over a whole training set."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        try:
            return [fn(images[i : i + batch].to(device)) for i in range(0, len(images), batch)]
        finally:
            self.train(was_training)

    def training_summary(self, images: torch.Tensor) -> dict[str, float]:
        """Numbers about the trained model on its training ``images`` that belong in the run's
        summary beside the loss (e.g. a codebook's usage); none unless a family says."""
        return {}


ModelBuilder = Callable[[ModelConfig, tuple[int, int, int], int], Model]


@dataclass(frozen=True)
class Family:
    """A registered family: its name (``model.family``), settings section (``model.<name>``),
    model builder, and presets."""

    name: str
    section: type[Section]
    build: ModelBuilder
    presets: tuple[Preset, ...] = ()
    help: str = ""
    # built from the registered networks (``model.architecture``); False for a fixed form
    uses_networks: bool = True


_SHARED_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}


def register_family(family: Family) -> Family:
    """Add a family and its presets to the registries (once, from the family's module)."""
    if family.name in _SHARED_FIELDS:
        raise ValueError(
            f"family name {family.name!r} is taken by the shared field model.{family.name}"
        )
    FAMILIES.add(family.name, family)
    for preset in family.presets:
        PRESETS.add(preset.name, preset)
    return family


def family_of(config: ModelConfig) -> Family:
    """The registered family ``config.family`` names."""
    return cast(Family, FAMILIES.get(config.family))


def build_model(config: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> Model:
    """The model of ``config.family``, for images of ``shape`` in ``num_classes`` classes."""
    return family_of(config).build(config, shape, num_classes)
