"""The VQ-VAE: nearest-code quantisation with straight-through gradients, the EMA codebook update
and dead-code restarts computed by hand, the loss terms, the causal code prior and its samples,
the two representations (quantised map and bag of codes), and a run on the digits from training
to probes and samples."""

import csv
import json

import numpy as np
import pytest
import torch

from repvae.cli import main
from repvae.config import ConfigError, ModelConfig, from_dict
from repvae.models import Unsupported
from repvae.models.masked import receptive_field
from repvae.models.vqvae import VQVAE, VQSection, auto_stages, nearest_codes, perplexity
from repvae.represent import Embeddings
from repvae.run import load

SHAPE = (1, 8, 8)


def build(**options) -> VQVAE:
    torch.manual_seed(0)
    section = VQSection(**{"codebook_size": 3, "channels": 4, "prior_channels": 8, **options})
    return VQVAE(ModelConfig(family="vqvae", latent_dim=2, section=section), SHAPE, 10)


def set_codebook(model: VQVAE, codes: torch.Tensor, counts: torch.Tensor) -> None:
    """The library's codebook state: codes, their running counts N_k and sums m_k = N_k e_k."""
    state = model.quantizer._codebook
    with torch.no_grad():
        state.embed.copy_(codes[None])
        state.cluster_size.copy_(counts[None])
        state.embed_avg.copy_((codes * counts[:, None])[None])


CODES = torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])


def as_map(vectors: torch.Tensor) -> torch.Tensor:
    """Vectors [4, 2] as one encoder map [1, 2, 2, 2] (positions in raster order)."""
    return vectors.T.reshape(1, 2, 2, 2).clone()


def test_gradients_pass_the_quantiser_straight_through():
    model = build(dead_code_threshold=0.0).train()
    set_codebook(model, CODES, torch.ones(3))
    z_e = as_map(torch.tensor([[0.5, 0.2], [3.0, 1.0], [0.1, 3.5], [-0.3, 0.1]]))
    z_e.requires_grad_()
    z_q, indices = model.quantise(z_e)
    assert indices.flatten().tolist() == [0, 1, 2, 0]
    torch.testing.assert_close(z_q.detach(), as_map(CODES[[0, 1, 2, 0]]))
    upstream = torch.randn_like(z_q)
    (z_q * upstream).sum().backward()
    torch.testing.assert_close(z_e.grad, upstream)  # the decoder's gradient, unchanged


def test_the_ema_update_matches_a_hand_computation():
    decay, eps = 0.9, 1e-5
    model = build(decay=decay, dead_code_threshold=0.0).train()
    counts = torch.tensor([2.0, 1.0, 3.0])
    set_codebook(model, CODES, counts)
    vectors = torch.tensor([[0.5, 0.2], [3.0, 1.0], [5.0, -1.0], [-0.3, 0.1]])
    model.quantise(as_map(vectors))
    # assignments: code 0 gets vectors 0 and 3, code 1 vectors 1 and 2, code 2 none
    n = torch.tensor([2.0, 2.0, 0.0])
    sums = torch.stack([vectors[0] + vectors[3], vectors[1] + vectors[2], torch.zeros(2)])
    running = decay * counts + (1 - decay) * n
    totals = decay * CODES * counts[:, None] + (1 - decay) * sums
    smoothed = (running + eps) / (running.sum() + 3 * eps) * running.sum()  # Laplace
    torch.testing.assert_close(model.codebook, totals / smoothed[:, None])
    # e.g. code 1: (0.9 * 1 * [4, 0] + 0.1 * [8, 0]) / (0.9 + 0.2) = [4.0, 0.0]
    torch.testing.assert_close(model.codebook[1], torch.tensor([4.0, 0.0]), atol=1e-4, rtol=0)


def test_a_dead_code_restarts_at_an_encoder_output():
    vectors = torch.tensor([[0.5, 0.2], [3.0, 1.0], [5.0, -1.0], [-0.3, 0.1]])
    kept = build(dead_code_threshold=0.0).train()
    set_codebook(kept, CODES, torch.ones(3))
    kept.quantise(as_map(vectors))
    assert kept.codebook[2].tolist() == pytest.approx([0.0, 4.0], abs=1e-3)  # unused, kept
    # with the threshold at 1, code 2's running count (0.99 after a step unused) is below it
    restarted = build(dead_code_threshold=1.0).train()
    set_codebook(restarted, CODES, torch.ones(3))
    restarted.quantise(as_map(vectors))
    assert any(torch.allclose(restarted.codebook[2], v) for v in vectors)


