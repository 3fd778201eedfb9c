"""The deterministic autoencoder: the baseline a VAE's representation is compared against.

    loss = -log p(x | f(x))        (no KL, no prior: the code is a point, not a distribution)

With ``likelihood: gaussian`` the loss is the summed squared error scaled by 1 / (2 sigma^2),
i.e. MSE training (Adam is nearly invariant to that scale); with ``bernoulli`` it is the binary
cross-entropy. The encoder and decoder are the same registered networks the VAE uses, so an
AE-vs-VAE comparison differs only in the loss. Its representation is the code itself (``map``);
there is no posterior to sample and no prior to generate from, and both are refused with that
reason rather than faked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from repvae.config import NO_HEAD, ModelConfig, Preset, Section
from repvae.config.errors import require
from repvae.models.contract import Capabilities, Family, LossTerms, Model, register_family
from repvae.models.distributions import PointMass
from repvae.models.likelihoods import build_likelihood
from repvae.models.networks import architecture


@dataclass
class AESection(Section):
    """``model.ae``: the autoencoder has no settings of its own."""

    def check(self, model: ModelConfig) -> None:
        require("model.beta", model.beta == 1.0, "the ae family has no KL term to weigh")
        require("model.head.kind", model.head.kind == NO_HEAD, "the ae family has no PixelCNN head")


class Autoencoder(Model):
    def __init__(
        self, config: ModelConfig, shape: tuple[int, int, int], num_classes: int = 0
    ) -> None:
        super().__init__(config, shape, num_classes)
        self.likelihood = build_likelihood(config, self.shape[0])
        arch = architecture(config.architecture, self.shape)
        out = self.likelihood.out_channels(self.shape[0])
        self.encoder = arch.encoder(self.shape, self.latent_dim, config.hidden)
        self.decoder = arch.decoder(self.latent_dim, self.shape, out, config.hidden)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            continuous_posterior=False,
            likelihood_bound=False,
            generates=False,
            unsupported={
                "continuous_posterior": "a deterministic autoencoder's code is a point, not a "
                "distribution: only the map representation exists",
                "likelihood_bound": "a deterministic autoencoder defines no density p(x)",
                "generates": "a deterministic autoencoder has no prior to draw codes from (fit a "
                "density, e.g. a Gaussian mixture, to its training codes to generate)",
            },
        )

    @property
    def discrete_likelihood(self) -> bool:
        return self.likelihood.discrete

    def encode(self, x: torch.Tensor) -> PointMass:
        return PointMass(self.encoder(self.preprocess(x)).float())

    def loss(
        self, x: torch.Tensor, beta_scale: float = 1.0, *, labels: torch.Tensor | None = None
    ) -> LossTerms:
        """Mean reconstruction loss -log p(x | f(x)); labels and the KL warm-up do not apply."""
        target = self.preprocess(x)
        params = self.decoder(self.encode(target).mean).float()  # fp32 under bf16 autocast
        recon = -self.likelihood.log_prob(params, target).mean()
        return LossTerms(recon, {"recon": recon.detach()})

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        prefix: int | None = None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The decoder's mean image for given codes (interpolations and traversals; there is no
        prior to draw the codes from)."""
        self._prefix(prefix)
        return self.likelihood.mean(self.decoder(z))


def _ae(latent_dim: int) -> dict[str, Any]:
    return {"model.family": "ae"}


FAMILY = register_family(
    Family(
        name="ae",
        section=AESection,
        build=Autoencoder,
        help="deterministic autoencoder (--likelihood gaussian: MSE; bernoulli: cross-entropy)",
        presets=(Preset("ae", "ae", _ae, help="deterministic autoencoder baseline"),),
    )
)
