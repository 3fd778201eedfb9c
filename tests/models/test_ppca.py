"""Probabilistic PCA against its closed form (Tipping & Bishop 1999) and scikit-learn's PPCA
log-density, and through the library as a run like any other."""

import json
import math

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from repvae.cli import main
from repvae.config import ConfigError, ModelConfig, from_dict
from repvae.evaluate.likelihood import likelihood_report
from repvae.models.ppca import PPCA, PPCASection
from repvae.represent import embed
from repvae.run import load

SHAPE = (1, 3, 4)  # 12 "pixels"
Q = 3


def _data(n: int = 4000, seed: int = 0) -> torch.Tensor:
    """Images in [0, 1] from a known 3-factor linear-Gaussian model."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0, 0.1, size=(12, Q))
    x = 0.5 + rng.normal(size=(n, Q)) @ loadings.T + rng.normal(0, 0.02, size=(n, 12))
    return torch.from_numpy(x.clip(0, 1)).float().view(n, *SHAPE)


def _fitted(images: torch.Tensor) -> PPCA:
    config = ModelConfig(family="ppca", latent_dim=Q, likelihood="gaussian", section=PPCASection())
    model = PPCA(config, SHAPE).double()
    model.fit(images)
    return model


def test_fit_matches_the_closed_form():
    images = _data()
    model = _fitted(images)
    x = images.flatten(1).double().numpy()
    covariance = np.cov(x, rowvar=False, bias=True)  # the ML covariance: 1/N
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    noise = eigenvalues[Q:].mean()
    loadings = eigenvectors[:, :Q] * np.sqrt(eigenvalues[:Q] - noise)
    w = model.loadings.numpy()
    assert model.noise_variance.item() == pytest.approx(noise, rel=1e-9)
    np.testing.assert_allclose(w @ w.T, loadings @ loadings.T, atol=1e-10)
    np.testing.assert_allclose(np.abs(w), np.abs(loadings), atol=1e-9)  # R = I: up to signs
    np.testing.assert_allclose(model.mean_image.numpy(), x.mean(0), atol=1e-12)


def test_log_density_matches_scikit_learns_ppca():
    images = _data()
    model = _fitted(images)
    x = images.flatten(1).double().numpy()
    reference = PCA(n_components=Q).fit(x)
    # scikit-learn divides the covariance by N - 1: the same model with its parameters
    n = len(x)
    with torch.no_grad():
        model.loadings.mul_(math.sqrt(n / (n - 1)))
        model.noise_variance.mul_(n / (n - 1))
    ours = model.log_marginal(images.double()).numpy()
    np.testing.assert_allclose(ours, reference.score_samples(x), rtol=1e-9)


def test_posterior_is_the_exact_gaussian_conditional():
    images = _data(500)
    model = _fitted(images)
    w, mu, s2 = model.loadings, model.mean_image, model.noise_variance
    x = images[:4].double()
    # p(z | x) from the joint Gaussian of (z, x): cov(z, x) = W^T, cov(x) = W W^T + s2 I
    cov_x = w @ w.T + s2 * torch.eye(12, dtype=torch.float64)
    gain = w.T @ torch.linalg.inv(cov_x)
    mean = (x.flatten(1) - mu) @ gain.T
    cov = torch.eye(Q, dtype=torch.float64) - gain @ w
    posterior = model.encode(x)
    torch.testing.assert_close(posterior.mean, mean)
    torch.testing.assert_close(torch.diag_embed(posterior.std[0].square()), cov)


def test_the_iwae_bound_is_exact_with_the_exact_posterior():
    images = _data(300)
    model = _fitted(images).float()
    report = likelihood_report(model, images[:50], samples=20, seed=0)
    exact = -model.log_marginal(images[:50]).double().mean().item()
    # log p(x, z) - log q(z|x) = log p(x) for every draw: the importance weights are all p(x)
    assert report["negative_iwae"]["nats"] == pytest.approx(exact, rel=1e-4)


def test_config_says_what_ppca_is():
    with pytest.raises(ConfigError, match=r"^model\.likelihood: ppca's p\(x\|z\) is Gaussian"):
        from_dict({"model": {"family": "ppca"}})
    with pytest.raises(ConfigError, match=r"^model\.architecture"):
        from_dict({"model": {"family": "ppca", "likelihood": "gaussian", "architecture": "conv"}})


def test_trains_in_closed_form_into_a_run_folder(tmp_path):
    run_dir = tmp_path / "ppca"
    assert main(["train", "--model", "ppca", "--latent-dim", "4", "--out", str(run_dir)]) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["fit"] == "closed form" and summary["epochs"] == 0
    assert np.isfinite(summary["best_val_loss"]) and not (run_dir / "checkpoints").exists()
    run = load(run_dir, device="cpu")
    emb = embed(run, ["map", "sample", "dist"], splits=("test",), save=False)
    assert {k: e.features["test"].shape[1] for (k, _), e in emb.items()} == {
        "map": 4,
        "sample": 4,
        "dist": 8,
    }
    assert run.model.sample(3).shape == (3, 1, 8, 8)
