"""FID must match closed forms, and the domain classifier must be good, cached and reused."""

import importlib.machinery
import json
import sys
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from repvae.config import ModelConfig
from repvae.data import ImageData, load_dataset
from repvae.evaluate import fid
from repvae.evaluate.fid import (
    DOMAIN_NOTE,
    METRIC,
    InceptionUnavailable,
    classifier_accuracy,
    domain_features,
    domain_fid,
    feature_statistics,
    fid_report,
    frechet_distance,
    inception_fid,
    load_or_train_domain_classifier,
    train_domain_classifier,
)
from repvae.models import VAE
from repvae.models.autoencoder import Autoencoder


def random_cov(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(d, 2 * d))
    return a @ a.T / (2 * d)


def test_identical_statistics_are_at_distance_zero() -> None:
    mu, sigma = np.arange(6.0), random_cov(6, 0)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_one_dimensional_gaussians_match_the_closed_form() -> None:
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
    got = frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-2.0]), np.array([[9.0]]))
    assert got == pytest.approx(3.0**2 + (2.0 - 3.0) ** 2)


def test_diagonal_covariances_match_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.1, 3, size=5), rng.uniform(0.1, 3, size=5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected)


def test_distance_is_symmetric_for_full_covariances() -> None:
    mu1, mu2, s1, s2 = np.zeros(8), np.ones(8), random_cov(8, 2), random_cov(8, 3)
    d12, d21 = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert d12 == pytest.approx(d21, rel=1e-9)
    assert d12 > 8.0  # at least the squared mean difference


def test_singular_covariances_give_the_right_distance() -> None:
    # Rank-1 covariances: the product is singular (as with dead ReLU features), yet the distance
    # must still be finite and right.
    s1, s2 = np.diag([1.0, 0.0]), np.diag([4.0, 0.0])
    assert frechet_distance(np.zeros(2), s1, np.zeros(2), s2) == pytest.approx(1.0, abs=1e-4)


def test_feature_statistics_are_mean_and_unbiased_covariance() -> None:
    x = np.random.default_rng(4).normal(size=(50, 3))
    mu, sigma = feature_statistics(x)
    np.testing.assert_allclose(mu, x.mean(0))
    np.testing.assert_allclose(sigma, np.cov(x.T))
    with pytest.raises(ValueError, match="N >= 2"):
        feature_statistics(x[:1])


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fid-cache")


def test_one_epoch_on_digits_beats_80_percent(digits: ImageData) -> None:
    classifier = train_domain_classifier(
        digits.train.images, digits.train.labels, epochs=1, seed=0, device="cpu"
    )
    assert classifier_accuracy(classifier, digits.test.images, digits.test.labels) > 0.8
    assert domain_features(classifier, digits.test.images).shape == (len(digits.test), 128)


