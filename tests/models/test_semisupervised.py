"""M2 (Kingma et al. 2014) and LPVAE-M2 (M2 with a Local PixelVAE decoder, Zhang et al. 2022):
the objective's terms against a direct computation, the batching, and that a few labels plus
unlabelled images train a classifier."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from repvae.cli import main
from repvae.config import PRESETS, ConfigError, ModelConfig, TrainConfig, from_dict
from repvae.data.batches import SemiSupervisedBatches
from repvae.models import M2
from repvae.models.distributions import DiagonalGaussian
from repvae.models.semisupervised import M2_CODE_NOTE
from repvae.represent import Embeddings
from repvae.run import load

SHAPE = (1, 8, 8)
K = 10


def _config(decoder: str) -> ModelConfig:
    """The plain M2, or LPVAE-M2's settings (the ``lpvae-m2`` preset) at a small size."""
    config = from_dict({"model": {"family": "m2", "latent_dim": 3, "hidden": 16}}).model
    if decoder == "plain":
        return config
    preset = {k.removeprefix("model."): v for k, v in PRESETS.get("lpvae-m2").overrides(3).items()}
    head = {k.removeprefix("head."): v for k, v in preset.items() if k.startswith("head.")}
    return from_dict(
        {
            "model": {
                "family": "m2",
                "latent_dim": 3,
                "hidden": 16,
                "likelihood": preset["likelihood"],
                "n_mix": 2,
                "head": {**head, "channels": 4, "features": 3},
            }
        }
    ).model


@pytest.fixture(params=["plain", "lpvae"])
def model(request, monkeypatch):
    """A small M2 (plain decoder, or LPVAE-M2's PixelCNN decoder) whose posterior draws are
    their means, so the loss is deterministic."""
    monkeypatch.setattr(DiagonalGaussian, "rsample", lambda self, k=None, generator=None: self.mean)
    torch.manual_seed(0)
    return M2(_config(request.param), SHAPE, K).eval()


def _bound(model: M2, x: torch.Tensor, c: int) -> torch.Tensor:
    """L(x, y=c) computed from the definitions: -log p(x|y,z) + KL - log p(y), with
    p(x|y,z) read under teacher forcing when the decoder is a PixelCNN."""
    y = torch.full((len(x),), c)
    posterior = model.encode(x, y)
    recon = -model.likelihood.log_prob(model.decode(posterior.mean, y, x), x)
    return recon + posterior.kl_standard_normal().sum(1) + math.log(K)


def _images(n: int) -> torch.Tensor:
    """8-bit images in [0, 1] (what an 8-bit likelihood scores)."""
    return torch.randint(0, 256, (n, *SHAPE)).float() / 255


def test_unlabelled_loss_marginalises_the_class(model):
    x = _images(5)
    q = F.softmax(model.classify(x), 1)
    bounds = torch.stack([_bound(model, x, c) for c in range(K)], 1)
    expected = (q * (bounds + q.log())).sum(1).mean()  # sum_y q L - H(q)
    out = model.loss(x)
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.terms["entropy_y"], -(q * q.log()).sum(1).mean())


def test_labelled_loss_adds_the_weighted_classification_term(model):
    x, y = _images(4), torch.tensor([0, 3, 3, 9])
    model.label_budget(labelled=4, total=4)
    assert model.classifier_weight == pytest.approx(0.4)  # the paper's alpha = 0.1 N
    bounds = torch.stack([_bound(model, x[i : i + 1], int(y[i]))[0] for i in range(4)])
    ce = F.cross_entropy(model.classify(x), y)
    torch.testing.assert_close(model.loss(x, labels=y).loss, bounds.mean() + 0.4 * ce)


def test_mixed_batch_weights_by_the_labelled_fraction(model):
    x = _images(6)
    labels = torch.tensor([2, 5, -1, -1, -1, -1])
    model.label_budget(labelled=10, total=40)
    labelled = model.loss(x[:2], labels=labels[:2]).loss
    unlabelled = model.loss(x[2:], labels=labels[2:]).loss
    # each part alone is already scaled by its share; together they add up
    torch.testing.assert_close(model.loss(x, labels=labels).loss, labelled + unlabelled)
    model.unlabelled_weight = 1.0
    torch.testing.assert_close(unlabelled / 0.75, model.loss(x[2:]).loss)


def test_batch_objective_adds_the_batch_means_with_zhangs_alpha(model):
    """Zhang et al.'s reading: mean L + mean U + alpha mean CE, alpha = 0.1 (N + M) / M."""
    x = _images(6)
    labels = torch.tensor([2, 5, -1, -1, -1, -1])
    model.options.objective = "batch"
    model.label_budget(labelled=10, total=40)
    assert model.classifier_weight == pytest.approx(0.4)  # 0.1 * 40 / 10
    bounds = torch.stack([_bound(model, x[i : i + 1], int(labels[i]))[0] for i in range(2)])
    ce = F.cross_entropy(model.classify(x[:2]), labels[:2])
    unlabelled = model.loss(x[2:]).loss  # without labels: the mean of U(x)
    expected = bounds.mean() + 0.4 * ce + unlabelled
    torch.testing.assert_close(model.loss(x, labels=labels).loss, expected)
    with pytest.raises(ConfigError, match=r"^model\.m2\.objective"):
        from_dict({"model": {"family": "m2", "m2": {"objective": "sum"}}})