def test_the_loss_is_reconstruction_plus_the_commitment_and_codebook_terms():
    x = torch.rand(3, *SHAPE)
    for ema in (True, False):
        model = build(ema=ema, dead_code_threshold=0.0, commitment=0.25).train()
        before = model.codebook.detach().clone()
        out = model.loss(x)
        z_e = model.encoder(x)
        indices = torch.cdist(z_e.permute(0, 2, 3, 1).reshape(-1, 2), before).argmin(1)
        e = before[indices].view(3, 4, 4, 2).permute(0, 3, 1, 2)
        recon = -model.likelihood.log_prob(model.decoder(e), x).mean()
        squared = (z_e - e).square().sum((1, 2, 3)).mean()
        code_maps = indices.view(3, 4, 4)
        log_p = model.prior(code_maps).log_softmax(1).gather(1, code_maps[:, None])
        prior = -log_p.sum((1, 2, 3)).mean()  # -log p(codes) over the 4x4 map
        torch.testing.assert_close(out.terms["prior"], prior)
        expected = recon + 0.25 * squared + (0.0 if ema else squared) + prior
        torch.testing.assert_close(out.loss, expected, rtol=1e-5, atol=1e-4)
        assert ("codebook" in out.terms) != ema
    # without EMA the codebook learns from the codebook term alone: d/de_k = 2 sum (e_k - z_e)/B
    model.zero_grad()
    model.loss(x).loss.backward()
    grad = model.quantizer._codebook.embed.grad[0]
    flat = z_e.detach().permute(0, 2, 3, 1).reshape(-1, 2)
    expected_grad = torch.stack([2 * (before[k] - flat[indices == k]).sum(0) / 3 for k in range(3)])
    torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-4)


def test_evaluation_quantises_by_the_libraries_nearest_code_rule():
    """Evaluation uses a plain lookup (the ONNX exporter can trace it): the same codes and
    quantised map as the library's quantiser, without touching the codebook."""
    model = build()
    z_e = torch.randn(5, 2, 3, 3)
    expected, expected_indices, _ = model.quantizer.eval()(z_e)
    codebook = model.codebook.clone()
    quantised, indices = nearest_codes(z_e, model.codebook)
    torch.testing.assert_close(quantised, expected)
    assert torch.equal(indices, expected_indices)
    model.eval()
    torch.testing.assert_close(model.quantise(z_e)[0], expected)
    assert torch.equal(model.codebook, codebook)


def test_the_code_prior_reads_only_earlier_positions():
    prior = build().prior
    assert prior is not None
    channels = prior.embed.embedding_dim
    for position in [(0, 0), (1, 2), (3, 3)]:
        field = receptive_field(prior.net, (channels, 4, 4), position)
        rows, cols = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
        earlier = (rows < position[0]) | ((rows == position[0]) & (cols < position[1]))
        assert not (field & ~earlier).any()  # never itself or a later position
    assert receptive_field(prior.net, (channels, 4, 4), (3, 3))[0, 0]  # but does see the past


def test_samples_decode_code_maps_drawn_from_the_prior():
    model = build().eval()
    assert model.prior is not None
    final = model.prior.net[-1]
    with torch.no_grad():  # a prior that puts all its mass on code 2 everywhere
        final.weight.zero_()
        final.bias.copy_(torch.tensor([-50.0, -50.0, 50.0]))
    images = model.sample(2, generator=torch.Generator().manual_seed(0))
    code_map = model.codebook[2].view(1, 2, 1, 1).expand(1, 2, 4, 4)
    expected = model.likelihood.mean(model.decoder(code_map))
    torch.testing.assert_close(images, expected.expand(2, *SHAPE))
    draws = model.prior.sample(200, (1, 1), torch.Generator().manual_seed(0))
    assert (draws == 2).all()


