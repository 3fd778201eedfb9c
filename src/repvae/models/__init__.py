"""VAE-family models built by composition (see ``vae.py``)."""

from repvae.models.distributions import DiagonalGaussian
from repvae.models.vae import VAE, LossTerms

__all__ = ["VAE", "DiagonalGaussian", "LossTerms"]
