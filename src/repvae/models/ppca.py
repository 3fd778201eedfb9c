"""Probabilistic PCA (Tipping & Bishop 1999): the linear-Gaussian latent model, fitted in closed
form, as the classical baseline beside the VAE family.

    z ~ N(0, I_q),   x | z ~ N(W z + mu, sigma^2 I_D)        (x: the image flattened, in [0, 1])

The maximum-likelihood fit is closed form: mu is the data mean; with the sample covariance's
eigenvalues l_1 >= ... >= l_D and eigenvectors U,

    sigma^2 = mean(l_{q+1}, ..., l_D),     W = U_q (L_q - sigma^2 I)^(1/2)

(the rotation R = I). scikit-learn's ``PCA`` computes exactly these eigenpairs and
``noise_variance_`` (the mean of the discarded eigenvalues, also for its truncated solvers) with
1/(N-1); they are rescaled to the maximum-likelihood 1/N here. The posterior is Gaussian,

    q(z|x) = N(M^-1 W^T (x - mu), sigma^2 M^-1),   M = W^T W + sigma^2 I,

and with R = I, M = L_q is diagonal, so it is exactly the diagonal Gaussian every
representation and metric of the library reads. The training loss is the exact negative
log-likelihood -log N(x; mu, W W^T + sigma^2 I) (Woodbury and the determinant lemma keep it
O(D q^2)); it is what the run's validation loss reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from torch import nn

from repvae.config import AUTO_ARCHITECTURE, NO_HEAD, ModelConfig, Preset, Section
from repvae.config.errors import require
from repvae.models.contract import Capabilities, Family, LossTerms, Model, register_family
from repvae.models.distributions import DiagonalGaussian

# Data confined to q dimensions has no noise left to estimate; a floor keeps q(z|x) a density.
MIN_NOISE_VARIANCE = 1e-6


@dataclass
class PPCASection(Section):
    """``model.ppca``: the closed form leaves nothing to set."""

    def check(self, model: ModelConfig) -> None:
        require(
            "model.likelihood",
            model.likelihood == "gaussian",
            "ppca's p(x|z) is Gaussian with the fitted noise variance: set gaussian",
        )
        require(
            "model.architecture",
            model.architecture == AUTO_ARCHITECTURE,
            "ppca's encoder and decoder are the linear maps of its closed form",
        )
        require("model.head.kind", model.head.kind == NO_HEAD, "ppca has no PixelCNN head")
        require("model.beta", model.beta == 1.0, "ppca's fit is maximum likelihood (beta = 1)")


class PPCA(Model):
    def __init__(
        self, config: ModelConfig, shape: tuple[int, int, int], num_classes: int = 0
    ) -> None:
        super().__init__(config, shape, num_classes)
        pixels = math.prod(self.shape)
        if self.latent_dim >= pixels:
            raise ValueError(
                f"model.latent_dim: ppca needs fewer latent dimensions than pixels ({pixels})"
            )
        # Parameters (not buffers) without gradients: they are the model's weights, saved with
        # it, and found by code that asks ``next(model.parameters())`` for the device.
        self.mean_image = nn.Parameter(torch.zeros(pixels), requires_grad=False)
        self.loadings = nn.Parameter(torch.zeros(pixels, self.latent_dim), requires_grad=False)
        self.noise_variance = nn.Parameter(torch.ones(()), requires_grad=False)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(closed_form=True)

    def _centred(self, x: torch.Tensor) -> torch.Tensor:
        return self.preprocess(x).flatten(1).to(self.loadings.dtype) - self.mean_image

    def _precision(self) -> torch.Tensor:
        """M = W^T W + sigma^2 I (q x q)."""
        eye = torch.eye(self.latent_dim, dtype=self.loadings.dtype, device=self.loadings.device)
        return self.loadings.T @ self.loadings + self.noise_variance * eye

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """The exact posterior; its covariance sigma^2 M^-1 is diagonal for the closed-form W."""
        m_inverse = torch.linalg.inv(self._precision())
        mean = self._centred(x) @ self.loadings @ m_inverse
        std = (self.noise_variance * m_inverse.diagonal()).sqrt()
        return DiagonalGaussian(mean, std.expand_as(mean).contiguous())

    def _mean_image(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.loadings.T + self.mean_image).view(-1, *self.shape)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log N(x; W z + mu, sigma^2 I) per row."""
        residual = self.preprocess(x).flatten(1) - self._mean_image(z).flatten(1)
        pixels = residual.shape[1]
        variance = self.noise_variance
        return -0.5 * (
            residual.square().sum(1) / variance + pixels * torch.log(2 * math.pi * variance)
        )

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """The exact log p(x) = log N(x; mu, W W^T + sigma^2 I) per image."""
        d = self._centred(x)
        pixels, q = d.shape[1], self.latent_dim
        variance = self.noise_variance
        precision = self._precision()
        projected = d @ self.loadings  # [B, q]
        solved = torch.linalg.solve(precision, projected.T).T
        quadratic = (d.square().sum(1) - (projected * solved).sum(1)) / variance
        log_det = (pixels - q) * torch.log(variance) + torch.linalg.slogdet(precision)[1]
        return -0.5 * (pixels * math.log(2 * math.pi) + log_det + quadratic)

    def loss(
        self, x: torch.Tensor, beta_scale: float = 1.0, *, labels: torch.Tensor | None = None
    ) -> LossTerms:
        """Mean exact negative log-likelihood (nats per image)."""
        nll = -self.log_marginal(x).mean()
        return LossTerms(nll, {"nll": nll.detach()})

    def fit(self, images: torch.Tensor) -> dict[str, float]:
        """The maximum-likelihood parameters from uint8 (or [0, 1]) images."""
        data = self.preprocess(images).flatten(1).double().cpu().numpy()
        n = len(data)
        if n <= self.latent_dim:
            raise ValueError(f"ppca needs more training images ({n}) than latent dimensions")
        # random_state: scikit-learn's randomised solver (chosen for wide images) is seeded
        pca = PCA(n_components=self.latent_dim, random_state=0).fit(data)
        to_ml = (n - 1) / n  # scikit-learn divides by N - 1; the maximum-likelihood fit by N
        eigenvalues = pca.explained_variance_ * to_ml
        noise = max(float(pca.noise_variance_) * to_ml, MIN_NOISE_VARIANCE)
        scale = np.sqrt(np.clip(eigenvalues - noise, 0.0, None))
        loadings = pca.components_.T * scale
        with torch.no_grad():
            self.mean_image.copy_(torch.from_numpy(pca.mean_))
            self.loadings.copy_(torch.from_numpy(loadings))
            self.noise_variance.fill_(noise)
        return {
            "noise_variance": noise,
            "explained_variance_ratio": float(pca.explained_variance_ratio_.sum()),
        }

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        prefix: int | None = None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The mean of p(x|z), clipped to the pixel range."""
        self._prefix(prefix)
        return self._mean_image(z).clamp(0.0, 1.0)


def _ppca(latent_dim: int) -> dict[str, Any]:
    return {"model.family": "ppca", "model.likelihood": "gaussian"}


FAMILY = register_family(
    Family(
        name="ppca",
        section=PPCASection,
        build=PPCA,
        help="probabilistic PCA, fitted in closed form (Tipping & Bishop 1999)",
        uses_networks=False,
        presets=(Preset("ppca", "ppca", _ppca, help="probabilistic PCA baseline (closed form)"),),
    )
)
