"""The Ladder VAE: the precision-weighted merge against the product of Gaussians, each layer's
KL against a Monte-Carlo estimate, free bits, the collapse warning, the layer representations
and ``--layer``, and a run on the digits."""

import json
import warnings

import numpy as np
import pytest
import torch

from repvae.cli import main
from repvae.config import ConfigError, ModelConfig, from_dict
from repvae.models.distributions import LOG_2PI, DiagonalGaussian
from repvae.models.hierarchical import (
    HierarchicalSection,
    HierarchicalVAE,
    LayerCollapseWarning,
    gaussian_kl,
    precision_weighted,
)
from repvae.represent import Embeddings

SHAPE = (1, 8, 8)


def build(**options) -> HierarchicalVAE:
    torch.manual_seed(0)
    section = HierarchicalSection(**{"layers": [3, 2], **options})
    config = ModelConfig(family="hvae", latent_dim=5, hidden=16, section=section)
    return HierarchicalVAE(config, SHAPE, 10)


def log_density(g: DiagonalGaussian, z: torch.Tensor) -> torch.Tensor:
    return (-0.5 * ((z - g.mean) / g.std).square() - torch.log(g.std) - 0.5 * LOG_2PI).sum(-1)


def test_the_merge_is_the_normalised_product_of_the_two_gaussians():
    torch.manual_seed(0)
    a = DiagonalGaussian(torch.randn(4, 3), torch.rand(4, 3) + 0.2)
    b = DiagonalGaussian(torch.randn(4, 3), torch.rand(4, 3) + 0.2)
    merged = precision_weighted(a, b)
    # log q(z) - log a(z) - log b(z) is the same constant for every z
    z = torch.randn(7, 4, 3) * 3
    gap = log_density(merged, z) - log_density(a, z) - log_density(b, z)
    torch.testing.assert_close(gap, gap[:1].expand_as(gap), atol=1e-4, rtol=0)


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    torch.manual_seed(0)
    q = DiagonalGaussian(torch.randn(2, 3), torch.rand(2, 3) + 0.3)
    p = DiagonalGaussian(torch.randn(2, 3), torch.rand(2, 3) + 0.5)
    z = q.rsample(200_000)  # [B, K, D]

    def per_dim(g: DiagonalGaussian) -> torch.Tensor:
        m, s = g.mean.unsqueeze(1), g.std.unsqueeze(1)
        return -0.5 * ((z - m) / s).square() - torch.log(s)

    estimate = (per_dim(q) - per_dim(p)).mean(1)
    torch.testing.assert_close(gaussian_kl(q, p), estimate, atol=0.02, rtol=0.02)


def test_each_layers_kl_matches_a_monte_carlo_estimate_through_the_model():
    """KL(q(z_1|x, z_2) || p(z_1|z_2)), in closed form given each draw of z_2, averages to
    E_q[log q(z_1|x, z_2) - log p(z_1|z_2)] over draws of both layers (and the top layer's KL
    to E_q[log q(z_2|x) - log N(z_2; 0, I)])."""
    model = build().eval()
    x = torch.rand(1, *SHAPE).expand(20_000, *SHAPE)
    with torch.no_grad():
        estimates = model._bottom_up(x)
        zs, posteriors, kls = model._top_down(estimates, draw=True)
        prior_1 = model._prior(0, zs[1])
        top_prior = DiagonalGaussian(torch.zeros_like(zs[1]), torch.ones_like(zs[1]))
    sampled = [
        (log_density(posteriors[0], zs[0]) - log_density(prior_1, zs[0])).mean(),
        (log_density(posteriors[1], zs[1]) - log_density(top_prior, zs[1])).mean(),
    ]
    closed = [kl.sum(1).mean() for kl in kls]
    for c, s in zip(closed, sampled, strict=True):
        torch.testing.assert_close(c, s, atol=0.05, rtol=0.05)


def test_the_loss_logs_each_layer_and_free_bits_floor_the_kl_per_unit():
    model = build()
    x = torch.rand(6, *SHAPE)
    torch.manual_seed(1)
    plain = model.loss(x)
    assert {"recon", "kl", "kl_layer1", "kl_layer2"} <= set(plain.terms)
    torch.testing.assert_close(
        plain.terms["kl"], plain.terms["kl_layer1"] + plain.terms["kl_layer2"]
    )
    torch.testing.assert_close(plain.loss, plain.terms["recon"] + plain.terms["kl"])
    # every unit below 100 free nats: the KL counts 100 per unit, with no gradient
    model.options.free_bits = 100.0
    torch.manual_seed(1)
    floored = model.loss(x)
    torch.testing.assert_close(floored.loss, floored.terms["recon"] + 100.0 * 5)
    floored.loss.backward()
    with_free_bits = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(1)  # the same draws, the KL weighed 0: the reconstruction's gradient
    model._negative_elbo(x, kl_weight=0.0, free_bits=0.0).loss.backward()
    for free, recon_only in zip(with_free_bits, (p.grad for p in model.parameters()), strict=True):
        torch.testing.assert_close(free, recon_only)
    # validation scores the plain ELBO
    torch.manual_seed(1)
    torch.testing.assert_close(model.validation_loss(x).loss, plain.loss)


