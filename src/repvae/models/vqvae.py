"""The VQ-VAE (van den Oord, Vinyals and Kavukcuoglu, "Neural Discrete Representation
Learning", 2017): a conv encoder gives a map of D-dimensional vectors z_e (D = ``latent_dim``),
each replaced by its nearest entry e_k of a codebook of K vectors, and the decoder reads the
quantised map z_q:

    loss = -log p(x | z_q) + beta * ||z_e - sg[e]||^2                 (EMA codebook, default)
    loss = -log p(x | z_q) + ||sg[z_e] - e||^2 + beta * ||z_e - sg[e]||^2   (model.vqvae.ema: false)

Gradients pass the quantiser unchanged (straight-through: z_q = z_e + sg[e - z_e]). With EMA
(decay 0.99, the paper's appendix) each code moves to the running mean of the encoder outputs
assigned to it, N_k <- g N_k + (1-g) n_k, m_k <- g m_k + (1-g) sum z_e, e_k = m_k / N_k (N
Laplace-smoothed), after the batch is quantised; the codebook loss is then dropped (one or the
other, not both). A code whose running count N_k falls below ``dead_code_threshold`` (assignments
per step; Jukebox restarts below 1) is re-initialised to one of the batch's encoder outputs.
The squared distances are summed over the map, like the reconstruction term over pixels, so
beta = 0.25 weighs them as in the paper whatever the image size.

The quantiser is ``vector-quantize-pytorch``'s ``VectorQuantize`` with its defaults pinned to
the paper: decay 0.99, no rotation trick (on by default there; plain straight-through here), no
k-means init, its own commitment loss off (it averages over elements; the terms above are
computed here). Representations: ``map`` is the quantised map flattened (D x h x w numbers),
``codes`` the bag-of-codes histogram (the share of the map's positions assigned to each of the
K codes). Codebook usage (perplexity, codes used) is logged per step and, over the whole
training set (perplexity depends on the batch size), written to the run's summary.

Sampling draws a code map from a learned prior, a small PixelCNN over the code indices (masked
convolutions from ``masked.py``: an embedding of each code, a type-A masked conv, residual
type-B masked convs, K logits per position), then decodes it. The paper trains that prior
afterwards on the frozen codes; here it trains in the same run on the detached codes (its
gradient never reaches the encoder or the codebook), so it ends on the final codes, and its
term, -log p(codes) summed over the map, makes the loss recon + prior the negative ELBO of the
VQ-VAE with that prior (q is one-hot, so its entropy is 0), plus the commitment (and codebook)
terms. ``model.vqvae.prior_layers: 0`` leaves the prior out, and sampling is then refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from repvae.config import AUTO_ARCHITECTURE, NO_HEAD, ModelConfig, Preset, Section
from repvae.config.errors import require
from repvae.models.contract import Capabilities, Family, LossTerms, Model, register_family
from repvae.models.distributions import NotADistribution
from repvae.models.likelihoods import build_likelihood
from repvae.models.masked import MaskedConv2d

MAX_STAGES = 2  # stride-2 stages: 28x28 -> 7x7, 32x32 -> 8x8 (the paper's CIFAR map)
SMALLEST_MAP = 4


@dataclass
class VQSection(Section):
    """``model.vqvae``: the codebook and the conv networks around it."""

    codebook_size: int = 128  # K (keras-io's MNIST VQ-VAE: 128; the paper's CIFAR: 512)
    commitment: float = 0.25  # beta
    ema: bool = True  # EMA codebook updates instead of the codebook loss
    decay: float = 0.99
    # re-initialise a code whose running count of assignments per step falls below this; 0: never
    dead_code_threshold: float = 1.0
    channels: int = 64  # width of the encoder and decoder
    # stride-2 stages of the encoder; null: halve while the sides stay even and >= 4 (at most 2)
    stages: int | None = None
    # the PixelCNN prior over the code map: residual masked layers (0: no prior) and width
    prior_layers: int = 4
    prior_channels: int = 64

    def check(self, model: ModelConfig) -> None:
        require("model.vqvae.codebook_size", self.codebook_size >= 2, "must be >= 2")
        require("model.vqvae.commitment", self.commitment >= 0, "must be >= 0")
        require("model.vqvae.decay", 0 < self.decay < 1, "must be in (0, 1)")
        require("model.vqvae.dead_code_threshold", self.dead_code_threshold >= 0, "must be >= 0")
        require("model.vqvae.channels", self.channels >= 1, "must be >= 1")
        require("model.vqvae.stages", self.stages is None or self.stages >= 0, "must be >= 0")
        require("model.vqvae.prior_layers", self.prior_layers >= 0, "must be >= 0")
        require("model.vqvae.prior_channels", self.prior_channels >= 1, "must be >= 1")
        require(
            "model.architecture",
            model.architecture == AUTO_ARCHITECTURE,
            "the vqvae family has its own conv networks (it encodes to a map, not a vector)",
        )
        require(
            "model.head.kind", model.head.kind == NO_HEAD, "the vqvae family has no PixelCNN head"
        )
        require("model.beta", model.beta == 1.0, "the vqvae family has no KL term to weigh")


def auto_stages(h: int, w: int) -> int:
    """Stride-2 stages that keep both sides whole and at least ``SMALLEST_MAP``."""
    stages = 0
    while stages < MAX_STAGES and h % 2 == 0 and w % 2 == 0 and min(h, w) // 2 >= SMALLEST_MAP:
        h, w, stages = h // 2, w // 2, stages + 1
    return stages


class _Residual(nn.Module):
    """The paper's residual block: ReLU, 3x3 conv, ReLU, 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def conv_encoder(channels_in: int, width: int, dim: int, stages: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for stage in range(stages):
        layers += [nn.Conv2d(channels_in if stage == 0 else width, width, 4, 2, 1), nn.ReLU()]
    return nn.Sequential(
        *layers,
        nn.Conv2d(width if stages else channels_in, width, 3, padding=1),
        _Residual(width),
        _Residual(width),
        nn.ReLU(),
        nn.Conv2d(width, dim, 1),
    )


