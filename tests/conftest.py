import os

import pytest
import torch

from repvae.config import HeadConfig, ModelConfig
from repvae.models.vae import VAE, VAESection

torch.set_num_threads(min(2, os.cpu_count() or 1))

SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "datasets")


@pytest.fixture
def shared_datasets() -> str:
    if not os.path.isdir(os.path.join(SHARED, "MNIST", "raw")):
        pytest.skip("../shared/datasets is not present")
    return os.path.abspath(SHARED)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Caches (extracted archives, FID classifiers) go to a temporary folder, not ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def tiny_pixel_vae():
    """A factory of small PixelVAEs (2-component logistic mixture, 4-wide PixelCNN head) on
    ``shape`` images, fast enough to train or sample in a unit test."""

    def build(head: str = "local", horizon: int = 1, shape=(1, 6, 6), **vae) -> VAE:
        config = ModelConfig(
            latent_dim=3,
            architecture="mlp-bn",
            hidden=16,
            likelihood="logistic_mixture",
            n_mix=2,
            head=HeadConfig(kind=head, horizon=horizon, channels=4, layers=2, features=2),
            section=VAESection(**vae),
        )
        return VAE(config, shape)

    return build
