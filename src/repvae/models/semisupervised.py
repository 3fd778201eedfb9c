"""The M2 model of Kingma, Rezende, Mohamed, Welling, "Semi-Supervised Learning with Deep
Generative Models" (2014): the class y is a second latent variable, observed for the few
labelled images and inferred for the rest.

    p(y) = Cat(1/K),  p(z) = N(0, I),  p(x | y, z)               (generative model)
    q(y | x) = Cat(classifier(x)),  q(z | x, y) = N(mu(x, y), sigma(x, y))    (inference)

    labelled:    L(x, y) = -E_q(z|x,y)[log p(x|y,z)] + KL(q(z|x,y) || p(z)) - log p(y)
    unlabelled:  U(x)    = sum_y q(y|x) L(x, y) - H(q(y|x))       (the negative ELBO of p(x))
    J_alpha = sum_labelled [L(x, y) - alpha log q(y|x)] + sum_unlabelled U(x),  alpha = 0.1 N

The classification term is the paper's: without it q(y|x) would learn only from unlabelled data.
Each step sees one unlabelled and one labelled batch. Two readings of J_alpha are in use
(``model.m2.objective``):

- ``dataset`` (default; Kingma et al.'s sums over the data set): the two batch means are
  weighted by the data set's labelled fraction f, so a step's loss is an unbiased estimate of
  J_alpha / N whatever the batch sizes: f (mean L + alpha mean CE) + (1 - f) mean U, with
  alpha = 0.1 N;
- ``batch`` (Zhang et al. 2022's LPVAE-M2 and common PyTorch ports): the batch means added
  with equal weight, mean L + mean U + alpha mean CE, with alpha = 0.1 (N + M) / M for M labels
  in N + M images. At 100 MNIST labels the classification term weighs 54 times a nat of the
  unlabelled bound here, against 10 times under ``dataset``.

The encoder, decoder and likelihood are the same pieces the VAE composes.

With a PixelCNN head (``model.head``, an 8-bit likelihood) the decoder is a Local or Full
PixelVAE decoder: p(x | y, z) is autoregressive over nearby pixels, which leaves z and y to carry
the global content. That is Zhang et al.'s LPVAE-M2 (2022, Table 6; preset ``lpvae-m2``), and
by construction only the decoder changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from repvae.config import NO_HEAD, ModelConfig, Preset, Section
from repvae.config.errors import choice, require
from repvae.models.contract import Capabilities, Family, LossTerms, Model, register_family
from repvae.models.distributions import DiagonalGaussian
from repvae.models.likelihoods import build_likelihood
from repvae.models.networks import architecture
from repvae.models.pixelcnn import PixelHead, ancestral_sample, build_head, to_signed
from repvae.models.vae import MIN_STD

M2_OBJECTIVES = ("dataset", "batch")


@dataclass
class M2Section(Section):
    """``model.m2``: the weight of the labelled images' classification loss."""

    # alpha of J_alpha; null: 0.1 N under the dataset objective, 0.1 (N + M) / M under batch
    classifier_weight: float | None = None
    # how the labelled and unlabelled terms are weighed (module docstring)
    objective: str = "dataset"

    def check(self, model: ModelConfig) -> None:
        require(
            "model.m2.classifier_weight",
            self.classifier_weight is None or self.classifier_weight >= 0,
            "must be >= 0 (or null for the objective's default)",
        )
        choice("model.m2.objective", self.objective, M2_OBJECTIVES)


M2_CODE_NOTE = (
    "z is q(z|x, y) at the classifier's guess y: the style code M2 keeps apart from the class, "
    "so a label probe on it measures what of the class leaks into the style; M2's "
    "representation of the class is its classifier q(y|x) (the classifier metric)"
)