def test_a_collapsed_layer_is_named_in_the_summary_and_warned_about():
    images = (torch.rand(40, *SHAPE) * 255).to(torch.uint8)
    model = build(collapse_threshold=1e6)  # every layer counts as collapsed
    with pytest.warns(LayerCollapseWarning, match=r"layer\(s\) \[1, 2\] collapsed"):
        summary = model.training_summary(images)
    assert summary["collapsed_layers"] == 2
    assert summary["kl_per_unit_layer1"] > 0 and summary["kl_per_unit_layer2"] > 0
    assert summary["inactive_units_layer1"] == model.sizes[0]  # every unit under the threshold
    quiet = build(collapse_threshold=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayerCollapseWarning)
        assert quiet.training_summary(images)["collapsed_layers"] == 0


def test_inactive_units_are_counted_unit_by_unit_not_from_the_layer_mean():
    images = (torch.rand(40, *SHAPE) * 255).to(torch.uint8)
    model = build().eval()
    with torch.no_grad():
        torch.manual_seed(0)
        units = [kl.mean(0) for kl in model.layer_kl(model.preprocess(images))]
    threshold = float(units[0].median())  # some units of layer 1 above, some below
    model.options.collapse_threshold = threshold
    torch.manual_seed(0)  # the same posterior draw as above
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LayerCollapseWarning)
        summary = model.training_summary(images)
    assert 0 < summary["inactive_units_layer1"] < model.sizes[0]
    assert summary["inactive_units_layer1"] == int((units[0] < threshold).sum())
    assert summary["inactive_units_layer2"] == int((units[1] < threshold).sum())


def test_the_map_is_every_layer_bottom_to_top_and_samples_come_from_the_top():
    model = build().eval()
    posterior = model.encode(torch.rand(4, *SHAPE))
    torch.testing.assert_close(posterior.mean, torch.cat([posterior.layer1, posterior.layer2], 1))
    assert posterior.layer1.shape == (4, 3) and posterior.layer2.shape == (4, 2)
    with pytest.raises(AttributeError):
        _ = posterior.layer3
    draws = model.sample(3, torch.Generator().manual_seed(0))
    assert draws.shape == (3, *SHAPE) and draws.min() >= 0 and draws.max() <= 1


def test_config_names_the_field_it_refuses():
    with pytest.raises(ConfigError, match=r"^model\.hvae\.layers: needs two or more"):
        from_dict({"model": {"family": "hvae", "latent_dim": 4, "hvae": {"layers": [4]}}})
    with pytest.raises(ConfigError, match=r"^model\.hvae\.layers: sizes must add up"):
        from_dict({"model": {"family": "hvae", "latent_dim": 4, "hvae": {"layers": [2, 3]}}})
    with pytest.raises(ConfigError, match=r"^model\.hvae\.free_bits"):
        from_dict({"model": {"family": "hvae", "hvae": {"free_bits": -1}}})
    assert HierarchicalSection().resolved(5) == [3, 2]


def test_train_probe_by_layer_and_sample_on_digits(tmp_path, capsys):
    run_dir = tmp_path / "hvae"
    args = ["train", "--dataset", "digits", "--model", "hvae-free-bits", "--latent-dim", "6"]
    args += ["--epochs", "2", "--no-progress", "--set", "model.hidden=32", "--out", str(run_dir)]
    assert main(args) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"kl_per_unit_layer1", "kl_per_unit_layer2", "collapsed_layers"} <= set(summary)
    with open(run_dir / "logs" / "metrics.csv") as f:
        assert {"train/kl_layer1", "train/kl_layer2", "val/kl_layer1"} <= set(
            f.readline().strip().split(",")
        )
    capsys.readouterr()
    assert main(["probe", str(run_dir), "--layer", "1", "2", "all", "--probes", "linear"]) == 0
    records = json.loads((run_dir / "probes.json").read_text())
    assert [r["kind"] for r in records] == ["layer1", "layer2", "map"]
    assert main(["embed", str(run_dir), "--layer", "2"]) == 0
    top = Embeddings.load(run_dir / "embeddings" / "layer2.npz").features["test"]
    assert top.shape[1] == 3 and np.isfinite(top).all()
    assert main(["probe", str(run_dir), "--layer", "3"]) == 2
    assert "--layer 3: the hvae family has stochastic layers 1 to 2" in capsys.readouterr().err
    assert main(["sample", str(run_dir), "-n", "4", "--out", str(tmp_path / "s.png")]) == 0
    assert main(["evaluate", str(run_dir), "--only", "likelihood", "information"]) == 0
    evaluation = run_dir / "evaluation"
    assert (
        "ladder's lower layers"
        in json.loads((evaluation / "likelihood.json").read_text())["skipped"]
    )
    info = json.loads((evaluation / "information.json").read_text())
    assert info["mutual_information"] is None and "top-down" in info["mutual_information_note"]
