"""Figures must show what the rows say: line counts, values in %, axis labels, stable colours."""

import sys

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.container import ErrorbarContainer
from matplotlib.image import imread
from threadpoolctl import threadpool_limits

from repvae.plots.figures import (
    accuracy_figure,
    accuracy_vs_latent,
    latent_scatter,
    method_colours,
    project_2d,
    scatter_figure,
    scatter_grid,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIZES = (2, 8, 32)


def rows_for(methods, kinds=("map", "sample"), sizes=SIZES):
    """One row per (method, kind, size), accuracy rising with the size."""
    return [
        {"method": m, "kind": k, "latent": s, "accuracy": 0.5 + 0.1 * i + s / 1000, "std": 0.01}
        for i, m in enumerate(methods)
        for k in kinds
        for s in sizes
    ]


PUBLISHED = [{"method": "VAE", "kind": "map", "latent": s, "accuracy": 0.6} for s in (2, 32)]


def curves(ax):
    """The drawn lines of an axes, keyed by legend label."""
    return {c.get_label(): c for c in ax.containers if isinstance(c, ErrorbarContainer)}


def test_accuracy_png_is_valid_and_of_the_figure_size(tmp_path):
    rows = rows_for(["VAE", "InfoVAE"])
    path = accuracy_vs_latent(rows, tmp_path / "sub" / "acc.png", published=PUBLISHED, title="t")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    width, height = accuracy_figure(rows, published=PUBLISHED, title="t").get_size_inches() * 150
    assert imread(path).shape[:2] == (round(height), round(width))


def test_accuracy_lines_panels_and_values():
    fig = accuracy_figure(rows_for(["VAE", "InfoVAE"]), published=PUBLISHED)
    map_ax, sample_ax = fig.axes
    assert [map_ax.get_title(), sample_ax.get_title()] == ["MAP", "posterior sample"]
    assert set(curves(map_ax)) == {"VAE", "InfoVAE", "VAE (published)"}
    assert set(curves(sample_ax)) == {"VAE", "InfoVAE"}  # published rows were for MAP only
    assert sample_ax.get_shared_y_axes().joined(map_ax, sample_ax)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "InfoVAE",
        "VAE",
        "VAE (published)",
    ]

    line, _, _ = curves(map_ax)["InfoVAE"].lines
    np.testing.assert_allclose(np.asarray(line.get_xdata(), float), SIZES)
    np.testing.assert_allclose(
        np.asarray(line.get_ydata(), float), [100 * (0.6 + s / 1000) for s in SIZES]
    )
    assert curves(map_ax)["InfoVAE"].has_yerr
    published, _, _ = curves(map_ax)["VAE (published)"].lines
    assert published.get_linestyle() == "--" and published.get_markerfacecolor() == "none"

    assert map_ax.get_xscale() == "log"
    assert list(map_ax.get_xticks()) == list(SIZES)
    assert map_ax.get_xlabel() == "latent size"
    assert map_ax.get_ylabel() == "probe accuracy (%)"


def test_accuracy_colours_are_stable_across_figures_and_panels():
    both = accuracy_figure(rows_for(["VAE", "InfoVAE"]), published=PUBLISHED)
    alone = accuracy_figure(rows_for(["VAE"], kinds=("map",)), panel=None)
    colour = {
        to_rgba(c.lines[0].get_color())
        for ax in both.axes + alone.axes
        for c in ax.containers
        if c.get_label().startswith("VAE")
    }
    assert colour == {to_rgba("tab:blue")}
    assert len(alone.axes) == 1
    assert method_colours(["zeta", "alpha"]) == {"alpha": "tab:brown", "zeta": "tab:pink"}


def test_accuracy_refuses_two_points_of_one_line_at_one_size():
    rows = rows_for(["VAE"], kinds=("map",))
    with pytest.raises(ValueError, match="filter the rows"):
        accuracy_figure(rows + rows)


def stretched(n=400, d=6, seed=0):
    """Codes spread along one direction only (plus negligible noise), 3 classes."""
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=d)
    codes = rng.normal(size=(n, 1)) * direction + 1e-6 * rng.normal(size=(n, d))
    return codes, np.arange(n) % 3