def test_representations_are_the_quantised_map_and_the_bag_of_codes():
    model = build().eval()
    x = torch.rand(5, *SHAPE)
    code_map = model.encode(x)
    z_q, indices = model.quantise(model.encoder(x))
    torch.testing.assert_close(code_map.mean, z_q.flatten(1))
    assert code_map.mean.shape == (5, 2 * 4 * 4)  # D x h x w: an 8x8 image gives a 4x4 map
    positions = indices.flatten(1)
    counts = torch.stack([(positions == k).sum(1) for k in range(3)], 1).float()
    torch.testing.assert_close(code_map.codes, counts / 16)
    assert perplexity(torch.tensor([0, 1, 2, 0, 1, 2]), 3).item() == pytest.approx(3.0)
    assert perplexity(torch.tensor([1, 1, 1]), 3).item() == pytest.approx(1.0)
    assert (auto_stages(8, 8), auto_stages(28, 28), auto_stages(32, 32)) == (1, 2, 2)
    with pytest.raises(Unsupported, match=r"vqvae family: model\.vqvae\.prior_layers is 0"):
        build(prior_layers=0).sample(2)
    with pytest.raises(ConfigError, match=r"^model\.architecture: the vqvae family has its own"):
        from_dict({"model": {"family": "vqvae", "architecture": "mlp"}})
    with pytest.raises(ConfigError, match=r"^model\.vqvae\.decay: must be in"):
        from_dict({"model": {"family": "vqvae", "vqvae": {"decay": 1.0}}})


def test_train_embed_probe_on_digits(tmp_path, capsys):
    run_dir = tmp_path / "vq"
    args = ["train", "--dataset", "digits", "--model", "vqvae", "--latent-dim", "8", "--epochs"]
    args += ["3", "--no-progress", "--set", "model.vqvae.channels=32", "--out", str(run_dir)]
    assert main(args) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["codes_used"] + summary["dead_codes"] == 128
    assert 1 <= summary["codebook_perplexity"] <= summary["codes_used"]
    with open(run_dir / "logs" / "metrics.csv") as f:
        assert {"train/perplexity", "train/codes_used", "val/prior", "val/commitment"} <= set(
            next(csv.reader(f))
        )

    assert main(["embed", str(run_dir), "--kind", "map", "codes"]) == 0
    codes = Embeddings.load(run_dir / "embeddings" / "codes.npz")
    assert codes.features["test"].shape[1] == 128
    np.testing.assert_allclose(codes.features["test"].sum(1), 1.0, rtol=1e-5)
    assert Embeddings.load(run_dir / "embeddings" / "map.npz").features["test"].shape[1] == 128
    capsys.readouterr()
    assert main(["probe", str(run_dir), "--kind", "map", "codes", "--probes", "linear"]) == 0
    records = json.loads((run_dir / "probes.json").read_text())
    assert {r["kind"] for r in records} == {"map", "codes"}
    assert all(r["accuracy"] > 0.3 for r in records)  # 10 classes

    assert main(["embed", str(run_dir), "--kind", "sample"]) == 2
    assert "its representations are map (the quantised vectors) and codes" in (
        capsys.readouterr().err
    )
    samples = tmp_path / "samples.png"
    assert main(["sample", str(run_dir), "-n", "4", "--out", str(samples)]) == 0
    assert samples.read_bytes().startswith(b"\x89PNG")
    run = load(run_dir, device="cpu")
    assert run.model.reconstruct(run.config.data.load().test.images[:2]).shape == (2, *SHAPE)

    only = ["probes", "likelihood", "information", "pictures"]
    args = ["evaluate", str(run_dir), "--only", *only, "--kind", "map", "codes", "sample"]
    assert main([*args, "--probes", "linear"]) == 0
    assert "probe on sample skipped: a VQ-VAE encodes each image" in capsys.readouterr().out
    evaluation = run_dir / "evaluation"
    assert "skipped" in json.loads((evaluation / "likelihood.json").read_text())
    assert {"samples.png", "reconstructions.png"} <= {p.name for p in evaluation.glob("*.png")}

    # the code map is what the store keeps, the ONNX encoder gives and search compares
    assert run.model.representation_dim == 128 and run.model.prefixes == [128]
    assert main(["export", str(run_dir), "--format", "onnx"]) == 0
    store = tmp_path / "store"
    args = ["index", str(run_dir), "--out", str(store), "--encoder", "onnx", "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(["search", str(store), "--query", "3", "-k", "2"]) == 0
    assert "flat at m = 128" in capsys.readouterr().out
