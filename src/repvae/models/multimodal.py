"""Multimodal VAEs over paired modalities: one encoder ("expert") and one decoder per modality,
one shared latent z ~ N(0, I), and three ways to fuse the experts into q(z | a subset of the
modalities) (``model.multimodal.fusion``):

- ``poe``, product of experts (MVAE, Wu and Goodman 2018): q(z|X_S) ∝ p(z) prod_{m in S} q_m(z|x_m),
  a Gaussian in closed form (precisions add; the prior is an expert). Loss: the joint ELBO plus
  every unimodal ELBO, MVAE's sub-sampled objective with the single-modality subsets.
- ``moe``, mixture of experts (MMVAE, Shi et al. 2019): q(z|X_S) = mean_{m in S} q_m(z|x_m).
  Loss: the stratified ELBO (its plain version, not the DReG/IWAE estimator of the paper):
  for every m, z_m ~ q_m, all modalities reconstructed from z_m, and the mixture's KL estimated
  as log q(z_m|X) - log p(z_m); averaged over m.
- ``mopoe``, mixture of products of experts (Sutter et al. 2021): q(z|X) is the uniform mixture
  over the 2^M - 1 non-empty subsets S of the PoE q(z|X_S) (each with the prior expert). Loss:
  each image's z drawn from one subset chosen uniformly, all modalities reconstructed, and the
  mixture's KL bounded by the mean of the subsets' closed-form KLs, as the MoPoE code does.

Data are multimodal when images carry M modalities stacked along the channels
(``model.multimodal.modality_channels`` each; e.g. PolyMNIST: ``[N, 3 M, 28, 28]``); M is read
from the image shape. Representations: ``map`` is the mean of q(z|X) (for the mixtures the
mixture's mean; ``sample`` draws from the mixture, ``dist`` is its mean and std),
``m1`` ... ``mM`` the mean of q(z | that modality alone). ``generate`` decodes all modalities
from z; ``encode_subset`` with one modality, then ``generate``, is cross-generation.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from repvae.config import NO_HEAD, ModelConfig, Preset, Section
from repvae.config.errors import choice, require
from repvae.models.contract import Capabilities, Family, LossTerms, Model, register_family
from repvae.models.distributions import DiagonalGaussian, standard_normal_log_prob
from repvae.models.likelihoods import build_likelihood
from repvae.models.networks import architecture
from repvae.models.vae import MIN_STD

FUSIONS = ("poe", "moe", "mopoe")


@dataclass
class MultimodalSection(Section):
    """``model.multimodal``: how the experts are fused, and the channels of one modality."""

    fusion: str = "mopoe"
    modality_channels: int = 3

    described_fields = ("fusion",)

    def check(self, model: ModelConfig) -> None:
        choice("model.multimodal.fusion", self.fusion, FUSIONS)
        require("model.multimodal.modality_channels", self.modality_channels >= 1, "must be >= 1")
        require(
            "model.head.kind",
            model.head.kind == NO_HEAD,
            "the multimodal family decodes each modality with its plain decoder",
        )

    def describe(self) -> str:
        return f" ({self.fusion.upper()})"


def product_of_experts(experts: Sequence[DiagonalGaussian]) -> DiagonalGaussian:
    """The normalised product of Gaussian experts and the N(0, I) prior expert: precisions add,
    the mean is the precision-weighted mean."""
    first = experts[0]
    precision = torch.ones_like(first.mean)  # the prior's
    weighted = torch.zeros_like(first.mean)
    for expert in experts:
        p = expert.std.pow(-2)
        precision = precision + p
        weighted = weighted + expert.mean * p
    return DiagonalGaussian(weighted / precision, precision.rsqrt())


@dataclass(frozen=True)
class GaussianMixture(DiagonalGaussian):
    """The uniform mixture of K diagonal Gaussians ``components_mean``/``components_std``
    [B, K, D]. ``mean`` and ``std`` are the mixture's first two moments (the ``map`` and
    ``dist`` kinds: one vector per image); ``rsample`` draws from the mixture itself, so the
    ``sample`` kinds of MoE and MoPoE are posterior samples, not draws from a moment-matched
    Gaussian that puts mass between the components."""

    components_mean: torch.Tensor
    components_std: torch.Tensor

    @classmethod
    def of(cls, components: Sequence[DiagonalGaussian]) -> GaussianMixture:
        means = torch.stack([c.mean for c in components], 1)
        stds = torch.stack([c.std for c in components], 1)
        mean = means.mean(1)
        variance = (stds.square() + means.square()).mean(1) - mean.square()
        return cls(mean, variance.clamp_min(MIN_STD**2).sqrt(), means, stds)

    def rsample(
        self, k: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw(s) [B, D] (or [B, k, D]): a uniformly chosen component per draw, then its
        reparameterised Gaussian draw."""
        b, n, d = self.components_mean.shape
        draws = 1 if k is None else k
        pick = torch.randint(n, (b, draws), generator=generator, device=self.mean.device)
        index = pick.unsqueeze(-1).expand(b, draws, d)
        chosen = DiagonalGaussian(
            self.components_mean.gather(1, index).flatten(0, 1),
            self.components_std.gather(1, index).flatten(0, 1),
        )
        z = chosen.rsample(generator=generator).view(b, draws, d)
        return z[:, 0] if k is None else z

    def prefix(self, m: int) -> GaussianMixture:
        """The first ``m`` coordinates: the mixture of the components' marginals (exact)."""
        return GaussianMixture(
            self.mean[..., :m],
            self.std[..., :m],
            self.components_mean[..., :m],
            self.components_std[..., :m],
        )


