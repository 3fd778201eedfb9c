"""Observation models p(x|z) on images scaled to [0, 1]; log-likelihoods are summed over pixels.

Summing (not averaging) over pixels is what makes beta = 1 the true ELBO: the per-pixel mean
with a tiny KL weight is the best-known trap of other VAE libraries.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Likelihood(nn.Module):
    """Maps decoder outputs (``params``) to log p(x|z), a mean image and samples."""

    params_per_channel = 1

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class Bernoulli(Likelihood):
    """Bernoulli with intensities in [0, 1] as targets (the usual MNIST VAE likelihood)."""

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        nll = F.binary_cross_entropy_with_logits(params, x, reduction="none")
        return -nll.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params))


class Gaussian(Likelihood):
    """Gaussian with the decoder output as mean and a fixed or learned per-channel std."""

    def __init__(self, channels: int, sigma: float, learn_sigma: bool) -> None:
        super().__init__()
        log_sigma = torch.full((1, channels, 1, 1), math.log(sigma))
        self.log_sigma = nn.Parameter(log_sigma, requires_grad=learn_sigma)

    def log_prob(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_sigma = self.log_sigma.expand_as(params)
        z = (x - params) * torch.exp(-log_sigma)
        log_p = -0.5 * z.square() - log_sigma - 0.5 * math.log(2 * math.pi)
        return log_p.flatten(1).sum(1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params.clamp(0, 1)

    def sample(self, params: torch.Tensor) -> torch.Tensor:
        return (params + torch.exp(self.log_sigma) * torch.randn_like(params)).clamp(0, 1)


def build_likelihood(name: str, channels: int, sigma: float, learn_sigma: bool) -> Likelihood:
    if name == "bernoulli":
        return Bernoulli()
    if name == "gaussian":
        return Gaussian(channels, sigma, learn_sigma)
    raise ValueError(f"model.likelihood: unknown likelihood {name!r}")
