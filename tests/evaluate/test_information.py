"""Information metrics against known answers: closed forms, torch.distributions, built spectra."""

import itertools
import json

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from repvae.evaluate.information import (
    ID_THRESHOLDS,
    active_units,
    conditional_entropy,
    dimension_for_variance,
    information_report,
    intrinsic_dimension,
    kl_per_dimension,
    mutual_information,
)
from repvae.models.distributions import DiagonalGaussian


def partly_active(n: int = 2000, d: int = 10, k: int = 4, seed: int = 0) -> np.ndarray:
    """Means with k dims of variance 1; the rest are constant plus noise of variance 1e-4."""
    rng = np.random.default_rng(seed)
    means = rng.normal(3.0, 1e-2, size=(n, d))
    means[:, :k] = rng.normal(size=(n, k))
    return means


def posterior(n: int = 50, d: int = 6, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.uniform(0.1, 2.0, size=(n, d))


def subspace(n: int = 3000, d: int = 12, k: int = 3, noise: float = 1e-3, seed: int = 2):
    """Points in a random k-dimensional linear subspace of R^d, plus isotropic noise."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(d, k)))
    return rng.normal(size=(n, k)) @ basis.T + noise * rng.normal(size=(n, d)) + 5.0


def test_active_units_counts_varying_dims_and_respects_threshold():
    means = partly_active(k=4)
    au = active_units(means)
    assert au.count == 4 and au.threshold == 0.01
    assert au.variances.shape == (10,)
    np.testing.assert_allclose(au.variances, means.var(axis=0))
    assert active_units(means, threshold=1e-5).count == 10  # the noise dims pass a tiny cut
    assert active_units(means, threshold=10.0).count == 0


def test_mutual_information_is_zero_at_the_prior():
    assert mutual_information(np.zeros((7, 5)), np.ones((7, 5))) == 0.0


def test_mutual_information_matches_closed_form_and_torch():
    mu, sigma = posterior()
    by_hand = (0.5 * (sigma**2 + mu**2 - 1 - np.log(sigma**2))).sum(axis=1).mean()
    assert mutual_information(mu, sigma) == pytest.approx(by_hand, rel=1e-12)
    mu_t, sigma_t = torch.from_numpy(mu), torch.from_numpy(sigma)
    reference = kl_divergence(Normal(mu_t, sigma_t), Normal(0.0, 1.0)).sum(-1).mean().item()
    assert mutual_information(mu, sigma) == pytest.approx(reference, rel=1e-10)
    model_kl = DiagonalGaussian(mu_t, sigma_t).kl_standard_normal().mean(0).numpy()
    np.testing.assert_allclose(kl_per_dimension(mu, sigma), model_kl, rtol=1e-10)


def test_conditional_entropy_matches_torch():
    _, sigma = posterior()
    reference = Normal(torch.zeros(sigma.shape), torch.from_numpy(sigma)).entropy()
    assert conditional_entropy(sigma) == pytest.approx(reference.sum(-1).mean().item(), rel=1e-10)


def test_intrinsic_dimension_of_a_subspace():
    ident = intrinsic_dimension(subspace(k=3))
    assert ident.count == 3
    assert ident.eigenvalues.shape == (12,)
    assert np.all(np.diff(ident.eigenvalues) <= 0)
    assert ident.eigenvalues.sum() == pytest.approx(subspace(k=3).var(axis=0).sum(), rel=1e-10)
    assert ident.explained_variance_ratio.sum() == pytest.approx(1.0)


def test_intrinsic_dimension_of_isotropic_data_is_full():
    x = np.random.default_rng(3).normal(size=(4000, 8))
    assert intrinsic_dimension(x).count == 8
    assert intrinsic_dimension(x, threshold=0.5, relative=False).count == 8
    assert intrinsic_dimension(x, threshold=2.0, relative=False).count == 0


def test_intrinsic_dimension_threshold_sweep_is_monotone():
    # a geometric spectrum 1, 0.1, 0.01, ... so that every threshold of the sweep cuts differently
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5000, 6)) * np.sqrt(10.0 ** -np.arange(6))
    counts = intrinsic_dimension(x).counts_by_threshold
    assert list(counts) == sorted(ID_THRESHOLDS)
    values = list(counts.values())
    assert all(a >= b for a, b in itertools.pairwise(values))
    assert values[0] > values[-1]


def test_dimension_for_variance_on_a_known_spectrum():
    # exact variances 8, 4, 2, 1, 1 (sum 16): scaled zero-mean, orthogonal Hadamard columns
    h2 = np.array([[1.0, 1.0], [1.0, -1.0]])
    hadamard = np.kron(h2, np.kron(h2, h2))
    x = hadamard[:, 1:6] * np.sqrt([8.0, 4.0, 2.0, 1.0, 1.0])
    np.testing.assert_allclose(intrinsic_dimension(x).eigenvalues, [8, 4, 2, 1, 1], atol=1e-9)
    assert dimension_for_variance(x, 0.5) == 1  # 8/16 reached exactly
    assert dimension_for_variance(x, 0.7) == 2  # 12/16
    assert dimension_for_variance(x, 0.9) == 4  # 15/16
    assert dimension_for_variance(x, 1.0) == 5
    assert dimension_for_variance(np.ones((4, 3))) == 0


def test_numpy_and_torch_inputs_agree_and_report_is_json():
    mu, sigma = posterior()
    from_numpy = information_report(mu, sigma)
    from_torch = information_report(torch.from_numpy(mu), torch.from_numpy(sigma))
    assert from_numpy == from_torch
    assert json.loads(json.dumps(from_numpy)) == from_numpy
    assert from_numpy["active_units"] == active_units(mu).count
    assert from_numpy["mutual_information"] == mutual_information(mu, sigma)


def test_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="positive"):
        conditional_entropy(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="same shape"):
        mutual_information(np.zeros((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        active_units(np.zeros(5))
