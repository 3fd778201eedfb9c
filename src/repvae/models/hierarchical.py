"""A hierarchical VAE with top-down inference: the Ladder VAE (Sønderby, Raiko, Maaløe, Sønderby
and Winther, "Ladder Variational Autoencoders", 2016), the scheme NVAE later scaled.

Generative model, L stochastic layers (``model.hvae.layers``: sizes bottom to top):

    p(z_L) = N(0, I),  p(z_l | z_{l+1}) = N(mu_p, sigma_p) for l < L,  p(x | z_1, ..., z_L)

The decoder reads every layer, as in NVAE (whose decoder sees the whole top-down state); the
original LVAE decodes from z_1 alone, which at a fixed total latent size leaves the image a
bottleneck of z_1's size (measured: at latent 16 as [8, 8], a validation loss of 149.7 nats
against the VAE's 103.7, 5 epochs on MNIST; results/families-mnist16).

Inference shares the top-down path. A deterministic bottom-up pass gives each layer an estimate
N(mu_hat_l, sigma_hat_l); going down, each layer's posterior is the precision-weighted product
of that estimate and the layer's top-down prior (LVAE's merge):

    1/s_q^2 = 1/s_hat^2 + 1/s_p^2,   mu_q = s_q^2 (mu_hat / s_hat^2 + mu_p / s_p^2)

(the top layer's posterior is its bottom-up estimate). The loss is the negative ELBO with one
KL per layer, each in closed form between two Gaussians given the upper layer's draw:

    -E_q log p(x|z) + KL(q(z_L|x) || N(0, I)) + sum_{l<L} KL(q(z_l|x,z_{l+1}) || p(z_l|z_{l+1}))

Upper layers tend to collapse (their KL falls to 0 and they carry nothing), because the lower
layers and the decoder can explain x alone. Two counter-measures: the KL warm-up of every family
(``train.warmup_epochs``, applied to every layer) and free bits (Kingma et al. 2016):
``model.hvae.free_bits`` nats per latent unit, per layer, below which a layer's batch-mean KL
per unit is not penalised. Each layer's KL is logged (``kl_layer1`` ... ``kl_layerL``, raw,
before free bits); after training the run's summary holds each layer's KL per unit on the
training images and the number of layers below ``model.hvae.collapse_threshold`` nats per unit,
which training warns about.

Representations: ``map`` is every layer's posterior mean, bottom to top, from one deterministic
top-down pass (each layer's posterior at the upper layers' means); ``layer1`` ... ``layerL``
(``--layer N``) are single layers. Drawn kinds (``sample``, ``samples:K``, ``dist``) use each
layer's posterior from that same pass: the conditional structure shapes the means and stds, but
draws are taken independently per layer.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from repvae.config import NO_HEAD, ModelConfig, Preset, Section
from repvae.config.errors import require
from repvae.models.contract import Capabilities, Family, LossTerms, Model, register_family
from repvae.models.distributions import DiagonalGaussian
from repvae.models.likelihoods import build_likelihood
from repvae.models.networks import architecture
from repvae.models.vae import MIN_STD


class LayerCollapseWarning(UserWarning):
    """A stochastic layer ended training carrying (almost) no information about x."""


@dataclass
class HierarchicalSection(Section):
    """``model.hvae``: the stochastic layers and the counter-measures against their collapse."""

    # latent sizes bottom (z_1, read by the decoder) to top; null: two halves of latent_dim
    layers: list[int] | None = None
    # nats per latent unit, per layer, of KL that is free (0: the plain ELBO)
    free_bits: float = 0.0
    # a layer whose KL per unit on the training images ends below this has collapsed
    collapse_threshold: float = 0.01

    def check(self, model: ModelConfig) -> None:
        layers = self.resolved(model.latent_dim)
        require("model.hvae.layers", len(layers) >= 2, "needs two or more stochastic layers")
        require("model.hvae.layers", all(n >= 1 for n in layers), "sizes must be >= 1")
        require(
            "model.hvae.layers",
            sum(layers) == model.latent_dim,
            f"sizes must add up to model.latent_dim={model.latent_dim} (the map representation)",
        )
        require("model.hvae.free_bits", self.free_bits >= 0, "must be >= 0")
        require("model.hvae.collapse_threshold", self.collapse_threshold >= 0, "must be >= 0")
        require(
            "model.head.kind", model.head.kind == NO_HEAD, "the hvae family has no PixelCNN head"
        )

    def resolved(self, latent_dim: int) -> list[int]:
        """The layer sizes, bottom to top."""
        if self.layers is not None:
            return list(self.layers)
        return [latent_dim - latent_dim // 2, latent_dim // 2]


def gaussian_kl(q: DiagonalGaussian, p: DiagonalGaussian) -> torch.Tensor:
    """KL(q || p) per dimension for two diagonal Gaussians."""
    ratio = (q.std / p.std).square()
    return 0.5 * (ratio + ((q.mean - p.mean) / p.std).square() - 1.0 - torch.log(ratio))


def precision_weighted(estimate: DiagonalGaussian, prior: DiagonalGaussian) -> DiagonalGaussian:
    """LVAE's merge of a bottom-up estimate with the top-down prior (a product of Gaussians)."""
    precision_q, precision_p = estimate.std.pow(-2), prior.std.pow(-2)
    variance = 1.0 / (precision_q + precision_p)
    mean = variance * (estimate.mean * precision_q + prior.mean * precision_p)
    return DiagonalGaussian(mean, variance.sqrt())


