"""Model pictures must show what the model computes: tiles in place, one row per prefix, traversal
rows ordered by KL, interpolations ending at the two posterior means, every logged curve drawn."""

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgba
from matplotlib.image import imread
from matplotlib.patches import Rectangle

from repvae.config import Config, ModelConfig
from repvae.models.cvae import CVAE, CVAESection
from repvae.models.distributions import DiagonalGaussian
from repvae.models.vae import VAE, VAESection
from repvae.plots.figures import DPI
from repvae.plots.pictures import (
    MARK_COLOUR,
    image_grid,
    interpolations_figure,
    loss_curves_figure,
    reconstructions_figure,
    sample_figure,
    samples_figure,
    save_pictures,
    shared_z_samples_figure,
    tile_images,
    traversal_dims,
    traversals_figure,
)
from repvae.run import Run

SHAPE = (1, 8, 8)


@pytest.fixture
def model() -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(latent_dim=4), shape=SHAPE)


@pytest.fixture
def nested() -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(latent_dim=4, section=VAESection(nesting=[2, 4])), shape=SHAPE)


@pytest.fixture
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (12, *SHAPE), dtype=torch.uint8, generator=generator)


def shown(fig) -> np.ndarray:
    """The single image a picture draws."""
    return np.asarray(fig.axes[0].images[0].get_array())


def tile(grid: np.ndarray, row: int, col: int, h: int, w: int, pad: int = 1) -> np.ndarray:
    y, x = row * (h + pad), col * (w + pad)
    return grid[y : y + h, x : x + w]


def texts(labels) -> list[str]:
    return [t.get_text() for t in labels]


def fake_decoder(monkeypatch, model: VAE) -> None:
    """decode(z) = z as a 2x2 image, so that a picture's pixel is sigmoid of a latent value."""
    monkeypatch.setattr(model, "decode", lambda z, prefix=None, x=None: z.reshape(-1, 1, 2, 2))


# --- tiling -----------------------------------------------------------------------------------