def test_pca_of_one_direction_puts_all_variance_in_pc1(tmp_path):
    codes, labels = stretched()
    ax = scatter_figure([("t", codes, labels)], method="pca").axes[0]
    assert ax.get_xlabel() == "PC1 (100.0% var)"
    assert ax.get_ylabel() == "PC2 (0.0% var)"
    path = latent_scatter(codes, labels, tmp_path / "pca.png", class_names=["a", "b", "c"])
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_direct_uses_raw_coordinates():
    rng = np.random.default_rng(1)
    codes = rng.normal(loc=(50.0, -7.0), scale=(3.0, 0.5), size=(200, 2))
    labels = np.arange(200) % 4
    fig = scatter_figure([("", codes, labels)], method="auto", class_names=list("abcd"))
    ax = fig.axes[0]
    (xmin, xmax), (ymin, ymax) = ax.get_xlim(), ax.get_ylim()
    assert xmin <= codes[:, 0].min() and codes[:, 0].max() <= xmax
    assert ymin <= codes[:, 1].min() and codes[:, 1].max() <= ymax
    assert xmin > 30 and ymax < 0  # axes fit the raw data, not a centred projection
    drawn = ax.collections[0].get_offsets()
    np.testing.assert_allclose(np.sort(drawn, axis=0), np.sort(codes, axis=0))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list("abcd")


def test_umap_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # makes `import umap` fail, installed or not
    codes, labels = stretched(n=20)
    with pytest.raises(ValueError, match="pip install umap-learn"):
        project_2d(codes, labels, method="umap")


def test_unknown_projection_and_bad_shapes_are_rejected():
    codes, labels = stretched(n=20)
    with pytest.raises(ValueError, match="unknown projection"):
        project_2d(codes, labels, method="lda")
    with pytest.raises(ValueError, match="direct"):
        project_2d(codes, labels, method="direct")
    with pytest.raises(ValueError, match="labels"):
        project_2d(codes, labels[:-1])


def test_subsampling_keeps_max_points_and_is_seeded():
    codes, labels = stretched(n=500)
    first = project_2d(codes, labels, method="pca", max_points=100, seed=3)
    again = project_2d(codes, labels, method="pca", max_points=100, seed=3)
    other = project_2d(codes, labels, method="pca", max_points=100, seed=4)
    assert first.xy.shape == (100, 2) and first.labels.shape == (100,)
    np.testing.assert_array_equal(first.xy, again.xy)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.xy, other.xy)
    ax = scatter_figure([("", codes, labels)], max_points=50).axes[0]
    assert len(ax.collections[0].get_offsets()) == 50


def test_tsne_is_seeded():
    # t-SNE's 1000 short OpenMP loops spin-wait for busy cores (66 s seen on a loaded 2-core box):
    # one thread keeps this test well under a second. The import comes first, as threadpoolctl
    # limits only libraries already loaded.
    import sklearn.manifold  # noqa: F401

    codes, labels = stretched(n=40)
    with threadpool_limits(1):
        first = project_2d(codes, labels, method="tsne", seed=0)
        again = project_2d(codes, labels, method="tsne", seed=0)
    assert first.xy.shape == (40, 2) and np.isfinite(first.xy).all()
    np.testing.assert_allclose(first.xy, again.xy)
    assert first.xlabel == "t-SNE 1" and not first.ticks


def test_scatter_grid_shares_one_legend_and_class_colours(tmp_path):
    rng = np.random.default_rng(2)
    panels = [
        ("VAE", rng.normal(size=(60, 2)), np.arange(60) % 3),
        ("InfoVAE", rng.normal(size=(40, 5)), np.arange(40) % 2),  # class 2 absent here
    ]
    fig = scatter_figure(panels)
    assert [ax.get_title() for ax in fig.axes] == ["VAE", "InfoVAE"]
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["0", "1", "2"]
    for ax, (_, _, labels) in zip(fig.axes, panels, strict=True):
        colours = ax.collections[0].get_facecolors()[:, :3]
        shown = project_2d(*panels[fig.axes.index(ax)][1:], max_points=3000).labels
        np.testing.assert_allclose(colours[shown == 1], [to_rgba("tab:orange")[:3]] * 20)
        assert len(colours) == len(labels)
    path = scatter_grid(panels, tmp_path / "grid.png")
    assert path.read_bytes()[:8] == PNG_SIGNATURE
