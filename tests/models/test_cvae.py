"""The conditional VAE: the label steers both the encoder and the decoder, the loss is the ELBO of
log p(x|y), representations are style codes encoded with the true label (and the probe says so),
and without a label the model picks the class it finds most probable."""

import json

import numpy as np
import pytest
import torch

from repvae.cli import main
from repvae.config import ConfigError, ModelConfig, from_dict
from repvae.models import build_model
from repvae.models.contract import STYLE_NOTE
from repvae.models.cvae import CVAE, CVAESection
from repvae.represent import Embeddings
from repvae.run import load

SHAPE = (1, 4, 4)
CLASSES = 3


@pytest.fixture
def model() -> CVAE:
    torch.manual_seed(0)
    config = ModelConfig(
        family="cvae", latent_dim=2, architecture="mlp", hidden=8, section=CVAESection()
    )
    return CVAE(config, SHAPE, CLASSES).eval()


def test_the_label_changes_the_decoder_output_and_the_posterior(model):
    z = torch.randn(1, 2).repeat(CLASSES, 1)
    images = model.generate(z, labels=torch.arange(CLASSES))
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert not torch.allclose(images[a], images[b])
    x = torch.rand(1, *SHAPE).repeat(CLASSES, 1, 1, 1)
    posterior = model.encode_labelled(x, torch.arange(CLASSES))
    assert not torch.allclose(posterior.mean[0], posterior.mean[1])
    # the same label gives the same image: the decoder reads nothing else
    again = model.generate(z[:1], labels=torch.tensor([1]))
    torch.testing.assert_close(again[0], images[1])


def test_loss_is_the_negative_elbo_of_x_given_y(model):
    x = torch.rand(4, *SHAPE)
    y = torch.tensor([0, 2, 1, 2])
    torch.manual_seed(5)
    out = model.loss(x, beta_scale=0.5, labels=y)
    torch.manual_seed(5)
    posterior = model.encode_labelled(x, y)
    z = posterior.rsample()
    recon = -model.likelihood.log_prob(model.decode(z, y), x).mean()
    kl = (0.5 * (posterior.std**2 + posterior.mean**2 - 1 - 2 * posterior.std.log())).sum(1).mean()
    torch.testing.assert_close(out.loss, recon + 0.5 * kl)
    torch.testing.assert_close(out.terms["kl"], kl)


def test_without_a_label_the_most_probable_class_is_used(model):
    x = torch.rand(6, *SHAPE)
    logits = model.classify(x)
    assert logits.shape == (6, CLASSES)
    # the logits are the ELBO at the posterior mean, class by class
    y = torch.full((6,), 1)
    posterior = model.encode_labelled(x, y)
    elbo = model.likelihood.log_prob(model.decode(posterior.mean, y), x) - (
        posterior.kl_standard_normal().sum(1)
    )
    torch.testing.assert_close(logits[:, 1], elbo)
    guess = logits.argmax(1)
    torch.testing.assert_close(model.encode(x).mean, model.encode_labelled(x, guess).mean)


def test_every_training_image_must_carry_its_label(model):
    with pytest.raises(ConfigError, match=r"train\.labelled: the cvae needs the label of every"):
        model.label_budget(10, 100)
    model.label_budget(100, 100)
    with pytest.raises(ValueError, match="labelled images only"):
        model.loss(torch.rand(2, *SHAPE), labels=torch.tensor([0, -1]))
    config = from_dict({"model": {"family": "cvae", "architecture": "mlp"}})
    assert isinstance(build_model(config.model, SHAPE, CLASSES), CVAE)


def test_train_embed_probe_and_sample_on_digits(tmp_path, capsys):
    run_dir = tmp_path / "cvae"
    args = ["train", "--dataset", "digits", "--model", "cvae", "--latent-dim", "4"]
    args += ["--epochs", "3", "--no-progress", "--set", "model.hidden=64", "--out", str(run_dir)]
    assert main(args) == 0
    capsys.readouterr()

    assert main(["embed", str(run_dir), "--kind", "map", "sample"]) == 0
    emb = Embeddings.load(run_dir / "embeddings" / "map.npz")
    assert emb.note == STYLE_NOTE and emb.features["test"].shape[1] == 4
    # encoded with each image's true label, not the model's guess
    run = load(run_dir, device="cpu")
    data = run.config.data.load()
    with torch.no_grad():
        expected = run.model.encode_labelled(data.test.images, data.test.labels).mean
    np.testing.assert_allclose(emb.features["test"], expected.numpy(), atol=1e-5)

    assert main(["probe", str(run_dir), "--probes", "linear"]) == 0
    out = capsys.readouterr().out
    assert f"note: {STYLE_NOTE}" in out
    (record,) = json.loads((run_dir / "probes.json").read_text())
    assert record["note"] == STYLE_NOTE
    assert main(["probe", str(run_dir / "embeddings" / "map.npz"), "--probes", "linear"]) == 0
    assert "a label probe on it measures how much of the class leaks" in capsys.readouterr().out

    grid = tmp_path / "grid.png"
    assert main(["sample", str(run_dir), "-n", "3", "--out", str(grid)]) == 0
    assert grid.read_bytes().startswith(b"\x89PNG")
    assert "one prior z per row, decoded with each class" in capsys.readouterr().out
    sevens = tmp_path / "sevens.png"
    assert main(["sample", str(run_dir), "-n", "4", "--label", "7", "--out", str(sevens)]) == 0
    assert "class 7" in capsys.readouterr().out
    assert main(["sample", str(run_dir), "--label", "10", "--out", str(sevens)]) == 2
    assert "--label: 10 is not a class (0 to 9)" in capsys.readouterr().err

    only = ["probes", "classifier", "likelihood", "pictures"]
    assert main(["evaluate", str(run_dir), "--only", *only, "--probes", "linear"]) == 0
    assert f"note: {STYLE_NOTE}" in capsys.readouterr().out
    evaluation = run_dir / "evaluation"
    classifier = json.loads((evaluation / "classifier.json").read_text())
    # the CVAE as a generative classifier is scored, not required to be good: after 3 epochs its
    # z still carries the class, the ELBOs of the classes barely differ (measured 10.9 %)
    assert classifier["n"] == 359 and 0 <= classifier["accuracy"] <= 1
    likelihood = json.loads((evaluation / "likelihood.json").read_text())
    assert "bounds log p(x|y), not log p(x)" in likelihood["skipped"]
    assert {"samples.png", "analogies.png"} <= {p.name for p in evaluation.glob("*.png")}
