"""Pictures of what a trained model does: reconstructions, prior samples, latent traversals,
interpolations (for class-conditional models: class analogies), and its training curves.

Result plots live in :mod:`repvae.plots.figures` (latent scatters included); this module shows
the model itself, asking its capabilities which pictures it has. Each picture is one image: the
tiles are laid out with numpy into a single array and drawn with one ``imshow``, so that a
64-tile grid costs one axes, not 64, and row and column labels are the axes' tick labels
(readable, and easy to inspect in tests).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import LogFormatter

from repvae.data import ImageData
from repvae.models import Model, Unsupported
from repvae.models.distributions import DiagonalGaussian
from repvae.plots.figures import STYLE, new_figure, save_figure
from repvae.run import Run

TILE_INCHES = 0.55
MARK_COLOUR = "tab:orange"
SPLITS = ("train", "val", "test")

_TERMS = {
    "loss": ("total loss", "nats per image"),
    "recon": ("reconstruction  −log p(x|z)", "nats per image"),
    "kl": ("KL(q(z|x) ‖ p(z))", "nats per image"),
    "mmd": ("MMD²(q(z), p(z)), unbiased", "squared MMD"),
}
_SPLIT_COLOURS = {"train": "tab:blue", "val": "tab:orange"}


# --- tiling -----------------------------------------------------------------------------------


def side_by_side(array: np.ndarray) -> np.ndarray:
    """[N, M C, H, W] modalities stacked along the channels (C = 3, or 1 when M C is not a
    multiple of 3) -> [N, C, H, M W], the modalities left to right, as one image each."""
    n, channels, h, w = array.shape
    c = 3 if channels % 3 == 0 else 1
    m = channels // c
    return array.reshape(n, m, c, h, w).transpose(0, 2, 3, 1, 4).reshape(n, c, h, m * w)


def _as_float_images(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """uint8 or float [N, C, H, W] -> float32 numpy in [0, 1]; 1 or 3 channels are one image,
    more are modalities stacked along the channels, shown side by side."""
    array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
    array = np.asarray(array)
    if array.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got {array.shape}")
    if array.shape[1] not in (1, 3):
        array = side_by_side(array)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def tile_images(
    images: torch.Tensor | np.ndarray, nrow: int, *, pad: int = 1, pad_value: float = 1.0
) -> np.ndarray:
    """Tile ``nrow`` images per row (as torchvision's ``make_grid``) with ``pad`` pixels between.

    Returns [H', W'] for grayscale and [H', W', 3] for RGB, in [0, 1]. Tile (r, c) starts at
    pixel (r * (H + pad), c * (W + pad)); there is no outer border, so the picture's edge is the
    tiles' edge. Cells past the last image keep ``pad_value``.
    """
    array = _as_float_images(images)
    n, c, h, w = array.shape
    rows = math.ceil(n / nrow)
    grid = np.full((c, rows * (h + pad) - pad, nrow * (w + pad) - pad), pad_value, np.float32)
    for i, image in enumerate(array):
        y, x = (i // nrow) * (h + pad), (i % nrow) * (w + pad)
        grid[:, y : y + h, x : x + w] = image
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def image_grid(
    images: torch.Tensor | np.ndarray,
    nrow: int,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "",
    pad: int = 1,
) -> Figure:
    """:func:`tile_images` drawn as one image: gray colormap for 1 channel, RGB for 3, no ticks.

    ``row_labels`` go left of the rows and ``col_labels`` above the columns, as tick labels.
    """
    array = _as_float_images(images)
    grid = tile_images(array, nrow, pad=pad)
    h, w = array.shape[2:]
    rows = math.ceil(len(array) / nrow)
    label_inches = 0.075 * max((len(s) for s in row_labels or []), default=0)
    title_width = 0.09 * max((len(line) for line in title.split("\n")), default=0)
    title_inches = 0.3 * (title.count("\n") + 1) if title else 0.0
    height = rows * TILE_INCHES + title_inches + (0.3 if col_labels else 0.0) + 0.1
    with matplotlib.rc_context(STYLE):
        tile_width = TILE_INCHES * w / h  # wider tiles: modalities side by side
        fig = new_figure(max(nrow * tile_width + label_inches, title_width) + 0.15, height)
        ax = fig.add_subplot()
        ax.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_yticks([r * (h + pad) + (h - 1) / 2 for r in range(rows)] if row_labels else [])
        if row_labels:
            ax.set_yticklabels(row_labels)
        ax.set_xticks([c * (w + pad) + (w - 1) / 2 for c in range(nrow)] if col_labels else [])
        if col_labels:
            ax.set_xticklabels(col_labels)
        ax.xaxis.tick_top()
        ax.tick_params(length=0)
        ax.spines[:].set_visible(False)
        if title:
            ax.set_title(title)
    return fig


def _mark_tile(ax: Axes, row: int, col: int, h: int, w: int, pad: int = 1) -> None:
    """Frame tile (row, col) of an :func:`image_grid` so that it reads as different (real)."""
    x, y = col * (w + pad) - 0.5, row * (h + pad) - 0.5
    ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=MARK_COLOUR, linewidth=1.5))


# --- model pictures ---------------------------------------------------------------------------


@contextmanager
def _evaluating(model: Model) -> Iterator[torch.device]:
    """Eval mode (batch-norm running statistics) without autograd; restores the mode after.

    Yields the device of the model's parameters, where the inputs have to go.
    """
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield next(model.parameters()).device
    finally:
        model.train(was_training)


def reconstructions_figure(
    model: Model, images: torch.Tensor, *, n: int = 10, prefixes: Sequence[int] | None = None
) -> Figure:
    """Originals on top, then one row of posterior-mean reconstructions per decoded prefix."""
    prefixes = list(prefixes or model.prefixes)
    images = images[:n]
    with _evaluating(model) as device:
        x = images.to(device)
        rows = [model.preprocess(x)] + [model.reconstruct(x, m) for m in prefixes]
    nested = len(model.prefixes) > 1
    labels = ["original"] + [f"m={m}" if nested else "reconstruction" for m in prefixes]
    return image_grid(
        torch.cat(rows),
        len(images),
        row_labels=labels,
        title="reconstructions from the posterior mean",
    )


def cross_generation_figure(model: Model, images: torch.Tensor) -> Figure:
    """Multimodal models: each test example (one column, its modalities side by side), its
    reconstruction from every modality, and its generation from each modality alone."""
    m = model.capabilities.modalities
    with _evaluating(model) as device:
        x = images.to(device)
        rows = [model.preprocess(x), model.reconstruct(x)]
        rows += [model.generate(model.encode_subset(x, [i]).mean) for i in range(m)]
    labels = ["example", "from all"] + [f"from modality {i + 1}" for i in range(m)]
    return image_grid(
        torch.cat(rows),
        len(images),
        row_labels=labels,
        title="reconstruction from all modalities and cross-generation from one",
    )


def samples_figure(
    model: Model,
    *,
    n: int = 64,
    seed: int = 0,
    prefix: int | None = None,
    label: int | None = None,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Decoded prior draws: the mean of p(x|z), as its samples would be mostly pixel noise
    (a PixelCNN decoder has no closed-form mean, so there they are ancestral draws); all of
    class ``label`` for a class-conditional model."""
    labels = None
    if label is not None:
        check_label(model, label)
    with _evaluating(model) as device:
        generator = torch.Generator(device=device).manual_seed(seed)
        if label is not None:
            labels = torch.full((n,), label, dtype=torch.long, device=device)
        images = model.sample(n, generator=generator, prefix=prefix, labels=labels)
    shown = "ancestral draws of p(x|z)" if model.capabilities.autoregressive else "mean of p(x|z)"
    title = f"samples from the prior ({shown})"
    if len(model.prefixes) > 1:
        title += f", m={prefix or model.prefixes[-1]}"
    if label is not None:
        title += f", class {class_names[label] if class_names else label}"
    return image_grid(images, math.ceil(math.sqrt(n)), title=title)


def check_label(model: Model, label: int) -> None:
    """Refuse a class a model cannot generate by: not class-conditional, or out of range."""
    if not model.capabilities.conditional:
        raise Unsupported(
            f"--label: the {model.family} family does not generate by class (its decoder reads "
            "no label)"
        )
    if not 0 <= label < model.num_classes:
        raise ValueError(f"--label: {label} is not a class (0 to {model.num_classes - 1})")


def class_samples_figure(
    model: Model, *, rows: int = 8, seed: int = 0, class_names: Sequence[str] | None = None
) -> Figure:
    """A class-conditional model's samples: one prior z per row decoded with every class y (one
    per column), so that along a row the style stays and the class changes."""
    if not model.capabilities.generates:
        raise model.unsupported("generates")
    if not model.capabilities.conditional:
        raise model.unsupported("conditional")
    k = model.num_classes
    with _evaluating(model) as device:
        generator = torch.Generator(device=device).manual_seed(seed)
        z = torch.randn(rows, model.latent_dim, generator=generator, device=device)
        y = torch.arange(k, device=device).repeat(rows)
        images = model.generate(z.repeat_interleave(k, 0), generator=generator, labels=y)
    return image_grid(
        images,
        k,
        row_labels=[f"z{r + 1}" for r in range(rows)],
        col_labels=list(class_names) if class_names else [str(c) for c in range(k)],
        title="samples by class: one prior z per row, decoded with each class y",
    )


def sample_figure(
    model: Model,
    *,
    n: int | None = None,
    label: int | None = None,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """What ``repvae sample`` draws: ``n`` prior samples (64 by default), of class ``label`` for
    a class-conditional model; without a label such a model shows every class for ``n`` prior
    draws of z (8 rows by default). A model that cannot generate is refused with its reason."""
    if not model.capabilities.generates:
        raise model.unsupported("generates")
    if n is not None and n < 1:
        raise ValueError(f"-n: must be >= 1, got {n}")
    if label is None and model.capabilities.conditional:
        return class_samples_figure(model, rows=n or 8, seed=seed, class_names=class_names)
    return samples_figure(model, n=n or 64, seed=seed, label=label, class_names=class_names)


def shared_z_samples_figure(
    model: Model, *, rows: int = 8, per_row: int = 8, seed: int = 0, prefix: int | None = None
) -> Figure:
    """Ancestral draws of an autoregressive decoder, one prior z per row (Zhang et al.'s
    Figure 8): what stays fixed along a row is what the latent carries, what varies is left to
    the PixelCNN head (for a local head, strokes and texture; for a full head, more)."""
    if not model.capabilities.autoregressive:
        raise ValueError("shared-z samples need an autoregressive decoder (a PixelCNN head)")
    with _evaluating(model) as device:
        generator = torch.Generator(device=device).manual_seed(seed)
        z = torch.randn(rows, model.latent_dim, generator=generator, device=device)
        images = model.generate(z.repeat_interleave(per_row, 0), prefix, generator)
    labels = [f"z{r + 1}" for r in range(rows)]
    title = "ancestral draws of p(x|z), one prior z per row"
    return image_grid(images, per_row, row_labels=labels, title=title)


def analogies_figure(model: Model, images: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """Analogies of a class-conditional model (as in Kingma et al. 2014): each row keeps the
    style code z of one test image and decodes it with every class, so the columns show what
    went into y and what into z."""
    k = model.num_classes
    with _evaluating(model) as device:
        x = images.to(device)
        z = model.encode(x).mean.repeat_interleave(k, 0)
        y = torch.arange(k, device=device).repeat(len(x))
        decoded = model.generate(z, labels=y).view(len(x), k, *model.shape)
        rows = torch.cat([model.preprocess(x).unsqueeze(1), decoded], 1).flatten(0, 1)
    return image_grid(
        rows,
        k + 1,
        col_labels=["input", *class_names],
        title="style z of each test image, decoded with every class y",
    )


def _gaussian(model: Model, x: torch.Tensor) -> DiagonalGaussian:
    """q(z|x) of a model whose capabilities say it is a diagonal Gaussian."""
    if not model.capabilities.continuous_posterior:
        raise model.unsupported("continuous_posterior")
    return cast(DiagonalGaussian, model.encode(x))


def traversal_dims(model: Model, images: torch.Tensor, max_dims: int = 10) -> list[int]:
    """Latent dimensions by mean KL(q(z_i|x) || N(0, 1)) over ``images``, largest first.

    Dimensions with near-zero KL are ignored by the decoder (posterior collapse), so their
    traversals are blank rows; dimensions past the largest trained prefix are never decoded.
    """
    with _evaluating(model) as device:
        kl = _gaussian(model, images.to(device)).kl_standard_normal()
    mean_kl = kl[:, : model.prefixes[-1]].mean(0).cpu()
    return torch.argsort(mean_kl, descending=True, stable=True)[:max_dims].tolist()


def traversals_figure(
    model: Model,
    image: torch.Tensor,
    *,
    dims: Sequence[int] | None = None,
    span: float = 3.0,
    steps: int = 9,
    max_dims: int = 10,
) -> Figure:
    """Sweep one latent dimension at a time over [-span, span], the rest at the posterior mean.

    ``image`` is [C, H, W], or a batch [B, C, H, W] whose first image is traversed and whose mean
    KL(q(z_i|x) || N(0, 1)) labels the rows and, unless ``dims`` is given, picks them (as
    :func:`traversal_dims`): a batch shows the dimensions the model uses in general, not only
    those this one image happens to use.
    """
    x = image if image.dim() == 4 else image.unsqueeze(0)
    dims = list(dims) if dims is not None else traversal_dims(model, x, max_dims)
    values = torch.linspace(-span, span, steps)
    with _evaluating(model) as device:
        posterior = _gaussian(model, x.to(device))
        kl = posterior.kl_standard_normal().mean(0).cpu()
        z = posterior.mean[:1].repeat(len(dims) * steps, 1)
        for row, d in enumerate(dims):
            z[row * steps : (row + 1) * steps, d] = values.to(device)
        decoded = model.generate(z)
    kl_note = f"mean KL over {len(x)} images" if len(x) > 1 else "KL of this image"
    return image_grid(
        decoded,
        steps,
        row_labels=[f"$z_{{{d}}}$ (KL={kl[d]:.2f})" for d in dims],
        col_labels=[f"{v:.3g}" for v in values.tolist()],
        title=f"latent traversals: $z_i$ set to the column's value\n"
        f"(other dims at the posterior mean; {kl_note})",
    )


def interpolations_figure(
    model: Model, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], *, steps: int = 10
) -> Figure:
    """Each row: real image A (framed), decodings of (1-t)·mean_A + t·mean_B, real image B.

    t runs over linspace(0, 1, steps), so the first and last decodings are the reconstructions
    of A and B; set beside the real images they show how much reconstruction alone loses.
    """
    a = torch.stack([p[0] for p in pairs])
    b = torch.stack([p[1] for p in pairs])
    t = torch.linspace(0.0, 1.0, steps)
    with _evaluating(model) as device:
        a, b = model.preprocess(a.to(device)), model.preprocess(b.to(device))
        mean_a, mean_b = model.encode(a).mean, model.encode(b).mean
        w = t.to(device).view(1, steps, 1)
        z = ((1 - w) * mean_a.unsqueeze(1) + w * mean_b.unsqueeze(1)).flatten(0, 1)
        decoded = model.generate(z)
        decoded = decoded.view(len(pairs), steps, *decoded.shape[1:])
        rows = torch.cat([a.unsqueeze(1), decoded, b.unsqueeze(1)], dim=1).flatten(0, 1)
    fig = image_grid(
        rows,
        steps + 2,
        col_labels=["A", *(f"{v:.2g}" for v in t.tolist()), "B"],
        title="interpolation between posterior means (t above; real A and B framed)",
    )
    ax = fig.axes[0]
    for label in (ax.get_xticklabels()[0], ax.get_xticklabels()[-1]):
        label.set_color(MARK_COLOUR)
        label.set_fontweight("bold")
    for row in range(len(pairs)):
        for col in (0, steps + 1):
            _mark_tile(ax, row, col, a.shape[2], a.shape[3])
    return fig


# --- training curves --------------------------------------------------------------------------


def _series(path: str | Path) -> dict[tuple[str, str, int | None], tuple[list, list]]:
    """(split, term, prefix) -> (steps, values) from a Lightning CSVLogger file, blanks skipped.

    ``loss`` without a split is the training loss; other columns (epoch, learning rate) are not
    loss terms and are left out.
    """
    series: dict[tuple[str, str, int | None], tuple[list, list]] = {}
    with open(path, newline="") as f:
        for record in csv.DictReader(f):
            if not record.get("step"):
                continue
            for column, value in record.items():
                key = _parse_column(column)
                if key is not None and value not in ("", None):
                    steps, values = series.setdefault(key, ([], []))
                    steps.append(int(float(record["step"])))
                    values.append(float(value))
    return series


def _parse_column(column: str) -> tuple[str, str, int | None] | None:
    """``val/recon/8`` -> ("val", "recon", 8); ``loss`` -> ("train", "loss", None); else None."""
    parts = column.split("/")
    split = parts.pop(0) if parts[0] in SPLITS else "train"
    if not parts or parts[0] not in _TERMS or len(parts) > 2:
        return None
    if len(parts) == 2 and not parts[1].isdigit():
        return None
    return split, parts[0], int(parts[1]) if len(parts) == 2 else None


class _PlainLogFormatter(LogFormatter):
    """LogFormatter's choice of ticks to label, written plainly (200 and 0.6, not 2×10² and
    6e-01); its ``minor_thresholds`` label minor ticks where the axis spans few decades."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:g}" if super().__call__(x, pos) else ""


def _split_style(split: str) -> dict[str, Any]:
    """Train (logged every few steps) as a solid line; val (once an epoch) dashed, with markers."""
    if split == "train":
        return {"linestyle": "-"}
    return {"linestyle": "--", "marker": "o", "markersize": 3}


def loss_curves_figure(metrics_csv_path: str | Path) -> Figure:
    """One panel per logged term (loss, recon, kl, mmd) with train and val against step.

    Nested models log each prefix separately: one colour per prefix (the total loss in black) and
    one legend for the figure, as a legend per panel would cover the curves. The y-axis is
    logarithmic where every value is positive, so that the slow late part of training shows.
    """
    series = _series(metrics_csv_path)
    terms = [t for t in _TERMS if any(key[1] == t for key in series)]
    if not terms:
        raise ValueError(f"{metrics_csv_path}: no loss, recon, kl or mmd columns to plot")
    splits = [s for s in SPLITS if any(key[0] == s for key in series)]
    prefixes = sorted({key[2] for key in series if key[2] is not None})
    shades = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, len(prefixes)))
    colours: dict[int | None, Any] = {None: "black", **dict(zip(prefixes, shades, strict=True))}
    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.6 * len(terms) + (1.0 if prefixes else 0.4), 3.4)
        axes = fig.subplots(1, len(terms), squeeze=False)[0]
        for ax, term in zip(axes, terms, strict=True):
            keys = sorted((k for k in series if k[1] == term), key=lambda k: (k[2] or 0, k[0]))
            for split, _, prefix in keys:
                ax.plot(
                    *series[(split, term, prefix)],
                    label=split if prefix is None else f"{split} m={prefix}",
                    color=colours[prefix] if prefixes else _SPLIT_COLOURS.get(split, "tab:gray"),
                    linewidth=1.2,
                    **_split_style(split),
                )
            if all(v > 0 for k in keys for v in series[k][1]):
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(_PlainLogFormatter())
                ax.yaxis.set_minor_formatter(_PlainLogFormatter(minor_thresholds=(2, 0.5)))
            title, unit = _TERMS[term]
            ax.set(title=title, xlabel="step", ylabel=unit)
            ax.grid(True, which="both", alpha=0.3, linewidth=0.6)
            if not prefixes:
                ax.legend()
        if prefixes:
            handles = [Line2D([], [], color="black", label=s, **_split_style(s)) for s in splits]
            handles += [Line2D([], [], color=colours[m], lw=3, label=f"m={m}") for m in prefixes]
            fig.legend(handles=handles, loc="outside right upper")
    return fig


# --- all pictures of a run --------------------------------------------------------------------


def _pairs(labels: Sequence[int], order: np.ndarray, k: int) -> list[tuple[int, int]]:
    """``k`` pairs of images of different classes, so that each interpolation crosses classes."""
    pairs: list[tuple[int, int]] = []
    pool = [int(i) for i in order]
    while pool and len(pairs) < k:
        first = pool.pop(0)
        other = next((j for j in pool if labels[j] != labels[first]), None)
        if other is not None:
            pool.remove(other)
            pairs.append((first, other))
    return pairs


def model_figures(
    model: Model, dataset: ImageData, split: str = "test", seed: int = 0
) -> dict[str, Figure]:
    """The pictures a model's capabilities allow, of ``split`` images (seeded picks)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    data = getattr(dataset, split)
    order = np.random.default_rng(seed).permutation(len(data))
    images, caps = data.images, model.capabilities
    figures = {"reconstructions": reconstructions_figure(model, images[order[:10]])}
    if caps.conditional:
        # z is decoded together with a class: prior samples with one class per column, and
        # analogies instead of traversals and interpolations of z alone.
        if caps.generates:
            figures["samples"] = class_samples_figure(
                model, rows=10, seed=seed, class_names=dataset.class_names
            )
        figures["analogies"] = analogies_figure(model, images[order[:8]], dataset.class_names)
        return figures
    if caps.generates:
        figures["samples"] = samples_figure(model, seed=seed)
    if caps.modalities > 1:
        figures["cross_generation"] = cross_generation_figure(model, images[order[:6]])
    if caps.autoregressive:
        figures["samples_shared_z"] = shared_z_samples_figure(model, seed=seed)
    if caps.continuous_posterior:
        figures["traversals"] = traversals_figure(model, images[order[:1000]])
    pairs = _pairs(data.labels.tolist(), order[10:], 6)
    figures["interpolations"] = interpolations_figure(
        model, [(images[i], images[j]) for i, j in pairs]
    )
    return figures


def save_pictures(
    run: Run,
    out_dir: str | Path,
    *,
    split: str = "test",
    seed: int = 0,
    data: ImageData | None = None,
) -> dict[str, Path]:
    """Write the run's pictures of ``split`` images (seeded picks) to ``out_dir``.

    Returns name -> path of what was written; loss curves are left out when the run has no
    ``logs/metrics.csv`` (e.g. trained with ``train.logger: none``).
    """
    figures = model_figures(run.model, data or run.config.data.load(), split, seed)
    metrics = Path(run.dir) / "logs" / "metrics.csv"
    if metrics.exists():
        figures["loss_curves"] = loss_curves_figure(metrics)
    return {name: save_figure(fig, Path(out_dir) / f"{name}.png") for name, fig in figures.items()}
