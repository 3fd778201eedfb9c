"""The deterministic autoencoder: its loss is the reconstruction term alone, its code is a point,
and what needs a distribution (samples, a prior, a likelihood bound) is refused with the reason."""

import json

import pytest
import torch

from repvae.cli import main
from repvae.config import ConfigError, ModelConfig, from_dict
from repvae.models import Unsupported, build_model
from repvae.models.autoencoder import AESection, Autoencoder
from repvae.models.distributions import NotADistribution, PointMass
from repvae.represent import embed
from repvae.run import load

SHAPE = (1, 4, 4)


@pytest.fixture
def model() -> Autoencoder:
    torch.manual_seed(0)
    config = ModelConfig(
        family="ae", latent_dim=3, architecture="mlp", hidden=8, section=AESection()
    )
    return Autoencoder(config, SHAPE).eval()


def test_loss_is_the_reconstruction_term_alone(model):
    x = torch.rand(5, *SHAPE)
    code = model.encode(x)
    assert isinstance(code, PointMass)
    expected = -model.likelihood.log_prob(model.decoder(code.mean), x).mean()
    out = model.loss(x, beta_scale=0.1, labels=torch.zeros(5, dtype=torch.long))
    torch.testing.assert_close(out.loss, expected)
    assert set(out.terms) == {"recon"}


def test_the_code_is_a_point_not_a_distribution(model):
    code = model.encode(torch.rand(2, *SHAPE))
    assert code.prefix(2).mean.shape == (2, 2)
    with pytest.raises(NotADistribution, match="map representation"):
        code.rsample()
    with pytest.raises(NotADistribution):
        code.flat_parameters()
    with pytest.raises(Unsupported, match=r"ae family: .*no prior"):
        model.sample(4)
    assert model.reconstruct(torch.rand(2, *SHAPE)).shape == (2, *SHAPE)


def test_built_from_the_registry_and_checked_by_its_section():
    config = from_dict({"model": {"family": "ae", "latent_dim": 2, "architecture": "mlp"}})
    assert isinstance(build_model(config.model, SHAPE, 10), Autoencoder)
    with pytest.raises(ConfigError, match=r"^model\.beta: the ae family has no KL term"):
        from_dict({"model": {"family": "ae", "beta": 4.0}})


def test_trains_embeds_and_evaluates_with_what_does_not_apply_skipped(tmp_path, capsys):
    run_dir = tmp_path / "ae"
    args = ["--model", "ae", "--latent-dim", "4", "--epochs", "2", "--no-progress"]
    assert main(["train", *args, "--set", "model.hidden=32", "--out", str(run_dir)]) == 0
    run = load(run_dir, device="cpu")
    (emb,) = embed(run, ["map"], splits=("test",), save=False).values()
    assert emb.features["test"].shape[1] == 4
    with pytest.raises(Unsupported, match=r"'sample': the ae family: .*only the map"):
        embed(run, ["sample"], save=False)
    assert main(["embed", str(run_dir), "--kind", "sample"]) == 2
    assert "only the map representation exists" in capsys.readouterr().err

    only = ["probes", "likelihood", "fid", "information", "pictures"]
    assert main(["evaluate", str(run_dir), "--only", *only, "--probes", "linear"]) == 0
    out = capsys.readouterr().out
    assert "probe on sample skipped: a deterministic autoencoder's code is a point" in out
    evaluation = run_dir / "evaluation"
    likelihood = json.loads((evaluation / "likelihood.json").read_text())
    assert likelihood["skipped"].startswith("the ae family: a deterministic autoencoder defines")
    fid = json.loads((evaluation / "fid.json").read_text())  # of reconstructions alone
    assert "no prior" in fid["samples_missing"] and fid["domain_fid"] is None
    assert fid["domain_fid_reconstructions"] > 0
    information = json.loads((evaluation / "information.json").read_text())
    assert information["mutual_information"] is None and information["intrinsic_dimension"] >= 1
    pictures = json.loads((evaluation / "pictures.json").read_text())["figures"]
    assert {"reconstructions", "interpolations", "loss_curves"} <= set(pictures)
    assert not {"samples", "traversals"} & set(pictures)