def test_tile_images_puts_each_image_at_its_tile():
    images = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 1, 2, 3) / 30
    grid = tile_images(images, 3, pad=1, pad_value=1.0)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2)
    for i, image in enumerate(images):
        np.testing.assert_array_equal(tile(grid, i // 3, i % 3, 2, 3), image[0])
    assert (grid[2, :] == 1.0).all() and (grid[:, 3] == 1.0).all()  # separators
    assert (tile(grid, 1, 2, 2, 3) == 1.0).all()  # the cell past the last image


def test_tile_images_scales_uint8_and_keeps_rgb():
    images = np.zeros((2, 3, 2, 2), dtype=np.uint8)
    images[1, 0] = 255  # second image pure red
    grid = tile_images(images, 2)
    assert grid.shape == (2, 5, 3)
    np.testing.assert_array_equal(tile(grid, 0, 1, 2, 2), [[[1.0, 0, 0]] * 2] * 2)
    assert (tile(grid, 0, 0, 2, 2) == 0).all()


def test_stacked_modalities_are_shown_side_by_side():
    """[N, 3 M, H, W] (multimodal data: modalities along the channels) tiles as M RGB images in
    a row; 2 gray modalities as two gray images."""
    images = np.zeros((1, 6, 2, 2), dtype=np.uint8)
    images[0, 3] = 255  # the second modality pure red
    grid = tile_images(images, 1)
    assert grid.shape == (2, 4, 3)
    assert (grid[:, :2] == 0).all() and (grid[:, 2:] == [1.0, 0, 0]).all()
    assert tile_images(np.ones((1, 2, 4, 4)), 1).shape == (4, 8)
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        tile_images(np.zeros((2, 4, 4)), 1)


def test_image_grid_shows_the_tiles_in_gray_with_labels_and_no_tick_marks():
    images = torch.rand(6, 1, 4, 4)
    fig = image_grid(images, 3, row_labels=["a", "b"], col_labels=["x", "y", "z"], title="t")
    ax = fig.axes[0]
    np.testing.assert_allclose(shown(fig), tile_images(images, 3))
    assert ax.images[0].get_cmap().name == "gray"
    assert texts(ax.get_yticklabels()) == ["a", "b"]
    assert texts(ax.get_xticklabels()) == ["x", "y", "z"]
    assert all(t.get_size() >= 9 for t in [*ax.get_yticklabels(), *ax.get_xticklabels()])
    assert ax.yaxis.get_major_ticks()[0].tick1line.get_markersize() == 0


# --- model pictures ---------------------------------------------------------------------------


def test_reconstructions_show_originals_then_one_row(model, images):
    model.train()
    fig = reconstructions_figure(model, images, n=5)
    ax = fig.axes[0]
    assert texts(ax.get_yticklabels()) == ["original", "reconstruction"]
    grid = shown(fig)
    assert grid.shape == (2 * 9 - 1, 5 * 9 - 1)
    np.testing.assert_allclose(tile(grid, 0, 3, 8, 8), images[3, 0].numpy() / 255, atol=1e-6)
    model.eval()
    expected = model.reconstruct(images[3:4])[0, 0].numpy()
    np.testing.assert_allclose(tile(grid, 1, 3, 8, 8), expected, atol=1e-6)
    assert model.training is False  # eval was ours; the figure restores the mode it found
    model.train()
    reconstructions_figure(model, images)
    assert model.training


def test_nested_reconstructions_have_a_row_per_prefix(nested, images):
    fig = reconstructions_figure(nested, images)
    assert texts(fig.axes[0].get_yticklabels()) == ["original", "m=2", "m=4"]
    assert shown(fig).shape == (3 * 9 - 1, 10 * 9 - 1)
    only_small = reconstructions_figure(nested, images, prefixes=[2])
    assert texts(only_small.axes[0].get_yticklabels()) == ["original", "m=2"]


def test_samples_are_seeded_and_titled(model, nested):
    fig = samples_figure(model, n=64, seed=3)
    assert fig.axes[0].get_title() == "samples from the prior (mean of p(x|z))"
    assert shown(fig).shape == (8 * 9 - 1, 8 * 9 - 1)
    np.testing.assert_array_equal(shown(fig), shown(samples_figure(model, n=64, seed=3)))
    assert not np.array_equal(shown(fig), shown(samples_figure(model, n=64, seed=4)))
    assert shown(samples_figure(model, n=10)).shape == (3 * 9 - 1, 4 * 9 - 1)
    assert samples_figure(nested, n=4, prefix=2).axes[0].get_title().endswith("m=2")


def test_sample_figure_tiles_n_draws_or_every_class_by_rows_of_z(model):
    # an unconditional model: n draws in a square-ish grid of 8x8 tiles with 1-pixel gaps
    assert shown(sample_figure(model, n=6)).shape == (2 * 9 - 1, 3 * 9 - 1)
    assert shown(sample_figure(model)).shape == (8 * 9 - 1, 8 * 9 - 1)
    torch.manual_seed(0)
    config = ModelConfig(family="cvae", latent_dim=2, architecture="mlp", section=CVAESection())
    cvae = CVAE(config, SHAPE, 5)
    fig = sample_figure(cvae, n=3, seed=2)  # 3 rows of z, one column per class
    assert shown(fig).shape == (3 * 9 - 1, 5 * 9 - 1)
    assert texts(fig.axes[0].get_xticklabels()) == ["0", "1", "2", "3", "4"]
    # along a row z is shared: the tile of class c is the decoding of that z with label c
    z = torch.randn(3, 2, generator=torch.Generator().manual_seed(2))
    expected = cvae.generate(z[1:2], labels=torch.tensor([4]))[0, 0].numpy()
    np.testing.assert_allclose(tile(shown(fig), 1, 4, 8, 8), expected, atol=1e-6)
    with_label = sample_figure(cvae, n=4, label=2)
    assert shown(with_label).shape == (2 * 9 - 1, 2 * 9 - 1)
    assert with_label.axes[0].get_title().endswith("class 2")
    with pytest.raises(ValueError, match="-n: must be >= 1"):
        sample_figure(cvae, n=0)


def test_shared_z_samples_repeat_one_prior_draw_per_row(monkeypatch, tiny_pixel_vae):
    torch.manual_seed(0)
    model = tiny_pixel_vae(shape=SHAPE).eval()
    decoded: list[torch.Tensor] = []
    generate = model.generate

    def recording(z, prefix=None, generator=None):
        decoded.append(z)
        return generate(z, prefix, generator)

    monkeypatch.setattr(model, "generate", recording)
    fig = shared_z_samples_figure(model, rows=3, per_row=4, seed=1)
    z = decoded[0].view(3, 4, -1)
    torch.testing.assert_close(z, z[:, :1].expand_as(z))  # one z along each row
    assert not torch.equal(z[0, 0], z[1, 0])  # a fresh z per row
    grid = shown(fig)
    assert grid.shape == (3 * 9 - 1, 4 * 9 - 1)
    assert texts(fig.axes[0].get_yticklabels()) == ["z1", "z2", "z3"]
    # the draws along a row differ: the head samples pixel by pixel, not the mean of p(x|z)
    assert not np.array_equal(tile(grid, 0, 0, 8, 8), tile(grid, 0, 1, 8, 8))
    with pytest.raises(ValueError, match="autoregressive"):
        shared_z_samples_figure(VAE(ModelConfig(latent_dim=4), shape=SHAPE))


def known_posterior(means: list[float]):
    """An encoder whose posterior is N(means, 1) for every image: KL_i = means_i^2 / 2."""

    def encode(x):
        mean = torch.tensor(means).expand(len(x), -1)
        return DiagonalGaussian(mean, torch.ones_like(mean))

    return encode


def test_traversal_dims_are_sorted_by_mean_kl(monkeypatch, model, images):
    monkeypatch.setattr(model, "encode", known_posterior([0.0, 2.0, 0.5, 1.0]))
    assert traversal_dims(model, images, max_dims=3) == [1, 3, 2]
    assert traversal_dims(model, images) == [1, 3, 2, 0]


def test_traversal_dims_skip_latents_no_decoder_reads(monkeypatch):
    small = VAE(ModelConfig(latent_dim=4, section=VAESection(nesting=[2])), shape=SHAPE)
    monkeypatch.setattr(small, "encode", known_posterior([0.5, 0.0, 3.0, 2.0]))
    assert traversal_dims(small, torch.zeros(2, *SHAPE)) == [0, 1]


def test_traversals_sweep_one_dimension_per_row(monkeypatch, model, images):
    means = [0.0, 2.0, 0.5, 1.0]
    monkeypatch.setattr(model, "encode", known_posterior(means))
    fake_decoder(monkeypatch, model)
    fig = traversals_figure(model, images[0], span=3.0, steps=7, max_dims=2)
    ax = fig.axes[0]
    assert texts(ax.get_yticklabels()) == ["$z_{1}$ (KL=2.00)", "$z_{3}$ (KL=0.50)"]
    assert texts(ax.get_xticklabels()) == ["-3", "-2", "-1", "0", "1", "2", "3"]
    grid = shown(fig)
    for row, dim in enumerate([1, 3]):
        for col, value in enumerate(np.linspace(-3, 3, 7)):
            z = torch.tensor(means)
            z[dim] = float(value)
            expected = torch.sigmoid(z).reshape(2, 2).numpy()
            np.testing.assert_allclose(tile(grid, row, col, 2, 2), expected, atol=1e-6)
    chosen = traversals_figure(model, images[:4], dims=[3])
    assert texts(chosen.axes[0].get_yticklabels()) == ["$z_{3}$ (KL=0.50)"]
    assert "mean KL over 4 images" in chosen.axes[0].get_title()


def test_interpolations_run_between_the_two_posterior_means(monkeypatch, model):
    # encode(x) = logit(x), decode = identity: decoding a posterior mean gives the image back.
    monkeypatch.setattr(
        model,
        "encode",
        lambda x: DiagonalGaussian(torch.logit(x.flatten(1)), torch.ones(len(x), 4)),
    )
    fake_decoder(monkeypatch, model)
    a, b = torch.full((1, 2, 2), 0.2), torch.tensor([[[0.9, 0.8], [0.7, 0.6]]])
    c, d = torch.full((1, 2, 2), 0.5), torch.full((1, 2, 2), 0.25)
    fig = interpolations_figure(model, [(a, b), (c, d)], steps=5)
    ax, grid = fig.axes[0], shown(fig)
    assert grid.shape == (2 * 3 - 1, 7 * 3 - 1)
    assert texts(ax.get_xticklabels()) == ["A", "0", "0.25", "0.5", "0.75", "1", "B"]
    for col, expected in [(0, a), (1, a), (5, b), (6, b)]:
        np.testing.assert_allclose(tile(grid, 0, col, 2, 2), expected[0], atol=1e-6)
    middle = torch.sigmoid((torch.logit(c) + torch.logit(d)) / 2)[0]
    np.testing.assert_allclose(tile(grid, 1, 3, 2, 2), middle, atol=1e-6)
    frames = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(frames) == 4 and all(p.get_edgecolor() == to_rgba(MARK_COLOUR) for p in frames)
    assert ax.get_xticklabels()[0].get_color() == MARK_COLOUR


# --- training curves --------------------------------------------------------------------------

NESTED_CSV = """\
epoch,loss,step,train/kl/2,train/kl/4,train/recon/2,train/recon/4,train/mmd/2,val/loss,val/kl/2,val/kl/4,lr-Adam
0,10.0,9,1.0,2.0,5.0,4.0,-0.01,,,,0.001
0,8.0,19,1.5,,4.5,3.5,0.02,,,,0.001
0,,19,,,,,,9.0,1.2,2.2,
"""

PLAIN_CSV = """\
epoch,loss,step,train/kl,train/recon,val/kl,val/loss,val/recon
0,212.7,49,0.8,211.9,,,
0,,99,,,17.1,131.5,114.4
"""


def curves(ax) -> dict[str, tuple[list, list]]:
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for line in ax.get_lines()
    }


def test_loss_curves_draw_every_term_split_and_prefix(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(NESTED_CSV)
    fig = loss_curves_figure(path)
    loss, recon, kl, mmd = fig.axes
    assert curves(loss) == {"train": ([9, 19], [10.0, 8.0]), "val": ([19], [9.0])}
    assert curves(recon) == {"train m=2": ([9, 19], [5.0, 4.5]), "train m=4": ([9, 19], [4.0, 3.5])}
    assert curves(kl) == {
        "train m=2": ([9, 19], [1.0, 1.5]),
        "val m=2": ([19], [1.2]),
        "train m=4": ([9], [2.0]),  # the blank is skipped, not read as 0
        "val m=4": ([19], [2.2]),
    }
    assert curves(mmd) == {"train m=2": ([9, 19], [-0.01, 0.02])}
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log", "log", "linear"]
    assert {ax.get_xlabel() for ax in fig.axes} == {"step"}
    assert loss.get_ylabel() == "nats per image"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]  # one legend for all panels
    assert legend == ["train", "val", "m=2", "m=4"]


def test_loss_curves_of_a_plain_vae_have_a_legend_per_panel(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(PLAIN_CSV)
    fig = loss_curves_figure(path)
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "val"]
    assert [ax.get_title() for ax in fig.axes] == [
        "total loss",
        "reconstruction  −log p(x|z)",
        "KL(q(z|x) ‖ p(z))",
    ]


def test_loss_curves_need_a_loss_column(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,lr-Adam\n0,9,0.001\n")
    with pytest.raises(ValueError, match="no loss"):
        loss_curves_figure(path)


# --- all pictures of a run --------------------------------------------------------------------


def test_save_pictures_writes_each_png(tmp_path, model):
    config = Config(model=ModelConfig(latent_dim=4))  # digits: bundled 8x8 images, no download
    run = Run(tmp_path / "run", config, model.train())
    written = save_pictures(run, tmp_path / "pictures")
    assert sorted(written) == ["interpolations", "reconstructions", "samples", "traversals"]
    assert model.training
    (tmp_path / "run" / "logs").mkdir(parents=True)
    (tmp_path / "run" / "logs" / "metrics.csv").write_text(NESTED_CSV)
    written = save_pictures(run, tmp_path / "pictures", split="val")
    assert written["loss_curves"] == tmp_path / "pictures" / "loss_curves.png"
    for path in written.values():
        assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    width = imread(written["samples"]).shape[1]  # 8 tiles of 0.55 inch, plus a margin
    assert width == pytest.approx(8 * 0.55 * DPI, rel=0.1)
    with pytest.raises(ValueError, match="split"):
        save_pictures(run, tmp_path, split="training")


def test_save_pictures_of_a_pixelvae_add_the_shared_z_samples(tmp_path, tiny_pixel_vae):
    torch.manual_seed(0)
    model = tiny_pixel_vae(shape=SHAPE).eval()
    config = Config(model=model.config)
    written = save_pictures(Run(tmp_path / "run", config, model), tmp_path / "pictures")
    assert "samples_shared_z" in written
    assert written["samples_shared_z"].read_bytes().startswith(b"\x89PNG")
