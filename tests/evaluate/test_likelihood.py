"""Likelihood bounds against exact answers: a decoder that ignores z makes log p(x) known."""

import math

import pytest
import torch

from repvae.config import ModelConfig
from repvae.evaluate.likelihood import likelihood_report
from repvae.models.distributions import DiagonalGaussian
from repvae.models.vae import VAE


def z_blind_model(likelihood: str, posterior_mean: float, posterior_std: float) -> VAE:
    """p(x|z) = p(x) for all z, and q(z|x) = N(mean, std^2) per dimension, for every x."""
    model = VAE(ModelConfig(latent_dim=3, likelihood=likelihood, hidden=8), (1, 4, 4)).eval()
    params = torch.randn(
        1, model.likelihood.out_channels(1), 4, 4, generator=torch.Generator().manual_seed(0)
    )

    def encode(x):
        shape = (x.shape[0], 3)
        return DiagonalGaussian(torch.full(shape, posterior_mean), torch.full(shape, posterior_std))

    model.encode = encode
    model.decode = lambda z, prefix=None, x=None: params.expand(z.shape[0], -1, -1, -1)
    model.exact_log_px = lambda x: model.likelihood.log_prob(params.expand(len(x), -1, -1, -1), x)
    return model


IMAGES = torch.randint(
    0, 256, (12, 1, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(1)
)


def exact_nats(model: VAE) -> float:
    return float(-model.exact_log_px(IMAGES / 255).double().mean())


def test_both_bounds_are_exact_when_the_posterior_is_the_prior():
    model = z_blind_model("logistic_mixture", 0.0, 1.0)
    report = likelihood_report(model, IMAGES, samples=7, batch_size=5)
    exact = exact_nats(model)
    assert report["negative_elbo"]["nats"] == pytest.approx(exact, rel=1e-5)
    assert report["negative_iwae"]["nats"] == pytest.approx(exact, rel=1e-5)
    bpd = exact / (16 * math.log(2))
    assert report["negative_iwae"]["bits_per_dim"] == pytest.approx(bpd, rel=1e-5)
    assert report["comparable_bits_per_dim"]


def test_elbo_pays_the_kl_and_iwae_closes_the_gap():
    mean, std = 0.5, 0.8
    model = z_blind_model("categorical256", mean, std)
    exact = exact_nats(model)
    kl = 3 * 0.5 * (std**2 + mean**2 - 1 - math.log(std**2))
    report = likelihood_report(model, IMAGES, samples=4000, batch_size=12, seed=3)
    assert report["negative_elbo"]["nats"] == pytest.approx(exact + kl, rel=1e-5)
    assert report["negative_iwae"]["nats"] == pytest.approx(exact, abs=0.1 * kl)  # 90% closed
    many = IMAGES.repeat(100, 1, 1, 1)  # K=2 is noisy per image: average over many
    small = likelihood_report(model, many, samples=2, batch_size=400, seed=3)
    assert exact < small["negative_iwae"]["nats"] < exact + kl  # K=2 sits in between


def test_continuous_likelihoods_are_flagged_not_comparable():
    model = z_blind_model("gaussian", 0.0, 1.0)
    report = likelihood_report(model, IMAGES, samples=2)
    assert not report["comparable_bits_per_dim"]
    assert report["negative_elbo"]["bits_per_dim"] is None
    assert "not comparable" in report["note"]
    with pytest.raises(ValueError, match="samples"):
        likelihood_report(model, IMAGES, samples=0)