def test_cached_classifier_reloads_to_identical_features(
    digits: ImageData, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trained = load_or_train_domain_classifier(digits, cache, device="cpu")
    assert len(list(cache.glob("*.safetensors"))) == 1

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cached classifier should have been loaded")

    monkeypatch.setattr(fid, "train_domain_classifier", no_training)
    loaded = load_or_train_domain_classifier(digits, cache, device="cpu")
    images = digits.test.images
    np.testing.assert_array_equal(domain_features(trained, images), domain_features(loaded, images))


def test_domain_fid_is_zero_on_itself_and_large_on_noise(digits: ImageData, cache: Path) -> None:
    classifier = load_or_train_domain_classifier(digits, cache, device="cpu")
    test = digits.test.images
    noise = torch.randint(0, 256, test.shape, generator=torch.Generator().manual_seed(0))
    itself = domain_fid(test, test, classifier)
    reference = domain_fid(digits.train.images, test, classifier)
    assert abs(itself) < 1e-6
    assert domain_fid(noise.to(torch.uint8), test, classifier) > 20 * reference > 0
    # Float images in [0, 1] are quantised exactly like the uint8 images they came from.
    assert abs(domain_fid(test.float() / 255, test, classifier)) < 1e-6


def test_inception_without_weights_says_what_to_install_and_where(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    images = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(InceptionUnavailable) as info:
        inception_fid(images, images)
    message = str(info.value)
    assert "pip install pytorch-fid" in message
    assert str(tmp_path / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth") in message
    assert (
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
        "pt_inception-2015-12-05-6726825d.pth"
    ) in message


def test_fid_report_is_json_ready_and_caps_n(
    digits: ImageData, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    torch.manual_seed(0)
    model = VAE(ModelConfig(latent_dim=4, hidden=16), digits.shape).eval()
    report = fid_report(model, digits, n=100_000, seed=0, cache_dir=cache, device="cpu")
    assert json.loads(json.dumps(report)) == report
    assert report["note"] == DOMAIN_NOTE
    assert report["n"] == len(digits.test)
    assert report["classifier"]["from_cache"] is True  # trained by the tests above
    assert report["classifier"]["test_accuracy"] > 0.8
    # An untrained VAE's blurry samples are far from the data; train vs test images are close.
    assert report["domain_fid"] > 5 * report["domain_fid_reference"] > 0
    # an untrained decoder's reconstructions are blurred images too: far from the test images
    assert report["domain_fid_reconstructions"] > 5 * report["domain_fid_reference"]
    assert report["samples_missing"] is None
    assert report["inception_fid"] is None and report["inception_fid_reconstructions"] is None
    assert "pip install pytorch-fid" in report["inception_fid_missing"]
    again = fid_report(model, digits, n=100, seed=0, cache_dir=cache, device="cpu", inception=False)
    assert again["n"] == 100 and again["inception_fid_missing"] == "skipped (inception=False)"


def test_a_model_without_a_prior_gets_the_fid_of_its_reconstructions_alone(
    digits: ImageData, cache: Path
) -> None:
    torch.manual_seed(0)
    ae = Autoencoder(ModelConfig(family="ae", latent_dim=4, hidden=16), digits.shape).eval()
    report = fid_report(ae, digits, n=200, seed=0, cache_dir=cache, device="cpu", inception=False)
    assert report["domain_fid"] is None and "no prior" in report["samples_missing"]
    assert report["domain_fid_reconstructions"] > 0
    assert METRIC.headline(report) == {
        "domain_fid_reconstructions": report["domain_fid_reconstructions"],
        "domain_fid_reference": report["domain_fid_reference"],
    }
    # perfect reconstructions are at distance zero: the test images against themselves
    ae.reconstruct = lambda x, prefix=None, generator=None: x  # type: ignore[method-assign]
    again = fid_report(ae, digits, n=200, seed=0, cache_dir=cache, device="cpu", inception=False)
    assert abs(again["domain_fid_reconstructions"]) < 1e-6


def test_pytorch_fid_backend_gets_vetted_weights_and_never_downloads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stand-in pytorch_fid: its InceptionV3 fetches weights the way the real one does."""
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    torch.save({"scale": torch.tensor(2.0)}, checkpoints / fid.PYTORCH_FID_WEIGHTS)

    def download(*args: object, **kwargs: object) -> None:
        raise AssertionError("must not download or unpickle by itself")

    inception = types.ModuleType("pytorch_fid.inception")
    inception.load_state_dict_from_url = download

    class FakeInceptionV3(torch.nn.Module):
        BLOCK_INDEX_BY_DIM: ClassVar[dict[int, int]] = {2048: 3}

        def __init__(self, blocks: list[int]) -> None:
            super().__init__()
            self.scale = inception.load_state_dict_from_url(fid.PYTORCH_FID_URL)["scale"]

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            assert x.shape[1] == 3 and x.dtype == torch.float32  # RGB in [0, 1]
            return [self.scale * x.mean((2, 3), keepdim=True)]

    inception.InceptionV3 = FakeInceptionV3
    package = types.ModuleType("pytorch_fid")
    package.__spec__ = importlib.machinery.ModuleSpec("pytorch_fid", None)
    package.inception = inception
    monkeypatch.setitem(sys.modules, "pytorch_fid", package)
    monkeypatch.setitem(sys.modules, "pytorch_fid.inception", inception)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 256, (40, 1, 8, 8), generator=gen, dtype=torch.uint8)
    b = torch.randint(0, 128, (30, 1, 8, 8), generator=gen, dtype=torch.uint8)
    features = [2 * x.float().div(255).mean((2, 3)).expand(-1, 3).double().numpy() for x in (a, b)]
    expected = frechet_distance(*feature_statistics(features[0]), *feature_statistics(features[1]))
    assert inception_fid(a, b, device="cpu") == pytest.approx(expected, rel=1e-6)
