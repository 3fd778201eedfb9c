"""Diagonal-Gaussian posterior and the standard-normal prior, with closed-form KL.

torch.distributions would do the sampling, but the representation code needs ``mean``/``std``
as plain tensors and prefix slicing (Matryoshka), and the KL per dimension, so a tiny dataclass
is clearer than wrapping ``Independent(Normal)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG_2PI = math.log(2 * math.pi)


@dataclass(frozen=True)
class DiagonalGaussian:
    """q(z|x) = N(mean, diag(std^2)); ``mean`` is the MAP representation."""

    mean: torch.Tensor
    std: torch.Tensor

    def rsample(
        self, k: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reparameterised draw(s): [B, D], or [B, K, D] when ``k`` is given."""
        shape = self.mean.shape if k is None else (self.mean.shape[0], k, self.mean.shape[1])
        eps = torch.randn(
            shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        if k is None:
            return self.mean + self.std * eps
        return self.mean.unsqueeze(1) + self.std.unsqueeze(1) * eps

    def prefix(self, m: int) -> DiagonalGaussian:
        """The marginal of the first ``m`` coordinates (exact for a diagonal Gaussian)."""
        return DiagonalGaussian(self.mean[..., :m], self.std[..., :m])

    def kl_standard_normal(self) -> torch.Tensor:
        """KL(q || N(0, I)) per dimension, shape like ``mean``."""
        var = self.std.square()
        return 0.5 * (var + self.mean.square() - 1.0 - torch.log(var))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log q(z|x) summed over dimensions; ``z`` is [B, D] or [B, K, D]."""
        mean, std = self.mean, self.std
        if z.dim() == 3:
            mean, std = mean.unsqueeze(1), std.unsqueeze(1)
        return (-0.5 * ((z - mean) / std).square() - torch.log(std) - 0.5 * LOG_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        """H(q(z|x)) summed over dimensions, shape [B]."""
        return (torch.log(self.std) + 0.5 * (1 + LOG_2PI)).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return (-0.5 * z.square() - 0.5 * LOG_2PI).sum(-1)
