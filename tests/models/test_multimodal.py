"""Multimodal VAEs: the product of Gaussian experts against the closed form, MoPoE's subsets and
their equal weights, MoE's stratified sampling, each fusion's loss against a direct
computation, the unimodal kinds, and a run on the multimodal digits."""

import json

import numpy as np
import pytest
import torch

from repvae.cli import main
from repvae.config import ConfigError, ModelConfig, from_dict
from repvae.models.distributions import DiagonalGaussian, standard_normal_log_prob
from repvae.models.multimodal import (
    GaussianMixture,
    MultimodalSection,
    MultimodalVAE,
    product_of_experts,
    subsets,
)
from repvae.represent import Embeddings

SHAPE = (9, 8, 8)  # three RGB modalities of 8x8


def build(fusion: str) -> MultimodalVAE:
    torch.manual_seed(0)
    section = MultimodalSection(fusion=fusion)
    config = ModelConfig(family="multimodal", latent_dim=4, hidden=16, section=section)
    return MultimodalVAE(config, SHAPE, 10)


def test_the_product_of_experts_is_the_closed_form_with_the_prior_expert():
    torch.manual_seed(0)
    experts = [DiagonalGaussian(torch.randn(3, 2), torch.rand(3, 2) + 0.1) for _ in range(3)]
    fused = product_of_experts(experts)
    precision = 1 + sum(e.std.pow(-2) for e in experts)  # the prior N(0, I) has precision 1
    mean = sum(e.mean * e.std.pow(-2) for e in experts) / precision
    torch.testing.assert_close(fused.mean, mean)
    torch.testing.assert_close(fused.std, precision.rsqrt())
    # one scalar check by the product of densities: N(a, 1) N(b, 1) N(0, 1) ∝ N((a+b)/3, 1/3)
    one = product_of_experts(
        [DiagonalGaussian(torch.tensor([[3.0]]), torch.ones(1, 1)) for _ in range(2)]
    )
    torch.testing.assert_close(one.mean, torch.tensor([[2.0]]))
    torch.testing.assert_close(one.std, torch.tensor([[3.0**-0.5]]))


def test_mopoe_mixes_every_non_empty_subset_with_equal_weight():
    assert subsets([0, 1, 2]) == [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2)]
    model = build("mopoe")
    x = torch.rand(5, *SHAPE)
    experts = model.experts(x)
    components = model._fused(experts, [0, 1, 2])
    assert len(components) == 2**3 - 1
    for component, subset in zip(components, subsets([0, 1, 2]), strict=True):
        expected = product_of_experts([experts[m] for m in subset])
        torch.testing.assert_close(component.mean, expected.mean)
    # the joint's mean is the equally weighted mean of the components'
    torch.testing.assert_close(
        model.encode(x).mean, torch.stack([c.mean for c in components]).mean(0)
    )


def test_the_mixture_posterior_has_the_mixtures_moments_and_samples_its_components():
    a = DiagonalGaussian(torch.tensor([[-1.0]]), torch.tensor([[0.5]]))
    b = DiagonalGaussian(torch.tensor([[3.0]]), torch.tensor([[1.0]]))
    mixed = GaussianMixture.of([a, b])
    torch.testing.assert_close(mixed.mean, torch.tensor([[1.0]]))
    # E[z^2] = (0.25 + 1 + 1 + 9) / 2 = 5.625; Var = 5.625 - 1
    torch.testing.assert_close(mixed.std, torch.tensor([[4.625**0.5]]))
    # draws come from the components (half each), not from the moment-matched Gaussian, which
    # would put a third of its draws between -0.5 and 2.5
    narrow = GaussianMixture.of(
        [DiagonalGaussian(torch.full((1, 2), m), torch.full((1, 2), 0.01)) for m in (-10.0, 10.0)]
    )
    z = narrow.rsample(4000, torch.Generator().manual_seed(0))
    assert z.shape == (1, 4000, 2)
    assert ((z.abs() - 10).abs() < 0.1).all()
    assert abs((z[..., 0] > 0).float().mean().item() - 0.5) < 0.05
    assert (z[..., 0] > 0).eq(z[..., 1] > 0).all()  # one component per draw, every coordinate
    assert narrow.prefix(1).rsample().shape == (1, 1)


def _no_noise(monkeypatch):
    monkeypatch.setattr(DiagonalGaussian, "rsample", lambda self, k=None, generator=None: self.mean)


