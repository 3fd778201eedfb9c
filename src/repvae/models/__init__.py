"""Model families behind one contract (``contract.py``), each in its own module.

Importing this package registers the likelihoods, networks and decoder heads models are built
from, and the built-in families with their presets. A new family is a new module with one
``register_family`` call, plus its import line below.
"""

# The options (likelihoods, networks, heads) and the families register themselves on import.
import repvae.models.autoencoder
import repvae.models.cvae
import repvae.models.discretized
import repvae.models.hierarchical
import repvae.models.likelihoods
import repvae.models.multimodal
import repvae.models.networks
import repvae.models.pixelcnn
import repvae.models.ppca
import repvae.models.semisupervised
import repvae.models.vae
import repvae.models.vqvae
from repvae.models.contract import (
    Capabilities,
    Family,
    LossTerms,
    Model,
    Unsupported,
    build_model,
    register_family,
)
from repvae.models.distributions import DiagonalGaussian, PointMass, Posterior
from repvae.models.semisupervised import M2
from repvae.models.vae import VAE

__all__ = [
    "M2",
    "VAE",
    "Capabilities",
    "DiagonalGaussian",
    "Family",
    "LossTerms",
    "Model",
    "PointMass",
    "Posterior",
    "Unsupported",
    "build_model",
    "register_family",
]
