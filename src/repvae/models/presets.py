"""Model-family presets for ``--model``: each is a handful of model.* settings, not a class.

- ``vae``: the true ELBO (beta = 1). ``beta-vae``: set ``--beta``.
- ``infovae``: the MMD-VAE of the reference project: reconstruction + lam * MMD, no KL
  (alpha = 1), lam = 100. Measured on MNIST (10,000 images, 3 epochs, latent 16, MLP probe):
  lam = 1000 collapses the posterior (std 1.05, means spread 0.23: MAP 67.6 %, samples 25.7 %)
  because MMD is matched fastest by inflating every posterior's std; lam = 100 gives MAP 89.2 %
  and samples 87.6 % with the aggregate posterior matching the prior (means spread 1.05); lam =
  10 is nearly deterministic (std 0.016) and its aggregate is 1.5x wider than the prior
  (benchmarks/infovae_lambda.py).
- ``mvae`` / ``minfovae``: Matryoshka nesting [2, 8, 16, 32, 64, 128] capped at latent_dim
  (the full size is always included), on top of the VAE / InfoVAE losses.
- ``pixelvae-h0`` / ``lpvae-h1`` / ``lpvae-h2`` / ``fpvae``: Zhang et al.'s decoders on 8-bit
  pixels (discretised logistic mixture): the same PixelCNN head with dependency horizon 0
  (conditionally independent), 1, 2, and the full PixelCNN head.
- ``m2``: Kingma et al.'s semi-supervised model (set ``train.labelled`` to the labels it sees).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

DEFAULT_NESTING = (2, 8, 16, 32, 64, 128)
INFOVAE_LAMBDA = 100.0


def nesting_for(latent_dim: int) -> list[int]:
    return sorted({m for m in DEFAULT_NESTING if m < latent_dim} | {latent_dim})


def _vae(latent_dim: int) -> dict[str, Any]:
    return {"model.family": "vae", "model.alpha": 0.0, "model.lam": 1.0, "model.nesting": None}


def _infovae(latent_dim: int) -> dict[str, Any]:
    return {
        "model.family": "vae",
        "model.alpha": 1.0,
        "model.lam": INFOVAE_LAMBDA,
        "model.nesting": None,
    }


def _nested(base: Callable[[int], dict[str, Any]]) -> Callable[[int], dict[str, Any]]:
    return lambda latent_dim: {**base(latent_dim), "model.nesting": nesting_for(latent_dim)}


def _pixel(head: str, horizon: int = 0) -> Callable[[int], dict[str, Any]]:
    return lambda latent_dim: {
        **_vae(latent_dim),
        "model.likelihood": "logistic_mixture",
        "model.decoder_head": head,
        "model.horizon": horizon,
    }


# The separately trained preset each nested preset replaces (for training-cost comparisons).
UNNESTED: dict[str, str] = {"mvae": "vae", "minfovae": "infovae"}

PRESETS: dict[str, Callable[[int], dict[str, Any]]] = {
    "vae": _vae,
    "beta-vae": _vae,
    "infovae": _infovae,
    "mvae": _nested(_vae),
    "minfovae": _nested(_infovae),
    "pixelvae-h0": _pixel("local", 0),
    "lpvae-h1": _pixel("local", 1),
    "lpvae-h2": _pixel("local", 2),
    "fpvae": _pixel("full"),
    "m2": lambda latent_dim: {**_vae(latent_dim), "model.family": "m2"},
}
