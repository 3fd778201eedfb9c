"""Information metrics of a Gaussian-posterior representation.

Every function takes the posterior parameters of q(z|x) = N(mean, diag(std^2)) for N data points
as ``[N, D]`` arrays (numpy or torch, e.g. from ``repvae.represent.encode``), so they apply to
any encoder with a diagonal-Gaussian posterior and prior p(z) = N(0, I). Computation is in
float64 numpy; results are plain floats, numpy arrays or small dataclasses.

- Active units (Burda et al. 2016): dimensions whose posterior mean varies across the data.
- "MI" (Zhang et al.): E_x KL(q(z|x) || p(z)), an upper bound on the mutual information.
- Conditional entropy E_x H(q(z|x)).
- Intrinsic dimension (Zhang et al.): the number of significant principal components of the
  posterior means. Zhang et al. do not state their eigenvalue threshold, so the count is also
  reported for a sweep of thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import numpy as np
import torch

from repvae.evaluate.metric import Context, Metric, Result, values_at
from repvae.models import DiagonalGaussian
from repvae.plots.figures import eigenvalue_spectrum

ArrayLike = np.ndarray | torch.Tensor

ID_THRESHOLDS = (0.1, 0.05, 0.01, 0.005, 0.001)
_HALF_LOG_2PIE = 0.5 * math.log(2 * math.pi * math.e)


def _matrix(x: ArrayLike, name: str) -> np.ndarray:
    """A float64 ``[N, D]`` numpy copy of ``x`` (numpy or torch, any device)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty [N, D] array, got shape {x.shape}")
    return x


def _posterior(means: ArrayLike, stds: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    mu, sigma = _matrix(means, "means"), _matrix(stds, "stds")
    if mu.shape != sigma.shape:
        raise ValueError(f"means {mu.shape} and stds {sigma.shape} must have the same shape")
    return mu, _positive(sigma)


def _positive(sigma: np.ndarray) -> np.ndarray:
    if not np.all(sigma > 0):
        raise ValueError("stds must be strictly positive")
    return sigma


@dataclass(frozen=True)
class ActiveUnits:
    """``count`` dimensions have ``variances[d]`` = Var_x(E_q[z_d|x]) above ``threshold``."""

    count: int
    variances: np.ndarray
    threshold: float


def active_units(means: ArrayLike, threshold: float = 0.01) -> ActiveUnits:
    """Dimensions whose posterior mean varies over the data (Burda et al. 2016, threshold 0.01).

    An inactive (collapsed) unit has q(z_d|x) ~ p(z_d) for every x, so its mean is constant;
    the variance is the population variance over the N points.
    """
    variances = _matrix(means, "means").var(axis=0)
    return ActiveUnits(int((variances > threshold).sum()), variances, float(threshold))


def kl_per_dimension(means: ArrayLike, stds: ArrayLike) -> np.ndarray:
    """E_x KL(q(z_d|x) || N(0, 1)) for each dimension d, in nats, shape [D]."""
    mu, sigma = _posterior(means, stds)
    var = sigma**2
    return (0.5 * (var + mu**2 - 1.0 - np.log(var))).mean(axis=0)


def mutual_information(means: ArrayLike, stds: ArrayLike) -> float:
    """Zhang et al.'s "MI": E_x KL(q(z|x) || N(0, I)) in nats (the data mean of the analytic KL).

    This is NOT the exact mutual information. With the aggregate posterior
    q(z) = E_x q(z|x), E_x KL(q(z|x) || p(z)) = I_q(x; z) + KL(q(z) || p(z)), so it
    upper-bounds I_q(x; z), with equality only when the aggregate posterior equals the prior.
    It is the rate term of the ELBO, averaged over the data.
    """
    return float(kl_per_dimension(means, stds).sum())


def conditional_entropy(stds: ArrayLike) -> float:
    """E_x H(q(z|x)) in nats: sum over dimensions of log std + 0.5 log(2 pi e), averaged over x.

    Differential entropy, so it can be negative (it falls as the posterior sharpens).
    """
    sigma = _positive(_matrix(stds, "stds"))
    return float((np.log(sigma) + _HALF_LOG_2PIE).sum(axis=1).mean())


@dataclass(frozen=True)
class IntrinsicDimension:
    """PCA of the posterior means: ``count`` eigenvalues exceed the cut at ``threshold``.

    ``eigenvalues`` (descending, one per dimension, summing to the total variance) and
    ``explained_variance_ratio`` cover all D components; ``counts_by_threshold`` maps each
    threshold of the sweep to its count, under the same ``relative`` rule.
    """

    count: int
    threshold: float
    relative: bool
    eigenvalues: np.ndarray
    explained_variance_ratio: np.ndarray
    counts_by_threshold: dict[float, int]


def _spectrum(means: ArrayLike) -> np.ndarray:
    """Eigenvalues (descending, clipped at 0) of the population covariance of the means."""
    mu = _matrix(means, "means")
    centred = mu - mu.mean(axis=0)
    cov = centred.T @ centred / mu.shape[0]
    return np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None)


def _count_above(eigenvalues: np.ndarray, threshold: float, relative: bool) -> int:
    cut = threshold * eigenvalues[0] if relative else threshold
    return int((eigenvalues > cut).sum()) if eigenvalues[0] > 0 else 0


