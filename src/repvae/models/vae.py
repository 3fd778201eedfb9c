"""The VAE family as one composition: encoder -> diagonal-Gaussian posterior -> prior N(0, I)
-> regulariser (KL and/or MMD) -> decoder(s) -> likelihood, with optional Matryoshka nesting.

One class covers VAE, beta-VAE, InfoVAE/MMD-VAE, Matryoshka (M)VAE and the PixelVAE decoders
because they differ only in loss weights, in which latent prefixes are decoded, and in the head
on the decoder:

    loss = sum_m w_m * ( -E_q log p(x | z[:m])
                         + beta * (1 - alpha) * KL(q(z[:m] | x) || N(0, I))
                         + (alpha + lam - 1) * MMD(q(z[:m]) || N(0, I)) )

With no nesting the only prefix is the full latent; beta=1, alpha=0, lam=1 is the true negative
ELBO. Each prefix has its own decoder (as in the reference project) unless ``shared_decoder``,
where one decoder reads the prefix zero-padded to full size. With a decoder head (PixelVAE)
each decoder produces feature maps and a PixelCNN head turns them and the image into likelihood
parameters.

Under bf16 mixed precision (``train.precision: auto`` on hardware with native bf16) the networks
run in bf16, but their outputs are cast to fp32 before the posterior, the likelihood, KL and MMD
are computed: autocast would otherwise leave those elementwise terms, and their sums over 784 or
3,072 pixels, in bf16 (8 bits of mantissa).

Presets (``--model``):

- ``vae``: the true ELBO (beta = 1). ``beta-vae``: set ``--beta``.
- ``infovae``: the MMD-VAE of the reference project: reconstruction + lam * MMD, no KL
  (alpha = 1), lam = 100. Measured on MNIST (10,000 images, 3 epochs, latent 16, MLP probe):
  lam = 1000 collapses the posterior (std 1.05, means spread 0.23: MAP 67.6 %, samples 25.7 %)
  because MMD is matched fastest by inflating every posterior's std; lam = 100 gives MAP 89.2 %
  and samples 87.6 % with the aggregate posterior matching the prior (means spread 1.05); lam =
  10 is nearly deterministic (std 0.016) and its aggregate is 1.5x wider than the prior
  (benchmarks/infovae_lambda.py).
- ``mvae`` / ``minfovae``: Matryoshka nesting [2, 8, 16, 32, 64, 128] capped at latent_dim
  (the full size is always included), on top of the VAE / InfoVAE losses.
- ``pixelvae-h0`` / ``lpvae-h1`` / ``lpvae-h2`` / ``fpvae``: Zhang et al.'s decoders on 8-bit
  pixels (discretised logistic mixture): the same PixelCNN head with dependency horizon 0
  (conditionally independent), 1, 2, and the full PixelCNN head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from repvae.config import NO_HEAD, ModelConfig, Preset, Section
from repvae.config.errors import choice, require
from repvae.models.contract import Capabilities, Family, LossTerms, Model, register_family
from repvae.models.distributions import DiagonalGaussian
from repvae.models.likelihoods import build_likelihood
from repvae.models.networks import build_networks
from repvae.models.pixelcnn import PixelHead, ancestral_sample, build_head, to_signed
from repvae.models.regularisers import MMD_KERNELS, mmd_unbiased

MIN_STD = 1e-4


@dataclass
class VAESection(Section):
    """``model.vae``: the InfoVAE and Matryoshka settings of the composed VAE."""

    # InfoVAE (Zhao et al.): loss = -E log p(x|z) + beta*(1-alpha)*KL + (alpha+lam-1)*MMD.
    # alpha=0, lam=1 is the plain VAE (MMD weight 0); alpha=1, lam=L is the MMD-VAE.
    alpha: float = 0.0
    lam: float = 1.0
    mmd_kernel: str = "rbf"
    mmd_bandwidths: list[float] = field(default_factory=lambda: [1.0])
    mmd_prior_samples: int = 200
    # Matryoshka nesting: every prefix z[:m] for m in the list is trained to stand alone.
    nesting: list[int] | None = None
    nesting_weights: list[float] | None = None
    shared_decoder: bool = False

    described_fields = ("shared_decoder",)

    def check(self, model: ModelConfig) -> None:
        require("model.vae.alpha", self.alpha <= 1, "must be <= 1 (the KL weight is 1 - alpha)")
        require("model.vae.lam", self.lam >= 0, "must be >= 0")
        require(
            "model.vae.lam",
            self.alpha + self.lam - 1 >= -1e-9,
            "alpha + lam must be >= 1 (MMD weight >= 0)",
        )
        choice("model.vae.mmd_kernel", self.mmd_kernel, MMD_KERNELS)
        require("model.vae.mmd_bandwidths", len(self.mmd_bandwidths) > 0, "must not be empty")
        require(
            "model.vae.mmd_bandwidths", all(b > 0 for b in self.mmd_bandwidths), "must all be > 0"
        )
        require("model.vae.mmd_prior_samples", self.mmd_prior_samples >= 2, "must be >= 2")
        if self.nesting is None:
            require(
                "model.vae.nesting_weights",
                self.nesting_weights is None,
                "weights without model.vae.nesting",
            )
            return
        require("model.vae.nesting", len(self.nesting) > 0, "must not be empty (use null for none)")
        require(
            "model.vae.nesting",
            all(0 < n <= model.latent_dim for n in self.nesting),
            f"sizes must be in 1..latent_dim={model.latent_dim}",
        )
        require(
            "model.vae.nesting",
            self.nesting == sorted(set(self.nesting)),
            "must be strictly increasing",
        )
        if self.nesting_weights is not None:
            require(
                "model.vae.nesting_weights",
                len(self.nesting_weights) == len(self.nesting),
                "must have one weight per nesting size",
            )

    def describe(self) -> str:
        return " (shared decoder)" if self.nesting and self.shared_decoder else ""


class VAE(Model):
    def __init__(
        self, config: ModelConfig, shape: tuple[int, int, int], num_classes: int = 0
    ) -> None:
        super().__init__(config, shape, num_classes)
        options = cast(VAESection, config.options)
        self.options = options
        self._prefixes = list(options.nesting) if options.nesting else [config.latent_dim]
        self.weights = (
            list(options.nesting_weights)
            if options.nesting_weights
            else [1.0] * len(self._prefixes)
        )
        self.likelihood = build_likelihood(config, self.shape[0])
        decoder_latents = [self.latent_dim] if options.shared_decoder else self._prefixes
        params = self.likelihood.out_channels(self.shape[0])
        with_head = config.head.kind != NO_HEAD
        self.encoder, self.decoders = build_networks(
            config.architecture,
            self.shape,
            self.latent_dim,
            decoder_latents,
            config.head.features if with_head else params,
            config.hidden,
        )
        self.heads = nn.ModuleList(
            build_head(config.head, self.shape[0], params) for _ in decoder_latents if with_head
        )

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(nested=len(self._prefixes) > 1, autoregressive=self.autoregressive)

    @property
    def prefixes(self) -> list[int]:
        return self._prefixes

    @property
    def autoregressive(self) -> bool:
        """True when p(x|z) is a PixelCNN: decoding needs x, sampling goes pixel by pixel."""
        return bool(self.heads) and self._head(0).autoregressive

    @property
    def discrete_likelihood(self) -> bool:
        return self.likelihood.discrete

    def _head(self, index: int) -> PixelHead:
        return cast(PixelHead, self.heads[index])  # ModuleList items are typed as plain Modules

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x). ``encode(x).mean`` is the deterministic (MAP) representation."""
        h = self.encoder(self.preprocess(x)).float()  # fp32 posterior under bf16 autocast
        mean, raw_std = h.chunk(2, dim=1)
        return DiagonalGaussian(mean, F.softplus(raw_std) + MIN_STD)

    def _decoder_index(self, m: int) -> int:
        if self.options.shared_decoder:
            return 0
        if m not in self._prefixes:
            raise ValueError(f"no decoder for prefix {m}; trained prefixes: {self._prefixes}")
        return self._prefixes.index(m)

    def _features(self, z: torch.Tensor, prefix: int | None) -> tuple[torch.Tensor, int]:
        """Decoder output for z[:prefix] (the zero-padded latent for a shared decoder)."""
        m = z.shape[-1] if prefix is None else prefix
        z = z[..., :m]
        index = self._decoder_index(m)
        if self.options.shared_decoder:
            z = F.pad(z, (0, self.latent_dim - m))
        return self.decoders[index](z), index

    def decode(
        self, z: torch.Tensor, prefix: int | None = None, x: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Likelihood parameters from z; ``prefix`` picks the Matryoshka decoder for z[:prefix].

        An autoregressive (PixelCNN) decoder also reads the image ``x`` (in [0, 1]) under
        teacher forcing: the parameters of pixel (i, j) depend only on z and earlier pixels.
        """
        features, index = self._features(z, prefix)
        if not self.heads:
            return features.float()  # the likelihood's parameters in fp32 under autocast
        return self._head(index)(features, None if x is None else to_signed(x)).float()

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.likelihood.log_prob(self.decode(z, None, x), x)

    def loss(
        self, x: torch.Tensor, beta_scale: float = 1.0, *, labels: torch.Tensor | None = None
    ) -> LossTerms:
        """Batch-averaged negative (generalised) ELBO; ``beta_scale`` implements KL warm-up.
        Labels are not read: the VAE family learns without them."""
        target = self.preprocess(x)
        posterior = self.encode(target)
        z = posterior.rsample()
        options = self.options
        kl_weight = self.config.beta * (1.0 - options.alpha) * beta_scale
        mmd_weight = options.alpha + options.lam - 1.0
        prior_z = (
            torch.randn(options.mmd_prior_samples, self.latent_dim, device=z.device)
            if mmd_weight > 0
            else None
        )
        kl_dims = posterior.kl_standard_normal()
        total = z.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        nested = len(self._prefixes) > 1
        for m, w in zip(self._prefixes, self.weights, strict=True):
            recon = -self.likelihood.log_prob(self.decode(z, m, target), target).mean()
            kl = kl_dims[:, :m].sum(1).mean()
            loss_m = recon + kl_weight * kl
            suffix = f"/{m}" if nested else ""
            terms[f"recon{suffix}"] = recon.detach()
            terms[f"kl{suffix}"] = kl.detach()
            if prior_z is not None:
                mmd = mmd_unbiased(
                    z[:, :m], prior_z[:, :m], options.mmd_kernel, options.mmd_bandwidths
                )
                loss_m = loss_m + mmd_weight * mmd
                terms[f"mmd{suffix}"] = mmd.detach()
            total = total + w * loss_m
        return LossTerms(total, terms)

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        prefix: int | None = None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images in [0, 1] for latents z: the mean of p(x|z), or for a PixelCNN decoder (which
        has no closed-form mean) an ancestral draw, pixel by pixel with the features cached."""
        prefix = prefix or self._prefixes[-1]
        if not self.autoregressive:
            return self.likelihood.mean(self.decode(z, prefix))
        features, index = self._features(z, prefix)
        return ancestral_sample(
            self._head(index), self.likelihood, features, self.shape[0], generator
        )


DEFAULT_NESTING = (2, 8, 16, 32, 64, 128)
INFOVAE_LAMBDA = 100.0


def nesting_for(latent_dim: int) -> list[int]:
    return sorted({m for m in DEFAULT_NESTING if m < latent_dim} | {latent_dim})


def _vae(latent_dim: int) -> dict[str, Any]:
    return {
        "model.family": "vae",
        "model.vae.alpha": 0.0,
        "model.vae.lam": 1.0,
        "model.vae.nesting": None,
    }


def _infovae(latent_dim: int) -> dict[str, Any]:
    return {
        "model.family": "vae",
        "model.vae.alpha": 1.0,
        "model.vae.lam": INFOVAE_LAMBDA,
        "model.vae.nesting": None,
    }


def _nested(base: Callable[[int], dict[str, Any]]) -> Callable[[int], dict[str, Any]]:
    return lambda latent_dim: {**base(latent_dim), "model.vae.nesting": nesting_for(latent_dim)}


def _pixel(head: str, horizon: int = 0) -> Callable[[int], dict[str, Any]]:
    return lambda latent_dim: {
        **_vae(latent_dim),
        "model.likelihood": "logistic_mixture",
        "model.head.kind": head,
        "model.head.horizon": horizon,
    }


FAMILY = register_family(
    Family(
        name="vae",
        section=VAESection,
        build=VAE,
        help="VAE, beta-VAE, InfoVAE/MMD-VAE, Matryoshka and PixelVAE decoders (one composition)",
        presets=(
            Preset("vae", "vae", _vae, help="the true ELBO (beta = 1)"),
            Preset("beta-vae", "vae", _vae, help="the ELBO with KL weight --beta"),
            Preset("infovae", "vae", _infovae, help="MMD-VAE: reconstruction + 100 * MMD, no KL"),
            Preset("mvae", "vae", _nested(_vae), replaces="vae", help="Matryoshka VAE"),
            Preset(
                "minfovae", "vae", _nested(_infovae), replaces="infovae", help="Matryoshka InfoVAE"
            ),
            Preset("pixelvae-h0", "vae", _pixel("local", 0), help="8-bit VAE, local head h=0"),
            Preset("lpvae-h1", "vae", _pixel("local", 1), help="Local PixelVAE, horizon 1"),
            Preset("lpvae-h2", "vae", _pixel("local", 2), help="Local PixelVAE, horizon 2"),
            Preset("fpvae", "vae", _pixel("full"), help="Full PixelVAE (PixelCNN head)"),
        ),
    )
)