class M2(Model):
    """Semi-supervised VAE; ``encode(x)`` is q(z | x, y-hat) with y-hat the classifier's guess,
    so z is the *style* code that the model keeps apart from the class."""

    def __init__(self, config: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(config, shape, num_classes)
        self.options = cast(M2Section, config.options)
        self.likelihood = build_likelihood(config, self.shape[0])
        arch = architecture(config.architecture, self.shape)
        hidden = config.hidden
        self.classifier = arch.encoder(self.shape, num_classes, hidden)
        self.encoder = arch.encoder(self.shape, hidden, hidden)
        # q(z|x,y): image features and the one-hot class meet in an MLP.
        self.posterior_head = nn.Sequential(
            nn.ReLU(),
            nn.Linear(hidden + num_classes, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 2 * self.latent_dim),
        )
        params = self.likelihood.out_channels(self.shape[0])
        with_head = config.head.kind != NO_HEAD
        out = config.head.features if with_head else params
        self.decoder = arch.decoder(self.latent_dim + num_classes, self.shape, out, hidden)
        # The PixelCNN head of LPVAE-M2 (none: p(x|y,z) is conditionally independent).
        self.heads = nn.ModuleList(
            [build_head(config.head, self.shape[0], params)] if with_head else []
        )
        # Set by training from the labelled subset: the weights of the labelled and unlabelled
        # batch means, and alpha. Defaults make ``loss`` without labels the unsupervised bound.
        self.labelled_weight = 0.0
        self.unlabelled_weight = 1.0
        self.classifier_weight = 0.0

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            classifier=True,
            needs_labels=True,
            conditional=True,
            code_note=M2_CODE_NOTE,
            autoregressive=self.autoregressive,
            likelihood_bound=False,
            unsupported={
                "likelihood_bound": "the bound on p(x) would need the class marginalised as a "
                "second latent; not implemented for m2",
            },
        )

    @property
    def autoregressive(self) -> bool:
        return bool(self.heads) and self._head.autoregressive

    @property
    def _head(self) -> PixelHead:
        return cast(PixelHead, self.heads[0])  # ModuleList items are typed as plain Modules

    @property
    def discrete_likelihood(self) -> bool:
        return self.likelihood.discrete

    def label_budget(self, labelled: int, total: int) -> None:
        """The weights of the labelled and unlabelled terms, and alpha
        (``model.m2.classifier_weight``, or the objective's default)."""
        weight = self.options.classifier_weight
        if self.options.objective == "batch":
            self.labelled_weight = self.unlabelled_weight = 1.0
            self.classifier_weight = 0.1 * total / labelled if weight is None else weight
            return
        self.labelled_weight = labelled / total
        self.unlabelled_weight = 1.0 - self.labelled_weight
        self.classifier_weight = 0.1 * total if weight is None else weight

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of q(y|x)."""
        return self.classifier(self.preprocess(x)).float()  # fp32 under bf16 autocast

    def _one_hot(self, y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, self.num_classes).float()

    def _posterior(self, features: torch.Tensor, y: torch.Tensor) -> DiagonalGaussian:
        head = self.posterior_head(torch.cat([features, self._one_hot(y)], 1)).float()
        mean, raw_std = head.chunk(2, 1)
        return DiagonalGaussian(mean, F.softplus(raw_std) + MIN_STD)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> DiagonalGaussian:
        """q(z|x,y); without ``y`` the classifier's most probable class is used."""
        x = self.preprocess(x)
        if y is None:
            y = self.classifier(x).argmax(1)
        return self._posterior(self.encoder(x), y)

    def _features(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """The decoder's output for (z, y); without ``y`` the rows cycle through the classes."""
        if y is None:
            y = torch.arange(len(z), device=z.device) % self.num_classes
        return self.decoder(torch.cat([z, self._one_hot(y)], 1))

    def decode(
        self, z: torch.Tensor, y: torch.Tensor | None = None, x: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Likelihood parameters of p(x|y,z); a PixelCNN head also reads the image ``x`` (in
        [0, 1]) under teacher forcing."""
        features = self._features(z, y)
        if not self.heads:
            return features.float()  # the likelihood's parameters in fp32 under autocast
        return self._head(features, None if x is None else to_signed(x)).float()

    def _negative_bound(
        self, features: torch.Tensor, x: torch.Tensor, y: torch.Tensor, kl_weight: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L(x, y) per row, with its reconstruction and KL terms."""
        posterior = self._posterior(features, y)
        z = posterior.rsample()
        recon = -self.likelihood.log_prob(self.decode(z, y, x), x)
        kl = posterior.kl_standard_normal().sum(1)
        return recon + kl_weight * kl + math.log(self.num_classes), recon, kl

    def loss(
        self, x: torch.Tensor, beta_scale: float = 1.0, *, labels: torch.Tensor | None = None
    ) -> LossTerms:
        """J_alpha / N for a batch; ``labels`` < 0 (or no labels) marks unlabelled images."""
        x = self.preprocess(x)
        kl_weight = self.config.beta * beta_scale
        if labels is None:
            labels = torch.full((len(x),), -1, dtype=torch.long)  # all unlabelled
        labels = labels.to(x.device)
        observed = labels >= 0
        logits = self.classifier(x).float()
        features = self.encoder(x)
        terms: dict[str, torch.Tensor] = {}
        total = x.new_zeros(())
        recon_parts, kl_parts = [], []
        if observed.any():
            y = labels[observed]
            bound, recon, kl = self._negative_bound(features[observed], x[observed], y, kl_weight)
            ce = F.cross_entropy(logits[observed], y)
            total = total + self.labelled_weight * (bound.mean() + self.classifier_weight * ce)
            recon_parts.append(recon)
            kl_parts.append(kl)
            terms["ce"] = ce.detach()
            terms["accuracy"] = (logits[observed].argmax(1) == y).float().mean()
        if not observed.all():
            # Every unlabelled image is decoded once per class: K rows per image.
            k = self.num_classes
            hidden = ~observed
            n = int(hidden.sum())
            y = torch.arange(k, device=x.device).repeat(n)
            bound, recon, kl = self._negative_bound(
                features[hidden].repeat_interleave(k, 0),
                x[hidden].repeat_interleave(k, 0),
                y,
                kl_weight,
            )
            log_q = F.log_softmax(logits[hidden], 1)
            q = log_q.exp()
            unlabelled = (q * (bound.view(n, k) + log_q)).sum(1)
            total = total + self.unlabelled_weight * unlabelled.mean()
            recon_parts.append((q * recon.view(n, k)).sum(1))
            kl_parts.append((q * kl.view(n, k)).sum(1))
            terms["entropy_y"] = -(q * log_q).sum(1).mean().detach()
        terms["recon"] = torch.cat(recon_parts).mean().detach()
        terms["kl"] = torch.cat(kl_parts).mean().detach()
        return LossTerms(total, terms)

    def validation_loss(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> LossTerms:
        """The unsupervised bound U(x): the model is selected without the validation labels it
        would not have in practice."""
        return self.loss(x)

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        prefix: int | None = None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean images of p(x|y,z), or for a PixelCNN decoder an ancestral draw; without
        ``labels`` the rows cycle through the classes."""
        self._prefix(prefix)
        if not self.autoregressive:
            return self.likelihood.mean(self.decode(z, labels))
        features = self._features(z, labels)
        return ancestral_sample(self._head, self.likelihood, features, self.shape[0], generator)

    @torch.no_grad()
    def reconstruct(
        self, x: torch.Tensor, prefix: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Reconstruction through the classifier's class and the posterior mean of z."""
        y = self.classify(x).argmax(1)
        return self.generate(self.encode(x, y).mean, prefix, generator, labels=y)


def _m2(latent_dim: int) -> dict[str, Any]:
    return {"model.family": "m2"}


def _lpvae_m2(latent_dim: int) -> dict[str, Any]:
    """Zhang et al.'s LPVAE-M2: M2 with the Local PixelVAE decoder of horizon 1 on 8-bit
    pixels (the discretised logistic mixture). M2 decodes every unlabelled image once per
    class, so the head runs on 10x the batch: a narrower head (8 feature maps, width 16) and 3
    mixture components keep a CPU step near the plain decoder's order of cost
    (results/lpvae-m2-mnist has the measured step times)."""
    return {
        "model.family": "m2",
        "model.likelihood": "logistic_mixture",
        "model.n_mix": 3,
        "model.head.kind": "local",
        "model.head.horizon": 1,
        "model.head.features": 8,
        "model.head.channels": 8,
    }


FAMILY = register_family(
    Family(
        name="m2",
        section=M2Section,
        build=M2,
        help="Kingma et al.'s semi-supervised M2 (set train.labelled)",
        presets=(
            Preset("m2", "m2", _m2, help="semi-supervised M2 (train.labelled labels)"),
            Preset("lpvae-m2", "m2", _lpvae_m2, help="M2 with the Local PixelVAE decoder (h = 1)"),
        ),
    )
)