def test_moe_loss_reconstructs_everything_from_each_expert_in_turn(monkeypatch):
    _no_noise(monkeypatch)
    model = build("moe")
    x = torch.rand(4, *SHAPE)
    experts = model.experts(x)
    expected = 0.0
    for expert in experts:  # stratified: every expert's draw, weighed 1/M
        z = expert.mean
        mixture = torch.logsumexp(torch.stack([e.log_prob(z) for e in experts]), 0) - np.log(3)
        kl = mixture - standard_normal_log_prob(z)
        expected = expected + (model._reconstruction(x, z) + kl).mean() / 3
    torch.testing.assert_close(model.loss(x).loss, expected)


def test_poe_loss_is_the_joint_elbo_plus_every_unimodal_elbo(monkeypatch):
    _no_noise(monkeypatch)
    model = build("poe")
    x = torch.rand(4, *SHAPE)
    experts = model.experts(x)
    expected = 0.0
    for subset in [(0, 1, 2), (0,), (1,), (2,)]:
        q = product_of_experts([experts[m] for m in subset])
        expected = (
            expected + (model._reconstruction(x, q.mean) + q.kl_standard_normal().sum(1)).mean()
        )
    torch.testing.assert_close(model.loss(x).loss, expected)


def test_mopoe_loss_draws_one_subset_per_image_and_averages_the_subsets_kl(monkeypatch):
    _no_noise(monkeypatch)
    model = build("mopoe")
    x = torch.rand(6, *SHAPE)
    torch.manual_seed(3)
    out = model.loss(x)
    torch.manual_seed(3)
    picked = torch.randint(7, (6, 1)).flatten()  # the mixture's draw: one component per image
    components = model._fused(model.experts(x), [0, 1, 2])
    z = torch.stack([components[int(k)].mean[i] for i, k in enumerate(picked)])
    kl = torch.stack([c.kl_standard_normal().sum(1).mean() for c in components]).mean()
    torch.testing.assert_close(out.loss, model._reconstruction(x, z).mean() + kl)


def test_each_modality_alone_is_a_representation_and_cross_generation_decodes_all():
    model = build("mopoe").eval()
    x = torch.rand(5, *SHAPE)
    posterior = model.encode(x)
    assert model.capabilities.modalities == 3 and set(model.capabilities.kinds) == {
        "m1",
        "m2",
        "m3",
    }
    torch.testing.assert_close(posterior.m2, model.encode_subset(x, [1]).mean)
    assert model.generate(model.encode_subset(x, [0]).mean).shape == (5, *SHAPE)


def test_config_and_shape_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"^model\.multimodal\.fusion"):
        from_dict({"model": {"family": "multimodal", "multimodal": {"fusion": "sum"}}})
    config = ModelConfig(family="multimodal", latent_dim=4, hidden=16, section=MultimodalSection())
    with pytest.raises(ValueError, match=r"^model\.multimodal\.modality_channels: images with 3"):
        MultimodalVAE(config, (3, 8, 8), 10)


@pytest.mark.parametrize("fusion", ["moe", "poe", "mopoe"])
def test_every_fusion_trains_on_the_multimodal_digits(tmp_path, fusion):
    preset = {"moe": "mmvae", "poe": "mvae-poe", "mopoe": "mopoe"}[fusion]
    run_dir = tmp_path / preset
    args = ["train", "--dataset", "polydigits-3", "--model", preset, "--latent-dim", "4"]
    args += ["--epochs", "1", "--no-progress", "--set", "model.hidden=32", "--out", str(run_dir)]
    assert main(args) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert np.isfinite(summary["best_val_loss"])


def test_a_multimodal_run_probes_each_modality_and_scores_coherence(tmp_path, capsys):
    run_dir = tmp_path / "mopoe"
    args = ["train", "--dataset", "polydigits-2", "--model", "mopoe", "--latent-dim", "4"]
    args += ["--epochs", "2", "--no-progress", "--set", "model.hidden=32", "--out", str(run_dir)]
    assert main(args) == 0
    assert main(["probe", str(run_dir), "--kind", "map", "m1", "m2", "--probes", "linear"]) == 0
    assert {r["kind"] for r in json.loads((run_dir / "probes.json").read_text())} == {
        "map",
        "m1",
        "m2",
    }
    assert main(["embed", str(run_dir), "--kind", "m1"]) == 0
    assert Embeddings.load(run_dir / "embeddings" / "m1.npz").features["test"].shape[1] == 4
    assert main(["evaluate", str(run_dir), "--only", "coherence", "pictures"]) == 0
    result = json.loads((run_dir / "evaluation" / "coherence.json").read_text())
    assert np.array(result["cross_coherence_matrix"]).shape == (2, 2)
    assert 0 <= result["joint_coherence"] <= 1 and result["modalities"] == 2
    assert (run_dir / "evaluation" / "cross_generation.png").exists()
    assert "coherence: cross-modal" in capsys.readouterr().out