def intrinsic_dimension(
    means: ArrayLike,
    threshold: float = 0.01,
    relative: bool = True,
    thresholds: tuple[float, ...] = ID_THRESHOLDS,
) -> IntrinsicDimension:
    """Number of principal components of the MAP representations above a threshold (Zhang et al.).

    A component counts when its eigenvalue exceeds ``threshold`` times the largest eigenvalue
    (``relative=True``) or ``threshold`` itself. Zhang et al. never state their threshold, so
    the count is also given for each of ``thresholds``; reports should show that sweep.
    """
    eigenvalues = _spectrum(means)
    total = eigenvalues.sum()
    ratio = eigenvalues / total if total > 0 else np.zeros_like(eigenvalues)
    return IntrinsicDimension(
        count=_count_above(eigenvalues, threshold, relative),
        threshold=float(threshold),
        relative=relative,
        eigenvalues=eigenvalues,
        explained_variance_ratio=ratio,
        counts_by_threshold={
            float(t): _count_above(eigenvalues, t, relative) for t in sorted(thresholds)
        },
    )


def dimension_for_variance(means: ArrayLike, fraction: float = 0.95) -> int:
    """Fewest principal components of the means that explain ``fraction`` of their variance.

    A threshold-free companion to ``intrinsic_dimension``; 0 when the means are constant.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    eigenvalues = _spectrum(means)
    total = eigenvalues.sum()
    if total <= 0:
        return 0
    cumulative = np.cumsum(eigenvalues) / total
    # the tolerance keeps round-off from pushing an exactly reached fraction one component later
    return int(np.searchsorted(cumulative, fraction - 1e-12) + 1)


def information_report(
    means: ArrayLike,
    stds: ArrayLike | None,
    au_threshold: float = 0.01,
    id_threshold: float = 0.01,
    id_relative: bool = True,
    variance_fraction: float = 0.95,
) -> dict:
    """All metrics above as JSON-ready values (floats, ints, lists; threshold keys as strings).

    ``stds=None`` (a deterministic code) leaves out what needs a posterior density: the KL
    terms ("MI") and the conditional entropy are None.
    """
    if stds is None:
        mu = _matrix(means, "means")
        gaussian = None
    else:
        mu, sigma = _posterior(means, stds)
        gaussian = {
            "mutual_information": mutual_information(mu, sigma),
            "kl_per_dimension": kl_per_dimension(mu, sigma).tolist(),
            "conditional_entropy": conditional_entropy(sigma),
        }
    au = active_units(mu, au_threshold)
    ident = intrinsic_dimension(mu, id_threshold, id_relative)
    undefined = {"mutual_information": None, "kl_per_dimension": None, "conditional_entropy": None}
    return {
        "n": int(mu.shape[0]),
        "latent_dim": int(mu.shape[1]),
        "active_units": au.count,
        "active_units_threshold": au.threshold,
        "mean_variances": au.variances.tolist(),
        **(gaussian or undefined),
        "mutual_information_note": (
            "E_x KL(q(z|x)||p(z)) = I_q(x;z) + KL(q(z)||p(z)), nats"
            if gaussian
            else "undefined: a deterministic code has no posterior density"
        ),
        "intrinsic_dimension": ident.count,
        "intrinsic_dimension_threshold": ident.threshold,
        "intrinsic_dimension_relative": ident.relative,
        "intrinsic_dimension_by_threshold": {
            repr(t): c for t, c in ident.counts_by_threshold.items()
        },
        "eigenvalues": ident.eigenvalues.tolist(),
        "explained_variance_ratio": ident.explained_variance_ratio.tolist(),
        "dimension_for_variance": dimension_for_variance(mu, variance_fraction),
        "variance_fraction": float(variance_fraction),
    }


def _information(ctx: Context) -> Result:
    posterior = ctx.posterior()
    model = ctx.run.model
    stds = (
        cast(DiagonalGaussian, posterior).std if model.capabilities.continuous_posterior else None
    )
    info = information_report(posterior.mean, stds)
    if stds is not None and not model.capabilities.standard_normal_prior:
        # E_x KL(q(z|x) || N(0, I)) is not a KL to this model's prior
        reason = model.capabilities.why_not("standard_normal_prior")
        info |= {"mutual_information": None, "kl_per_dimension": None}
        info["mutual_information_note"] = f"undefined: {reason}"
    eigenvalue_spectrum(
        {ctx.run.dir.name: np.asarray(info["eigenvalues"])},
        ctx.out / "eigenvalue_spectrum.png",
        threshold=info["intrinsic_dimension_threshold"],
        title=f"PCA spectrum of MAP codes ({ctx.split} split)",
    )
    return {"split": ctx.split, **info}


def _summary(result: Result) -> list[str]:
    lines = [
        f"  active units (Var_x E[z] > {result['active_units_threshold']}): "
        f"{result['active_units']} of {result['latent_dim']}"
    ]
    if result["mutual_information"] is not None:
        lines += [
            f"  E_x KL(q(z|x)||p(z)) (Zhang et al.'s MI): {result['mutual_information']:.2f} nats",
            f"  E_x H(q(z|x)): {result['conditional_entropy']:.2f} nats",
        ]
    lines.append(
        "  intrinsic dimension (PCA, eigenvalue > t x largest): "
        + ", ".join(f"{t}: {n}" for t, n in result["intrinsic_dimension_by_threshold"].items())
    )
    return lines


METRIC = Metric(
    "information",
    _information,
    values_at(
        {
            "mutual_information": ("mutual_information",),
            "intrinsic_dimension": ("intrinsic_dimension",),
            "active_units": ("active_units",),
            "conditional_entropy": ("conditional_entropy",),
        }
    ),
    _summary,
)