def _gaussian_head(features: int, size: int) -> nn.Linear:
    """Features -> (mean, raw std) of a diagonal Gaussian of ``size`` units."""
    return nn.Linear(features, 2 * size)


def _as_gaussian(head: torch.Tensor) -> DiagonalGaussian:
    mean, raw_std = head.float().chunk(2, dim=-1)  # fp32 under bf16 autocast
    return DiagonalGaussian(mean, F.softplus(raw_std) + MIN_STD)


def _mlp(inputs: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())


@functools.cache
def ladder_posterior(sizes: tuple[int, ...]) -> type[DiagonalGaussian]:
    """The posterior type of a ladder with layers of ``sizes``: every layer's posterior from the
    deterministic top-down pass, concatenated bottom to top (a diagonal Gaussian), whose
    ``layer1`` ... ``layerL`` attributes are the layers' means (the family's kinds). The sizes
    live on the type, so that its fields stay the batch-first tensors ``cat_posteriors`` and
    ``map_posterior`` handle."""

    class LadderPosterior(DiagonalGaussian):
        def __getattr__(self, name: str) -> torch.Tensor:
            index = int(name[5:]) if name.startswith("layer") and name[5:].isdigit() else 0
            if not 1 <= index <= len(sizes):
                raise AttributeError(name)
            start = sum(sizes[: index - 1])
            return self.mean[..., start : start + sizes[index - 1]]

    return LadderPosterior


def layer_kinds(n_layers: int) -> dict[str, str]:
    """The family's own representation kinds, one per layer."""
    kinds = {
        f"layer{i}": f"the posterior mean of stochastic layer {i}" for i in range(1, n_layers + 1)
    }
    kinds["layer1"] += " (bottom)"
    kinds[f"layer{n_layers}"] += " (top)"
    return kinds


