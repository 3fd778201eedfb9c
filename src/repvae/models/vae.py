"""The VAE family as one composition: encoder -> diagonal-Gaussian posterior -> prior N(0, I)
-> regulariser (KL and/or MMD) -> decoder(s) -> likelihood, with optional Matryoshka nesting.

One class covers VAE, beta-VAE, InfoVAE/MMD-VAE and Matryoshka (M)VAE because they differ only in
loss weights and in which latent prefixes are decoded:

    loss = sum_m w_m * ( -E_q log p(x | z[:m])
                         + beta * (1 - alpha) * KL(q(z[:m] | x) || N(0, I))
                         + (alpha + lam - 1) * MMD(q(z[:m]) || N(0, I)) )

With no nesting the only prefix is the full latent; beta=1, alpha=lam=0 is the true negative ELBO.
Each prefix has its own decoder (as in the reference project) unless ``shared_decoder``, where
one decoder reads the prefix zero-padded to full size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from repvae.config import ModelConfig
from repvae.models.distributions import DiagonalGaussian
from repvae.models.likelihoods import build_likelihood
from repvae.models.networks import build_networks
from repvae.models.regularisers import mmd_unbiased

MIN_STD = 1e-4


@dataclass
class LossTerms:
    """The scalar loss to optimise and the batch-averaged terms to log (per prefix when nested)."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]


class VAE(nn.Module):
    def __init__(self, config: ModelConfig, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.config = config
        self.shape = tuple(shape)
        self.latent_dim = config.latent_dim
        self.prefixes = list(config.nesting) if config.nesting else [config.latent_dim]
        self.weights = (
            list(config.nesting_weights) if config.nesting_weights else [1.0] * len(self.prefixes)
        )
        self.likelihood = build_likelihood(
            config.likelihood, shape[0], config.sigma, config.learn_sigma
        )
        decoder_latents = [self.latent_dim] if config.shared_decoder else self.prefixes
        self.encoder, self.decoders = build_networks(
            config.architecture,
            self.shape,
            self.latent_dim,
            decoder_latents,
            shape[0] * self.likelihood.params_per_channel,
            config.hidden,
        )

    @staticmethod
    def preprocess(x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float in [0, 1]; float input is assumed to be in [0, 1] already."""
        return x.float().div_(255.0) if x.dtype == torch.uint8 else x

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x). ``encode(x).mean`` is the deterministic (MAP) representation."""
        h = self.encoder(self.preprocess(x))
        mean, raw_std = h.chunk(2, dim=1)
        return DiagonalGaussian(mean, F.softplus(raw_std) + MIN_STD)

    def decode(self, z: torch.Tensor, prefix: int | None = None) -> torch.Tensor:
        """Likelihood parameters from z; ``prefix`` picks the Matryoshka decoder for z[:prefix]."""
        m = z.shape[-1] if prefix is None else prefix
        z = z[..., :m]
        if self.config.shared_decoder:
            return self.decoders[0](F.pad(z, (0, self.latent_dim - m)))
        if m not in self.prefixes:
            raise ValueError(f"no decoder for prefix {m}; trained prefixes: {self.prefixes}")
        return self.decoders[self.prefixes.index(m)](z)

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
            recon = -self.likelihood.log_prob(self.decode(z, m), target).mean()
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
    def reconstruct(self, x: torch.Tensor, prefix: int | None = None) -> torch.Tensor:
        """Mean reconstruction in [0, 1] from the posterior mean."""
        return self.likelihood.mean(self.decode(self.encode(x).mean, prefix or self.prefixes[-1]))

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator | None = None, prefix: int | None = None
    ) -> torch.Tensor:
        """Mean images decoded from prior draws."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        return self.likelihood.mean(self.decode(z, prefix or self.prefixes[-1]))
