"""VAE-family models built by composition (see ``vae.py``; M2 in ``semisupervised.py``)."""

from repvae.config import ModelConfig
from repvae.models.distributions import DiagonalGaussian
from repvae.models.semisupervised import M2
from repvae.models.vae import VAE, LossTerms

Model = VAE | M2


def build_model(config: ModelConfig, shape: tuple[int, int, int], num_classes: int) -> Model:
    """The model ``config.family`` names, for images of ``shape`` in ``num_classes`` classes."""
    if config.family == "m2":
        return M2(config, shape, num_classes)
    return VAE(config, shape)


__all__ = ["M2", "VAE", "DiagonalGaussian", "LossTerms", "Model", "build_model"]
