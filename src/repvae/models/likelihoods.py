"""Observation models p(x|z) on images scaled to [0, 1]; log-likelihoods are summed over pixels.

Summing (not averaging) over pixels is what makes beta = 1 the true ELBO: the per-pixel mean
with a tiny KL weight is the best-known trap of other VAE libraries.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from repvae.config import LIKELIHOODS, ModelConfig


class Likelihood(nn.Module):
    """Maps decoder outputs (``params``) to log p(x|z), a mean image and samples.

    ``discrete`` likelihoods put their mass on the 256 values k/255, so their negative
    log-likelihood is a code length (bits/dim comparable with the literature); the others are a
    mass function on intensities (Bernoulli) or a density (Gaussian) and are not.
    """

    discrete = False

    def out_channels(self, channels: int) -> int:
        """Number of decoder output maps for images with ``channels`` channels."""
        return channels

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotImplementedError


class Bernoulli(Likelihood):
    """Bernoulli with intensities in [0, 1] as targets (the usual MNIST VAE likelihood)."""

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        nll = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return -nll.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params), generator=generator)


class ScaledLikelihood(Likelihood):
    """A location-scale density around the decoder output, with a fixed or learned per-channel
    scale (``model.sigma``, ``model.learn_sigma``)."""

    def __init__(self, channels: int, sigma: float, learn_sigma: bool) -> None:
        super().__init__()
        log_sigma = torch.full((1, channels, 1, 1), math.log(sigma))
        self.log_sigma = nn.Parameter(log_sigma, requires_grad=learn_sigma)

    def standardised_log_prob(self, u: torch.Tensor) -> torch.Tensor:
        """log density of the unit-scale distribution at ``u``."""
        raise NotImplementedError

    def unit_noise(self, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_sigma = self.log_sigma.expand_as(params)
        log_p = self.standardised_log_prob((x - params) * torch.exp(-log_sigma)) - log_sigma
        return log_p.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params.clamp(0, 1)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        noise = self.unit_noise(params, generator)
        return (params + torch.exp(self.log_sigma) * noise).clamp(0, 1)


class Gaussian(ScaledLikelihood):
    """Gaussian with the decoder output as mean and std ``sigma``."""

    def standardised_log_prob(self, u: torch.Tensor) -> torch.Tensor:
        return -0.5 * u.square() - 0.5 * math.log(2 * math.pi)

    def unit_noise(self, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=like.device)


class Laplace(ScaledLikelihood):
    """Laplace with the decoder output as location and scale ``sigma``: an L1 reconstruction
    (the MoPoE code's likelihood for PolyMNIST's photographic backgrounds, scale 0.75), less
    dominated than the Gaussian by a few large errors."""

    def standardised_log_prob(self, u: torch.Tensor) -> torch.Tensor:
        return -u.abs() - math.log(2.0)

    def unit_noise(self, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        uniform = torch.rand(like.shape, generator=generator, dtype=like.dtype, device=like.device)
        u = uniform - 0.5  # inverse CDF of the unit Laplace
        return -torch.sign(u) * torch.log1p(-2 * u.abs())


@dataclass(frozen=True)
class LikelihoodOption:
    """A registered likelihood: how to build it from the model settings, and whether it is a
    mass on the 256 pixel values (the config check reads ``discrete``)."""

    build: Callable[[ModelConfig, int], Likelihood]
    discrete: bool


def register_likelihood(
    name: str, cls: type[Likelihood], build: Callable[[ModelConfig, int], Likelihood]
) -> None:
    """Make ``model.likelihood: name`` build ``cls`` (declared once, beside the class)."""
    LIKELIHOODS.add(name, LikelihoodOption(build, cls.discrete))


def build_likelihood(config: ModelConfig, channels: int) -> Likelihood:
    """The likelihood ``config.likelihood`` names, for images with ``channels`` channels."""
    option = LIKELIHOODS.get(config.likelihood)
    return option.build(config, channels)  # type: ignore[attr-defined]  # a LikelihoodOption


register_likelihood("bernoulli", Bernoulli, lambda config, channels: Bernoulli())


def _scaled(cls: type[ScaledLikelihood]) -> Callable[[ModelConfig, int], Likelihood]:
    return lambda config, channels: cls(channels, config.sigma, config.learn_sigma)


register_likelihood("gaussian", Gaussian, _scaled(Gaussian))
register_likelihood("laplace", Laplace, _scaled(Laplace))
