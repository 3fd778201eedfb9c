"""The VAE family as one composition: encoder -> diagonal-Gaussian posterior -> prior N(0, I)
-> regulariser (KL and/or MMD) -> decoder(s) -> likelihood, with optional Matryoshka nesting.

One class covers VAE, beta-VAE, InfoVAE/MMD-VAE and Matryoshka (M)VAE because they differ only in
loss weights and in which latent prefixes are decoded:

    loss = sum_m w_m * ( -E_q log p(x | z[:m])
                         + beta * (1 - alpha) * KL(q(z[:m] | x) || N(0, I))
                         + (alpha + lam - 1) * MMD(q(z[:m]) || N(0, I)) )

With no nesting the only prefix is the full latent; beta=1, alpha=lam=0 is the true negative ELBO.
Each prefix has its own decoder (as in the reference project) unless ``shared_decoder``, where
one decoder reads the prefix zero-padded to full size. With ``decoder_head`` (PixelVAE) each decoder
produces feature maps and a PixelCNN head turns them and the image into likelihood parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from repvae.config import ModelConfig
from repvae.models.distributions import DiagonalGaussian
from repvae.models.likelihoods import build_likelihood
from repvae.models.networks import build_networks
from repvae.models.pixelcnn import PixelHead, ancestral_sample, build_head, to_signed
from repvae.models.regularisers import mmd_unbiased

MIN_STD = 1e-4


@dataclass
class LossTerms:
    """The scalar loss to optimise and the batch-averaged terms to log (per prefix when nested)."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]


class VAE(nn.Module):
    semi_supervised = False  # trained without labels (see M2 for the semi-supervised model)

    def __init__(self, config: ModelConfig, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config = config
        c, h, w = shape
        self.shape = (c, h, w)
        self.latent_dim = config.latent_dim
        self.prefixes = list(config.nesting) if config.nesting else [config.latent_dim]
        self.weights = (
            list(config.nesting_weights) if config.nesting_weights else [1.0] * len(self.prefixes)
        )
        self.likelihood = build_likelihood(config, shape[0])
        decoder_latents = [self.latent_dim] if config.shared_decoder else self.prefixes
        params = self.likelihood.out_channels(shape[0])
        with_head = config.decoder_head != "none"
        self.encoder, self.decoders = build_networks(
            config.architecture,
            self.shape,
            self.latent_dim,
            decoder_latents,
            config.head_features if with_head else params,
            config.hidden,
        )
        self.heads = nn.ModuleList(
            build_head(
                config.decoder_head,
                config.head_features,
                shape[0],
                params,
                horizon=config.horizon,
                channels=config.head_channels,
                layers=config.head_layers,
            )
            for _ in decoder_latents
            if with_head
        )

    @property
    def autoregressive(self) -> bool:
        """True when p(x|z) is a PixelCNN: decoding needs x, sampling goes pixel by pixel."""
        return bool(self.heads) and self._head(0).autoregressive

    def _head(self, index: int) -> PixelHead:
        return cast(PixelHead, self.heads[index])  # ModuleList items are typed as plain Modules

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float in [0, 1]; float input is assumed to be in [0, 1] already."""
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x). ``encode(x).mean`` is the deterministic (MAP) representation."""
        h = self.encoder(self.preprocess(x))
        mean, raw_std = h.chunk(2, dim=1)
        return DiagonalGaussian(mean, F.softplus(raw_std) + MIN_STD)

    def _decoder_index(self, m: int) -> int:
        if self.config.shared_decoder:
            return 0
        if m not in self.prefixes:
            raise ValueError(f"no decoder for prefix {m}; trained prefixes: {self.prefixes}")
        return self.prefixes.index(m)

    def _features(self, z: torch.Tensor, prefix: int | None) -> tuple[torch.Tensor, int]:
        """Decoder output for z[:prefix] (the zero-padded latent for a shared decoder)."""
        m = z.shape[-1] if prefix is None else prefix
        z = z[..., :m]
        index = self._decoder_index(m)
        if self.config.shared_decoder:
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
            return features
        return self._head(index)(features, None if x is None else to_signed(x))

    def loss(self, x: torch.Tensor, beta_scale: float = 1.0) -> LossTerms:
        """Batch-averaged negative (generalised) ELBO; ``beta_scale`` implements KL warm-up."""
        target = self.preprocess(x)
        posterior = self.encode(target)
        z = posterior.rsample()
        cfg = self.config
        kl_weight = cfg.beta * (1.0 - cfg.alpha) * beta_scale
        mmd_weight = cfg.alpha + cfg.lam - 1.0
        prior_z = (
            torch.randn(cfg.mmd_prior_samples, self.latent_dim, device=z.device)
            if mmd_weight > 0
            else None
        )
        kl_dims = posterior.kl_standard_normal()
        total = z.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        nested = len(self.prefixes) > 1
        for m, w in zip(self.prefixes, self.weights, strict=True):
            recon = -self.likelihood.log_prob(self.decode(z, m, target), target).mean()
            kl = kl_dims[:, :m].sum(1).mean()
            loss_m = recon + kl_weight * kl
            suffix = f"/{m}" if nested else ""
            terms[f"recon{suffix}"] = recon.detach()
            terms[f"kl{suffix}"] = kl.detach()
            if prior_z is not None:
                mmd = mmd_unbiased(z[:, :m], prior_z[:, :m], cfg.mmd_kernel, cfg.mmd_bandwidths)
                loss_m = loss_m + mmd_weight * mmd
                terms[f"mmd{suffix}"] = mmd.detach()
            total = total + w * loss_m
        return LossTerms(total, terms)

    @torch.no_grad()
    def generate(
        self, z: torch.Tensor, prefix: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Images in [0, 1] for latents z: the mean of p(x|z), or for a PixelCNN decoder (which
        has no closed-form mean) an ancestral draw, pixel by pixel with the features cached."""
        prefix = prefix or self.prefixes[-1]
        if not self.autoregressive:
            return self.likelihood.mean(self.decode(z, prefix))
        features, index = self._features(z, prefix)
        return ancestral_sample(
            self._head(index), self.likelihood, features, self.shape[0], generator
        )

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, prefix: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reconstruction in [0, 1] from the posterior mean (see ``generate``)."""
        return self.generate(self.encode(x).mean, prefix, generator)

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, prefix: int | None = None
    ) -> torch.Tensor:
        """Images decoded from prior draws (see ``generate``)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.generate(z, prefix, generator)