def test_lpvae_m2_decoder_reads_only_earlier_pixels_within_its_horizon():
    torch.manual_seed(0)
    model = M2(_config("lpvae"), SHAPE, K).eval()
    assert model.capabilities.autoregressive and model.discrete_likelihood
    z, y, x = torch.randn(1, 3), torch.tensor([4]), _images(1)
    before = model.decode(z, y, x)
    changed = x.clone()
    changed[0, 0, 3, 3] = 1 - changed[0, 0, 3, 3]
    moved = (model.decode(z, y, changed) - before).abs().sum(1)[0] > 0
    # horizon 1: pixel (3, 3) reaches (3, 4) and the row below's three neighbours, nothing else
    assert moved.nonzero().tolist() == [[3, 4], [4, 2], [4, 3], [4, 4]]


def test_lpvae_m2_draws_class_conditional_samples_pixel_by_pixel():
    torch.manual_seed(0)
    model = M2(_config("lpvae"), SHAPE, K).eval()
    first = model.sample(3, torch.Generator().manual_seed(1), labels=torch.tensor([0, 1, 2]))
    again = model.sample(3, torch.Generator().manual_seed(1), labels=torch.tensor([0, 1, 2]))
    assert first.shape == (3, *SHAPE) and torch.equal(first, again)
    # draws of an 8-bit likelihood: every value on the 256-level grid
    torch.testing.assert_close(first * 255, (first * 255).round())


def test_semi_supervised_batches_join_every_unlabelled_batch_with_labels():
    images = torch.arange(50, dtype=torch.uint8).view(50, 1, 1, 1)
    labels = torch.arange(50) % 5
    labelled = torch.tensor([3, 10, 21, 40])
    batches = SemiSupervisedBatches(images, labels, labelled, batch_size=8, seed=0)
    assert len(batches) == 6  # 46 unlabelled images in batches of 8
    seen_unlabelled = []
    for x, y in batches:
        hidden = y < 0
        assert hidden.sum() <= 8 and (~hidden).sum() == 4  # the labelled batch: all 4 labels
        assert set(x[~hidden].flatten().tolist()) == {3, 10, 21, 40}
        torch.testing.assert_close(y[~hidden], labels[x[~hidden].flatten().long()])
        seen_unlabelled += x[hidden].flatten().tolist()
    assert sorted(seen_unlabelled) == sorted(set(range(50)) - {3, 10, 21, 40})
    everything = SemiSupervisedBatches(images, labels, torch.arange(50), batch_size=8)
    assert len(everything) == 7 and all((y >= 0).all() for _, y in everything)


def test_config_refuses_what_m2_does_not_have():
    with pytest.raises(ConfigError, match=r"model\.nesting: not a setting of the m2 family"):
        from_dict({"model": {"family": "m2", "nesting": [2, 16]}})
    with pytest.raises(ConfigError, match=r"model\.vae: settings of the vae family"):
        from_dict({"model": {"family": "m2", "vae": {"nesting": [2, 16]}}})
    with pytest.raises(ConfigError, match=r"model\.family"):
        from_dict({"model": {"family": "m3"}})
    with pytest.raises(ConfigError, match=r"train\.labelled"):
        from_dict({"model": {"family": "m2"}, "train": {"labelled": 0}})
    assert TrainConfig().labelled is None


def test_few_labels_train_a_classifier_end_to_end(tmp_path):
    run_dir = tmp_path / "m2"
    args = ["train", "--dataset", "digits", "--model", "m2", "--epochs", "12", "--no-progress"]
    args += ["--out", str(run_dir), "--set", "train.labelled=50", "--set", "model.hidden=64"]
    assert main(args) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["labelled_images"] == 50
    assert main(["evaluate", str(run_dir), "--only", "classifier", "pictures"]) == 0
    pictures = {p.name for p in (run_dir / "evaluation").glob("*.png")}
    assert {"analogies.png", "samples.png", "reconstructions.png"} <= pictures
    assert "traversals.png" not in pictures  # z alone does not make an image in M2
    result = json.loads((run_dir / "evaluation" / "classifier.json").read_text())
    # 50 labels of 8x8 digits: chance is 10 %; measured 85.2 % at 12 epochs (seed 0)
    assert result["accuracy"] > 0.6
    assert result["error_percent"] == pytest.approx(100 * (1 - result["accuracy"]))
    run = load(run_dir, device="cpu")
    assert isinstance(run.model, M2) and run.model.sample(4).shape == (4, *SHAPE)
    assert main(["embed", str(run_dir), "--kind", "map"]) == 0
    # z is M2's style code: its embeddings and probes say so
    assert Embeddings.load(run_dir / "embeddings" / "map.npz").note == M2_CODE_NOTE


def test_lpvae_m2_trains_and_evaluates_from_the_command_line(tmp_path):
    run_dir = tmp_path / "lpvae-m2"
    args = ["train", "--dataset", "digits", "--model", "lpvae-m2", "--epochs", "2"]
    args += ["--no-progress", "--out", str(run_dir), "--set", "train.labelled=50"]
    assert main([*args, "--set", "model.hidden=64"]) == 0
    run = load(run_dir, device="cpu")
    assert run.config.model.head.kind == "local" and run.model.capabilities.autoregressive
    assert main(["evaluate", str(run_dir), "--only", "classifier", "pictures"]) == 0
    pictures = {p.name for p in (run_dir / "evaluation").glob("*.png")}
    assert {"analogies.png", "samples.png", "reconstructions.png"} <= pictures
    result = json.loads((run_dir / "evaluation" / "classifier.json").read_text())
    assert result["accuracy"] > 0.3  # chance is 0.1; measured 63.8 % after 2 epochs (seed 0)
