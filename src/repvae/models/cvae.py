"""The conditional VAE (Sohn, Lee and Yan, "Learning Structured Output Representation using Deep
Conditional Generative Models", 2015) with the class label as the condition:

    p(z) = N(0, I),   p(x | z, y),   q(z | x, y) = N(mu(x, y), sigma(x, y))
    loss = -E_q log p(x | z, y) + beta * KL(q(z | x, y) || N(0, I))     (-ELBO of log p(x | y))

This is the CVAE with a fixed prior (as in multivae's ``CVAE`` without its prior network), not
Sohn et al.'s learned conditional prior p(z | x): here the condition is the label alone, so there
is no other input for a prior network to read. Both the encoder and the decoder read the one-hot
label, joined to the image features after the encoder's trunk and to z at the decoder's input
(a one-hot concatenated to the pixels of a conv input is a known trap). Training needs every
image's label.

Because q(z|x, y) is told the class, z is trained to carry what the label does not: the
"style". Representations are therefore encoded with each image's true label
(``encode_labelled``) and a label probe on them measures leakage of the class into the style,
not representation quality; the probe output says so. Without a label, ``encode`` takes the
class the model itself finds most probable: argmax_y of the ELBO of log p(x | y) (the CVAE used
as a generative classifier, ``classify``), so reconstructions, pictures and the ONNX export work
from images alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from repvae.config import NO_HEAD, ConfigError, ModelConfig, Preset, Section
from repvae.config.errors import require
from repvae.models.contract import (
    STYLE_NOTE,
    Capabilities,
    Family,
    LossTerms,
    Model,
    register_family,
)
from repvae.models.distributions import DiagonalGaussian
from repvae.models.likelihoods import build_likelihood
from repvae.models.networks import architecture
from repvae.models.vae import MIN_STD


@dataclass
class CVAESection(Section):
    """``model.cvae``: the fixed N(0, I) prior leaves nothing to set."""

    def check(self, model: ModelConfig) -> None:
        require(
            "model.head.kind",
            model.head.kind == NO_HEAD,
            "the cvae family decodes with its plain decoder (no PixelCNN head)",
        )


class CVAE(Model):
    def __init__(self, config: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(config, shape, num_classes)
        self.likelihood = build_likelihood(config, self.shape[0])
        arch = architecture(config.architecture, self.shape)
        hidden = config.hidden
        self.encoder = arch.encoder(self.shape, hidden, hidden)
        # q(z|x,y): the image features and the one-hot class meet in an MLP (as in M2)
        self.posterior_head = nn.Sequential(
            nn.ReLU(),
            nn.Linear(hidden + num_classes, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * self.latent_dim),
        )
        out = self.likelihood.out_channels(self.shape[0])
        self.decoder = arch.decoder(self.latent_dim + num_classes, self.shape, out, hidden)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            conditional=True,
            needs_labels=True,
            label_encoder=True,
            code_note=STYLE_NOTE,
            classifier=True,
            likelihood_bound=False,
            unsupported={
                "likelihood_bound": "the cvae bounds log p(x|y), not log p(x): its bound is "
                "not comparable with the unconditional models' ELBO and IWAE",
            },
        )

    @property
    def discrete_likelihood(self) -> bool:
        return self.likelihood.discrete

    def label_budget(self, labelled: int, total: int) -> None:
        """A CVAE conditions on every training image's label; it cannot use unlabelled ones."""
        if labelled < total:
            raise ConfigError(
                f"train.labelled: the cvae needs the label of every training image ({labelled} "
                f"of {total} given); unset train.labelled, or use m2 for a few labels"
            )

    def _one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.num_classes).float()

    def _posterior(self, features: torch.Tensor, y: torch.Tensor) -> DiagonalGaussian:
        head = self.posterior_head(torch.cat([features, self._one_hot(y)], 1)).float()
        mean, raw_std = head.chunk(2, 1)
        return DiagonalGaussian(mean, F.softplus(raw_std) + MIN_STD)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters of p(x|z,y), in fp32 under bf16 autocast."""
        return self.decoder(torch.cat([z, self._one_hot(y)], 1)).float()

    def encode_labelled(self, x: torch.Tensor, labels: torch.Tensor) -> DiagonalGaussian:
        """q(z|x,y): the style code of images whose class is known."""
        x = self.preprocess(x)
        return self._posterior(self.encoder(x), labels.to(x.device))

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """q(z|x, y-hat) with y-hat the class the model finds most probable (``classify``)."""
        return self.encode_labelled(x, self.classify(x).argmax(1))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """The ELBO of log p(x|y) per class, evaluated at the posterior mean (deterministic);
        with the uniform p(y) these are the logits of p(y|x) up to the bound's gap."""
        x = self.preprocess(x)
        k = self.num_classes
        features = self.encoder(x).repeat_interleave(k, 0)
        y = torch.arange(k, device=x.device).repeat(len(x))
        posterior = self._posterior(features, y)
        recon = -self.likelihood.log_prob(self.decode(posterior.mean, y), x.repeat_interleave(k, 0))
        kl = posterior.kl_standard_normal().sum(1)
        return -(recon + kl).view(len(x), k)

    def loss(
        self, x: torch.Tensor, beta_scale: float = 1.0, *, labels: torch.Tensor | None = None
    ) -> LossTerms:
        """Batch-averaged -ELBO of log p(x|y); every image must carry its label."""
        if labels is None or bool((labels < 0).any()):
            raise ValueError("the cvae is trained on labelled images only (every label >= 0)")
        target = self.preprocess(x)
        y = labels.to(target.device)
        posterior = self.encode_labelled(target, y)
        recon = -self.likelihood.log_prob(self.decode(posterior.rsample(), y), target).mean()
        kl = posterior.kl_standard_normal().sum(1).mean()
        loss = recon + self.config.beta * beta_scale * kl
        return LossTerms(loss, {"recon": recon.detach(), "kl": kl.detach()})

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        prefix: int | None = None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean images of p(x|z,y); without ``labels`` the rows cycle through the classes."""
        self._prefix(prefix)
        if labels is None:
            labels = torch.arange(len(z), device=z.device) % self.num_classes
        return self.likelihood.mean(self.decode(z, labels.to(z.device)))

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, prefix: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reconstruction through the most probable class and the posterior mean of z."""
        y = self.classify(x).argmax(1)
        return self.generate(self.encode_labelled(x, y).mean, prefix, labels=y)


def _cvae(latent_dim: int) -> dict[str, Any]:
    return {"model.family": "cvae"}


FAMILY = register_family(
    Family(
        name="cvae",
        section=CVAESection,
        build=CVAE,
        help="conditional VAE: encoder and decoder read the class label (Sohn et al. 2015)",
        presets=(Preset("cvae", "cvae", _cvae, help="conditional VAE (every training label)"),),
    )
)