def conv_decoder(dim: int, width: int, channels_out: int, stages: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(stages):
        layers += [nn.ConvTranspose2d(width, width, 4, 2, 1), nn.ReLU()]
    return nn.Sequential(
        nn.Conv2d(dim, width, 3, padding=1),
        _Residual(width),
        _Residual(width),
        nn.ReLU(),
        *layers,
        nn.Conv2d(width, channels_out, 3, padding=1),
    )


class _MaskedResidual(nn.Module):
    """ReLU, 3x3 type-B masked conv, ReLU, 1x1 conv: causal, as each position's input already
    is."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            MaskedConv2d(channels, channels, 3, "B"),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CodePrior(nn.Module):
    """p(codes) = prod over positions in raster order of Cat(k | earlier positions): a PixelCNN
    whose logits at (i, j) read only the codes before (i, j)."""

    def __init__(self, codebook_size: int, channels: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(codebook_size, channels)
        self.net = nn.Sequential(
            MaskedConv2d(channels, channels, 5, "A"),
            *(_MaskedResidual(channels) for _ in range(layers)),
            nn.ReLU(),
            nn.Conv2d(channels, codebook_size, 1),
        )

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        """Logits [B, K, h, w] for code maps [B, h, w]."""
        return self.net(self.embed(indices).permute(0, 3, 1, 2))

    def nll(self, indices: torch.Tensor) -> torch.Tensor:
        """-log p(codes) per map, in nats."""
        return F.cross_entropy(self(indices), indices, reduction="none").flatten(1).sum(1)

    @torch.no_grad()
    def sample(
        self, n: int, size: tuple[int, int], generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Code maps [n, h, w] drawn position by position in raster order."""
        device = self.embed.weight.device
        indices = torch.zeros(n, *size, dtype=torch.long, device=device)
        for i in range(size[0]):
            for j in range(size[1]):
                probs = self(indices)[:, :, i, j].float().softmax(1)
                indices[:, i, j] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return indices


@dataclass(frozen=True)
class CodeMap:
    """A VQ-VAE's encoding of a batch: ``mean`` the quantised map flattened (the ``map``
    representation) and ``codes`` the share of the map's positions per code (``codes``). It is
    deterministic, so there is nothing to draw."""

    mean: torch.Tensor
    codes: torch.Tensor

    def rsample(
        self, k: int | None = None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotADistribution(
            "a VQ-VAE encodes each image to its nearest codes, not a distribution to sample "
            "(use the map or codes representation)"
        )

    def prefix(self, m: int) -> CodeMap:
        raise NotADistribution("a VQ-VAE's code map has no nested prefixes")

    def flat_parameters(self) -> torch.Tensor:
        raise NotADistribution("a VQ-VAE's encoding has no distribution parameters")


def perplexity(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """exp(entropy of the codes' frequencies): K when every code is used equally, 1 when one
    code takes every position."""
    p = torch.bincount(indices.flatten(), minlength=codebook_size).float()
    p = p / p.sum()
    return torch.exp(-torch.special.xlogy(p, p).sum())


def nearest_codes(z_e: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each position of a map [B, D, h, w] replaced by its nearest (Euclidean) row of the
    K x D ``codebook``; returns the quantised map and the indices [B, h, w]."""
    b, d, h, w = z_e.shape
    flat = z_e.permute(0, 2, 3, 1).reshape(-1, d)
    distances = (
        flat.square().sum(1, keepdim=True) - 2 * flat @ codebook.T + codebook.square().sum(1)
    )
    indices = distances.argmin(1)
    quantised = codebook[indices].view(b, h, w, d).permute(0, 3, 1, 2)
    return quantised, indices.view(b, h, w)


class VQVAE(Model):
    def __init__(self, config: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__(config, shape, num_classes)
        # imported here, not at the top: it imports einx (about 1 s), which every other repvae
        # command would pay for; only building a VQ-VAE needs it
        from vector_quantize_pytorch import VectorQuantize

        self.options = cast(VQSection, config.options)
        options = self.options
        c, h, w = self.shape
        stages = auto_stages(h, w) if options.stages is None else options.stages
        if h % 2**stages or w % 2**stages:
            raise ValueError(
                f"model.vqvae.stages: {stages} stride-2 stages need sides divisible by "
                f"{2**stages}, got {h}x{w}"
            )
        self.map_shape = (self.latent_dim, h >> stages, w >> stages)
        self.likelihood = build_likelihood(config, c)
        out = self.likelihood.out_channels(c)
        self.encoder = conv_encoder(c, options.channels, self.latent_dim, stages)
        self.decoder = conv_decoder(self.latent_dim, options.channels, out, stages)
        self.quantizer = VectorQuantize(
            dim=self.latent_dim,
            codebook_size=options.codebook_size,
            decay=options.decay,
            commitment_weight=0.0,  # the commitment term is computed in ``loss``
            threshold_ema_dead_code=options.dead_code_threshold,
            rotation_trick=False,
            kmeans_init=False,
            accept_image_fmap=True,
            ema_update=options.ema,
            learnable_codebook=not options.ema,
        )
        self.prior = (
            CodePrior(options.codebook_size, options.prior_channels, options.prior_layers)
            if options.prior_layers
            else None
        )

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            continuous_posterior=False,
            likelihood_bound=False,
            generates=self.prior is not None,
            kinds={
                "codes": "bag-of-codes histogram: the share of the code map's positions "
                "assigned to each codebook entry"
            },
            unsupported={
                "continuous_posterior": "a VQ-VAE encodes each image to its nearest codes, not "
                "a density: its representations are map (the quantised vectors) and codes "
                "(the bag-of-codes histogram)",
                "likelihood_bound": "the likelihood bounds integrate over a Gaussian q(z|x); "
                "a VQ-VAE's negative ELBO is its recon + prior terms, in the training logs",
                "generates": "model.vqvae.prior_layers is 0: there is no prior over the code "
                "map to draw from",
            },
        )

    @property
    def discrete_likelihood(self) -> bool:
        return self.likelihood.discrete

    @property
    def codebook(self) -> torch.Tensor:
        """The K x D codebook."""
        return cast(torch.Tensor, self.quantizer.codebook)

    @property
    def representation_dim(self) -> int:
        """The ``map`` representation is the whole quantised map: D x h x w numbers."""
        d, h, w = self.map_shape
        return d * h * w

    def quantise(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The nearest codes of an encoder map [B, D, h, w] and their indices [B, h, w]. In
        training mode the library's quantiser updates the codebook's EMA and dead codes and
        passes gradients straight through to ``z_e``; in evaluation mode the same nearest-code
        rule is the plain lookup below, which the ONNX exporter can trace (the library's
        forward, with its buffers and training branches, it cannot)."""
        if self.training:
            quantised, indices, _ = self.quantizer(z_e.float())
            return quantised, indices
        return nearest_codes(z_e.float(), self.codebook)

    def loss(
        self, x: torch.Tensor, beta_scale: float = 1.0, *, labels: torch.Tensor | None = None
    ) -> LossTerms:
        """Batch means of the reconstruction, commitment, codebook (without EMA) and code prior
        terms (see the module docstring); labels and the KL warm-up do not apply."""
        target = self.preprocess(x)
        z_e = self.encoder(target).float()
        z_q, indices = self.quantise(z_e)
        recon = -self.likelihood.log_prob(self.decoder(z_q).float(), target).mean()
        commitment = (z_e - z_q.detach()).square().flatten(1).sum(1).mean()
        loss = recon + self.options.commitment * commitment
        terms = {"recon": recon.detach(), "commitment": commitment.detach()}
        if not self.options.ema:
            codes = self.quantizer.get_codes_from_indices(indices)  # with the codebook's gradient
            codebook = (codes - z_e.detach()).square().flatten(1).sum(1).mean()
            loss = loss + codebook
            terms["codebook"] = codebook.detach()
        if self.prior is not None:
            prior = self.prior.nll(indices).mean()  # the codes are indices: no gradient back
            loss = loss + prior
            terms["prior"] = prior.detach()
        k = self.options.codebook_size
        terms["perplexity"] = perplexity(indices, k)
        terms["codes_used"] = torch.tensor(float(torch.unique(indices).numel()), device=x.device)
        return LossTerms(loss, terms)

    def encode(self, x: torch.Tensor) -> CodeMap:
        z_q, indices = self.quantise(self.encoder(self.preprocess(x)))
        histogram = F.one_hot(indices.flatten(1), self.options.codebook_size).float().mean(1)
        return CodeMap(z_q.flatten(1).float(), histogram)

    @torch.no_grad()
    def generate(
        self,
        z: torch.Tensor,
        prefix: int | None = None,
        generator: torch.Generator | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The decoder's mean image for flattened code maps (reconstructions, interpolations;
        drawing the codes needs the prior this family lacks)."""
        self._prefix(prefix)
        return self.likelihood.mean(self.decoder(z.view(-1, *self.map_shape)).float())

    @torch.no_grad()
    def sample(
        self,
        n: int,
        generator: torch.Generator | None = None,
        prefix: int | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Images decoded from code maps drawn from the PixelCNN prior."""
        if self.prior is None:
            raise self.unsupported("generates")
        indices = self.prior.sample(n, self.map_shape[1:], generator)
        z_q = self.quantizer.get_codes_from_indices(indices)
        return self.generate(z_q.flatten(1), prefix, generator)

    @torch.no_grad()
    def training_summary(self, images: torch.Tensor) -> dict[str, float]:
        """Codebook usage over every position of the training images' code maps."""
        codes = self.in_batches(
            images, lambda x: self.quantise(self.encoder(self.preprocess(x)))[1].flatten().cpu()
        )
        indices = torch.cat(codes)
        k = self.options.codebook_size
        used = int(torch.unique(indices).numel())
        return {
            "codebook_perplexity": float(perplexity(indices, k)),
            "codes_used": used,
            "dead_codes": k - used,
        }


def _vqvae(latent_dim: int) -> dict[str, Any]:
    return {"model.family": "vqvae"}


FAMILY = register_family(
    Family(
        name="vqvae",
        section=VQSection,
        build=VQVAE,
        help="VQ-VAE: a codebook, straight-through gradients, EMA updates, a PixelCNN code prior",
        uses_networks=False,
        presets=(Preset("vqvae", "vqvae", _vqvae, help="VQ-VAE (van den Oord et al. 2017)"),),
    )
)