def subsets(modalities: Sequence[int]) -> list[tuple[int, ...]]:
    """The non-empty subsets of ``modalities`` (MoPoE's mixture components, weighed equally)."""
    items = list(modalities)
    return [s for r in range(1, len(items) + 1) for s in itertools.combinations(items, r)]


def mixture_log_prob(components: Sequence[DiagonalGaussian], z: torch.Tensor) -> torch.Tensor:
    """log of the uniform mixture's density at ``z`` [B, D], per row."""
    logs = torch.stack([c.log_prob(z) for c in components])  # [K, B]
    return torch.logsumexp(logs, 0) - math.log(len(components))


def standard_normal_kl(q: DiagonalGaussian) -> torch.Tensor:
    """KL(q || N(0, I)) per row."""
    return q.kl_standard_normal().sum(-1)


class MultimodalVAE(Model):
    def __init__(self, config: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(config, shape, num_classes)
        self.options = cast(MultimodalSection, config.options)
        c = self.options.modality_channels
        channels, h, w = self.shape
        if channels % c or channels // c < 2:
            raise ValueError(
                f"model.multimodal.modality_channels: images with {channels} channels are not "
                f"two or more modalities of {c} channels (use a multimodal data set such as "
                "polymnist)"
            )
        self.modality_shape = (c, h, w)
        self.n_modalities = channels // c
        arch = architecture(config.architecture, self.modality_shape)
        self.likelihood = build_likelihood(config, c)
        out = self.likelihood.out_channels(c)
        m, hidden = self.n_modalities, config.hidden
        self.encoders = nn.ModuleList(
            arch.encoder(self.modality_shape, 2 * self.latent_dim, hidden) for _ in range(m)
        )
        self.decoders = nn.ModuleList(
            arch.decoder(self.latent_dim, self.modality_shape, out, hidden) for _ in range(m)
        )

    @property
    def capabilities(self) -> Capabilities:
        kinds = {
            f"m{i + 1}": f"mean of q(z | modality {i + 1} alone)" for i in range(self.n_modalities)
        }
        return Capabilities(modalities=self.n_modalities, kinds=kinds)

    @property
    def modality_names(self) -> range:
        """Modalities as users number them (1-based: kinds m1, m2, ...)."""
        return range(1, self.n_modalities + 1)

    @property
    def discrete_likelihood(self) -> bool:
        return self.likelihood.discrete

    def _modality(self, x: torch.Tensor, m: int) -> torch.Tensor:
        c = self.modality_shape[0]
        return x[:, m * c : (m + 1) * c]

    def experts(self, x: torch.Tensor) -> list[DiagonalGaussian]:
        """q_m(z | x_m) for every modality."""
        x = self.preprocess(x)
        out = []
        for m, encoder in enumerate(self.encoders):
            mean, raw_std = encoder(self._modality(x, m)).float().chunk(2, dim=1)
            out.append(DiagonalGaussian(mean, nn.functional.softplus(raw_std) + MIN_STD))
        return out

    def _fused(
        self, experts: list[DiagonalGaussian], subset: Sequence[int]
    ) -> list[DiagonalGaussian]:
        """q(z | X_subset) as its mixture components (one for PoE)."""
        chosen = [experts[m] for m in subset]
        if self.options.fusion == "poe":
            return [product_of_experts(chosen)]
        if self.options.fusion == "moe":
            return chosen
        return [product_of_experts([experts[m] for m in s]) for s in subsets(subset)]

    def encode_subset(self, x: torch.Tensor, modalities: Sequence[int]) -> GaussianMixture:
        """q(z | the given modalities only), 0-based."""
        return GaussianMixture.of(self._fused(self.experts(x), modalities))

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        experts = self.experts(x)
        joint = GaussianMixture.of(self._fused(experts, range(self.n_modalities)))
        return unimodal_posterior(self.n_modalities)(
            joint.mean,
            joint.std,
            joint.components_mean,
            joint.components_std,
            # one modality is one component under every fusion
            *(self._fused(experts, [m])[0].mean for m in range(self.n_modalities)),
        )

    def decode(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Each modality's likelihood parameters (fp32)."""
        return [decoder(z).float() for decoder in self.decoders]

    def _reconstruction(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-sum_m log p(x_m | z) per row; ``x`` in [0, 1]."""
        return -sum(
            self.likelihood.log_prob(params, self._modality(x, m))
            for m, params in enumerate(self.decode(z))
        )  # type: ignore[return-value]

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return -self._reconstruction(x, z)

    def loss(
        self, x: torch.Tensor, beta_scale: float = 1.0, *, labels: torch.Tensor | None = None
    ) -> LossTerms:
        """The fusion's objective (module docstring), batch-averaged; labels are not read."""
        target = self.preprocess(x)
        experts = self.experts(target)
        beta = self.config.beta * beta_scale
        everything = list(range(self.n_modalities))
        recon, kl = [], []  # one term per subset (poe), expert (moe), or the one draw (mopoe)
        if self.options.fusion == "poe":
            for subset in [everything, *([m] for m in everything)]:
                q = product_of_experts([experts[m] for m in subset])
                recon.append(self._reconstruction(target, q.rsample()).mean())
                kl.append(standard_normal_kl(q).mean())
            r, k = torch.stack(recon).sum(), torch.stack(kl).sum()
        elif self.options.fusion == "moe":
            for expert in experts:
                z = expert.rsample()
                recon.append(self._reconstruction(target, z).mean())
                kl.append((mixture_log_prob(experts, z) - standard_normal_log_prob(z)).mean())
            r, k = torch.stack(recon).mean(), torch.stack(kl).mean()
        else:
            components = self._fused(experts, everything)
            r = self._reconstruction(target, GaussianMixture.of(components).rsample()).mean()
            k = torch.stack([standard_normal_kl(c).mean() for c in components]).mean()
        return LossTerms(r + beta * k, {"recon": r.detach(), "kl": k.detach()})

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        prefix: int | None = None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Every modality's mean image from z, stacked along the channels."""
        self._prefix(prefix)
        return torch.cat([self.likelihood.mean(p) for p in self.decode(z)], 1)


def unimodal_posterior(n_modalities: int) -> type[GaussianMixture]:
    """The joint posterior type (a mixture) with each modality's unimodal mean as a field
    ``m1`` ... (the family's kinds): fields of batch-first tensors, as ``cat_posteriors``
    needs."""
    return _POSTERIOR_TYPES.setdefault(
        n_modalities,
        dataclasses.make_dataclass(
            f"MultimodalPosterior{n_modalities}",
            [(f"m{i + 1}", torch.Tensor) for i in range(n_modalities)],
            bases=(GaussianMixture,),
            frozen=True,
        ),
    )


_POSTERIOR_TYPES: dict[int, type[GaussianMixture]] = {}


def _preset(fusion: str) -> Any:
    return lambda latent_dim: {"model.family": "multimodal", "model.multimodal.fusion": fusion}


FAMILY = register_family(
    Family(
        name="multimodal",
        section=MultimodalSection,
        build=MultimodalVAE,
        help="multimodal VAE, modalities stacked along the channels (PolyMNIST): PoE/MoE/MoPoE",
        presets=(
            Preset("mmvae", "multimodal", _preset("moe"), help="mixture of experts (Shi et al.)"),
            Preset(
                "mvae-poe", "multimodal", _preset("poe"), help="product of experts (Wu & Goodman)"
            ),
            Preset(
                "mopoe", "multimodal", _preset("mopoe"), help="mixture of products (Sutter et al.)"
            ),
        ),
    )
)
