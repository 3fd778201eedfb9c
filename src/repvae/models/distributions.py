"""Posteriors q(z|x) and the standard-normal prior, with closed-form KL.

Every posterior offers what representations are made of: ``mean`` (the MAP code), draws,
Matryoshka prefixes, and its parameters as a flat vector (the ``dist`` representation).
torch.distributions would do the sampling, but the representation code needs ``mean``/``std``
as plain tensors, prefix slicing and the KL per dimension, so small dataclasses are clearer than
wrapping ``Independent(Normal)``. Posteriors are dataclasses of tensors with the batch first,
so ``cat_posteriors`` and ``map_posterior`` work on any of them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import torch

LOG_2PI = math.log(2 * math.pi)


class Posterior(Protocol):
    """What representations need of q(z|x) for a batch of images."""

    @property
    def mean(self) -> torch.Tensor:
        """The MAP (deterministic) representation, [B, D]."""
        ...

    def rsample(
        self, k: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Draw(s): [B, D], or [B, K, D] when ``k`` is given."""
        ...

    def prefix(self, m: int) -> Posterior:
        """The marginal of the first ``m`` coordinates."""
        ...

    def flat_parameters(self) -> torch.Tensor:
        """The distribution's parameters as one vector per image (the ``dist`` kind)."""
        ...


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

    def flat_parameters(self) -> torch.Tensor:
        """``[mean, std]``: 2D numbers per image."""
        return torch.cat([self.mean, self.std], dim=-1)

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


class NotADistribution(ValueError):
    """A deterministic code was asked for draws or distribution parameters."""


@dataclass(frozen=True)
class PointMass:
    """A deterministic encoder's code: all of q(z|x) sits on ``mean``. Drawing from it would
    return the same code and call it a sample, so it refuses instead."""

    mean: torch.Tensor

    def rsample(
        self, k: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotADistribution(
            "a deterministic encoder gives one code per image, not a distribution to sample "
            "(use the map representation)"
        )

    def prefix(self, m: int) -> PointMass:
        return PointMass(self.mean[..., :m])

    def flat_parameters(self) -> torch.Tensor:
        raise NotADistribution(
            "a deterministic encoder has no distribution parameters (use the map representation)"
        )


P = TypeVar("P")


def map_posterior(posterior: P, fn: Callable[[torch.Tensor], torch.Tensor]) -> P:
    """The posterior with ``fn`` applied to each of its tensors (e.g. ``.cpu()``)."""
    fields = dataclasses.fields(posterior)  # type: ignore[arg-type]
    return type(posterior)(**{f.name: fn(getattr(posterior, f.name)) for f in fields})


def cat_posteriors(parts: Sequence[P]) -> P:
    """Batches of one posterior type joined along the batch dimension."""
    first = parts[0]
    fields = dataclasses.fields(first)  # type: ignore[arg-type]
    return type(first)(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields})


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) summed over the last dimension."""
    return (-0.5 * z.square() - 0.5 * LOG_2PI).sum(-1)
