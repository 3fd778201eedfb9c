"""Representation kinds as values: what each kind is, computed from known posterior parameters."""

import numpy as np
import pytest
import torch

from repvae.config import ModelConfig
from repvae.evaluate.probing import probe_embeddings
from repvae.models import VAE, DiagonalGaussian
from repvae.represent import Embeddings, check_kind, derive, kind_tag, parse_kind

MEAN = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]])
STD = torch.tensor([[0.1, 0.2, 0.3], [1.0, 2.0, 3.0]])
POSTERIOR = DiagonalGaussian(MEAN, STD)


def test_map_and_dist_are_the_posterior_parameters():
    np.testing.assert_array_equal(derive(POSTERIOR, "map", None, draws=1, seed=0), MEAN.numpy())
    dist = derive(POSTERIOR, "dist", None, draws=1, seed=0)
    np.testing.assert_array_equal(dist, torch.cat([MEAN, STD], 1).numpy())


def test_prefix_truncation_keeps_the_first_coordinates():
    np.testing.assert_array_equal(derive(POSTERIOR, "map", 2, draws=1, seed=0), MEAN[:, :2].numpy())
    dist = derive(POSTERIOR, "dist", 2, draws=1, seed=0)
    np.testing.assert_array_equal(dist, torch.cat([MEAN[:, :2], STD[:, :2]], 1).numpy())


def test_samples_are_seeded_draws_from_the_posterior():
    one = derive(POSTERIOR, "sample", None, draws=1, seed=3)
    assert one.shape == (2, 3)
    np.testing.assert_array_equal(one, derive(POSTERIOR, "sample", None, draws=1, seed=3))
    assert not np.array_equal(one, derive(POSTERIOR, "sample", None, draws=1, seed=4))
    many = derive(POSTERIOR, "samples:20000", None, draws=20000, seed=0)
    assert many.shape == (2, 20000, 3)
    np.testing.assert_allclose(many.mean(1), MEAN.numpy(), atol=0.05)
    np.testing.assert_allclose(many.std(1), STD.numpy(), rtol=0.03)


@pytest.mark.parametrize("bad", ["samples:", "samples:0", "map:3", "sample:2", "two words"])
def test_malformed_kinds_are_refused(bad):
    with pytest.raises(ValueError, match="representation kind"):
        parse_kind(bad)


def test_a_kind_the_model_does_not_offer_is_refused_with_those_it_does():
    model = VAE(ModelConfig(latent_dim=2), (1, 4, 4))
    with pytest.raises(ValueError, match=r"'mean'; the vae family offers map, sample, samples:K"):
        check_kind(model, "mean")
    check_kind(model, "samples:3")


def test_kind_tags_and_samples_protocol():
    assert kind_tag("samples:100", 8) == "samples-100-d8" and kind_tag("map") == "map"
    emb = Embeddings(
        "samples:4",
        None,
        {"train": np.zeros((20, 1, 2)), "test": np.zeros((10, 4, 2))},
        {"train": np.arange(20) % 2, "test": np.arange(10) % 2},
    )
    with pytest.raises(ValueError, match="split protocol only"):
        probe_embeddings(emb, probes=["linear"], protocol="cv")