class HierarchicalVAE(Model):
    def __init__(self, config: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(config, shape, num_classes)
        self.options = cast(HierarchicalSection, config.options)
        self.sizes = self.options.resolved(self.latent_dim)
        hidden = config.hidden
        arch = architecture(config.architecture, self.shape)
        self.likelihood = build_likelihood(config, self.shape[0])
        # bottom-up: the image network, then one MLP per layer above the first
        self.encoder = arch.encoder(self.shape, hidden, hidden)
        self.up = nn.ModuleList(_mlp(hidden, hidden) for _ in self.sizes[1:])
        self.estimates = nn.ModuleList(_gaussian_head(hidden, n) for n in self.sizes)
        # top-down: p(z_l | z_{l+1}) for every layer below the top
        self.priors = nn.ModuleList(
            nn.Sequential(_mlp(upper, hidden), _gaussian_head(hidden, lower))
            for lower, upper in zip(self.sizes[:-1], self.sizes[1:], strict=True)
        )
        out = self.likelihood.out_channels(self.shape[0])
        self.decoder = arch.decoder(self.latent_dim, self.shape, out, hidden)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            likelihood_bound=False,
            standard_normal_prior=False,
            kinds=layer_kinds(len(self.sizes)),
            unsupported={
                "standard_normal_prior": "only the top layer's prior is N(0, I); the lower "
                "layers' priors are top-down, so a KL of their posteriors to N(0, I) means "
                "nothing (the training summary has each layer's KL to its own prior)",
                "likelihood_bound": "the ELBO and IWAE bounds here assume one N(0, I) prior "
                "over the whole latent; a ladder's lower layers have top-down priors",
            },
        )

    @property
    def discrete_likelihood(self) -> bool:
        return self.likelihood.discrete

    def _bottom_up(self, x: torch.Tensor) -> list[DiagonalGaussian]:
        """Each layer's bottom-up estimate, bottom to top."""
        h = self.encoder(self.preprocess(x))
        features = [h]
        for block in self.up:
            h = block(h)
            features.append(h)
        return [_as_gaussian(head(f)) for head, f in zip(self.estimates, features, strict=True)]

    def _prior(self, index: int, upper: torch.Tensor) -> DiagonalGaussian:
        """p(z_index | z_index+1) for a 0-based layer index below the top."""
        return _as_gaussian(self.priors[index](upper))

    def _top_down(
        self, estimates: list[DiagonalGaussian], draw: bool
    ) -> tuple[list[torch.Tensor], list[DiagonalGaussian], list[torch.Tensor]]:
        """Posteriors from the top down; each layer conditioned on the upper layer's draw (or,
        without ``draw``, its mean). Returns the z's, the posteriors and each layer's KL per
        unit [B, size], all bottom to top."""
        top = estimates[-1]
        z = top.rsample() if draw else top.mean
        zs, posteriors, kls = [z], [top], [top.kl_standard_normal()]
        for index in range(len(self.sizes) - 2, -1, -1):
            prior = self._prior(index, z)
            posterior = precision_weighted(estimates[index], prior)
            z = posterior.rsample() if draw else posterior.mean
            zs.insert(0, z)
            posteriors.insert(0, posterior)
            kls.insert(0, gaussian_kl(posterior, prior))
        return zs, posteriors, kls

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        _, posteriors, _ = self._top_down(self._bottom_up(x), draw=False)
        return ladder_posterior(tuple(self.sizes))(
            torch.cat([p.mean for p in posteriors], -1),
            torch.cat([p.std for p in posteriors], -1),
        )

    def layer_kl(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's KL per unit [B, size] with one posterior draw (bottom to top)."""
        return self._top_down(self._bottom_up(x), draw=True)[2]

    def _negative_elbo(self, x: torch.Tensor, kl_weight: float, free_bits: float) -> LossTerms:
        """-E_q log p(x|z) + kl_weight * sum of the layers' KL, each unit's batch-mean KL
        counted as at least ``free_bits``; the terms log each layer's raw KL."""
        target = self.preprocess(x)
        zs, _, kls = self._top_down(self._bottom_up(target), draw=True)
        recon = -self.likelihood.log_prob(self.decoder(torch.cat(zs, -1)).float(), target).mean()
        per_unit = [kl.mean(0) for kl in kls]  # the batch mean of each unit's KL
        raw = torch.stack([k.sum() for k in per_unit])
        penalised = sum(k.clamp(min=free_bits).sum() for k in per_unit) if free_bits else raw.sum()
        terms = {"recon": recon.detach(), "kl": raw.sum().detach()}
        terms |= {f"kl_layer{i}": k.detach() for i, k in enumerate(raw, start=1)}
        return LossTerms(recon + kl_weight * penalised, terms)

    def loss(
        self, x: torch.Tensor, beta_scale: float = 1.0, *, labels: torch.Tensor | None = None
    ) -> LossTerms:
        """The negative ELBO with free bits (when set) and the KL warm-up on every layer;
        labels are not read."""
        return self._negative_elbo(x, self.config.beta * beta_scale, self.options.free_bits)

    def validation_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> LossTerms:
        """The negative ELBO without free bits: what the best epoch should minimise."""
        return self._negative_elbo(x, self.config.beta, 0.0)

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        prefix: int | None = None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean images of p(x | z) for concatenated latents (bottom layer first)."""
        self._prefix(prefix)
        return self.likelihood.mean(self.decoder(z).float())

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        prefix: int | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Ancestral draws from the top: z_L ~ N(0, I), z_l ~ p(z_l | z_{l+1}), then the mean
        of p(x | z_1, ..., z_L)."""
        device = next(self.parameters()).device
        zs = [torch.randn(n, self.sizes[-1], generator=generator, device=device)]
        for index in range(len(self.sizes) - 2, -1, -1):
            prior = self._prior(index, zs[0])
            eps = torch.randn(prior.mean.shape, generator=generator, device=device)
            zs.insert(0, prior.mean + prior.std * eps)
        return self.generate(torch.cat(zs, -1), prefix, generator)

    @torch.no_grad()
    def training_summary(self, images: torch.Tensor) -> dict[str, float]:
        """Each layer's KL per unit and its inactive units (mean KL under the collapse
        threshold: a layer's mean can hide dead units behind one busy one) on the training
        images; warns about collapsed layers."""
        batches = self.in_batches(images, lambda x: [kl.sum(0) for kl in self.layer_kl(x)])
        units = [torch.stack(layer).sum(0) / len(images) for layer in zip(*batches, strict=True)]
        per_unit = [float(u.mean()) for u in units]
        threshold = self.options.collapse_threshold
        inactive = [int((u < threshold).sum()) for u in units]
        collapsed = collapsed_layers(per_unit, threshold)
        if collapsed:
            warnings.warn(
                f"stochastic layer(s) {collapsed} collapsed: KL per unit below "
                f"{threshold} nats on the training images "
                f"({', '.join(f'{k:.4f}' for k in per_unit)}, bottom to top; inactive units "
                f"{', '.join(f'{i}/{n}' for i, n in zip(inactive, self.sizes, strict=True))}); "
                "try model.hvae.free_bits or a longer train.warmup_epochs",
                LayerCollapseWarning,
                stacklevel=3,  # training's call, past torch.no_grad's wrapper
            )
        summary: dict[str, float] = {f"kl_per_unit_layer{i}": k for i, k in enumerate(per_unit, 1)}
        summary |= {f"inactive_units_layer{i}": n for i, n in enumerate(inactive, 1)}
        summary["collapsed_layers"] = len(collapsed)
        return summary


def collapsed_layers(kl_per_unit: Sequence[float], threshold: float) -> list[int]:
    """The (1-based) layers whose KL per unit is below ``threshold``."""
    return [i for i, k in enumerate(kl_per_unit, start=1) if k < threshold]


def _hvae(latent_dim: int) -> dict[str, Any]:
    return {"model.family": "hvae", "model.hvae.free_bits": 0.0}


def _hvae_free_bits(latent_dim: int) -> dict[str, Any]:
    return {"model.family": "hvae", "model.hvae.free_bits": 0.1}


FAMILY = register_family(
    Family(
        name="hvae",
        section=HierarchicalSection,
        build=HierarchicalVAE,
        help="hierarchical (Ladder) VAE: top-down inference, per-layer KL, free bits",
        presets=(
            Preset("hvae", "hvae", _hvae, help="Ladder VAE, two stochastic layers"),
            Preset(
                "hvae-free-bits",
                "hvae",
                _hvae_free_bits,
                help="Ladder VAE with 0.1 free nats per unit against layer collapse",
            ),
        ),
    )
)
