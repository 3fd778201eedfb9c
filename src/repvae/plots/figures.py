"""Figures of a report: probe accuracy against latent size, and 2-D views of representations.

Figures are built as bare ``matplotlib.figure.Figure`` objects on an Agg canvas, never through
pyplot, so plotting neither depends on nor changes the process's backend or pyplot's list of
open figures (nothing has to be closed, and training jobs with a GUI backend are unaffected).
Each ``*_figure`` builder returns the Figure, which tests and notebooks can inspect or adjust; the
functions that take a path save it and return the path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType  # matplotlib >= 3.9; only read by type checkers

DPI = 150
SCATTER_METHODS = ("auto", "direct", "pca", "tsne", "umap")

# Readable at a glance: nothing below 9 pt.
STYLE: dict[RcKeyType, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 12,
}

# Known methods keep their colour in every figure of a report, whichever subset a figure shows.
_METHOD_COLOURS = {
    "vae": "tab:blue",
    "infovae": "tab:orange",
    "matryoshka-vae": "tab:green",
    "mvae": "tab:green",
    "matryoshka-infovae": "tab:red",
    "minfovae": "tab:red",
    "beta-vae": "tab:purple",
}
_SPARE_COLOURS = ("tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")

_PANEL_TITLES = {"map": "MAP", "mean": "posterior mean", "sample": "posterior sample"}
_AXIS_LABELS = {"latent": "latent size", "accuracy": "probe accuracy (%)"}


def method_colours(methods: Sequence[str]) -> dict[str, str]:
    """Colour per method: fixed for known methods, spare colours for others in sorted order."""
    colours: dict[str, str] = {}
    unknown = sorted({m for m in methods if str(m).lower() not in _METHOD_COLOURS}, key=str)
    for method in set(methods):
        if str(method).lower() in _METHOD_COLOURS:
            colours[method] = _METHOD_COLOURS[str(method).lower()]
    for i, method in enumerate(unknown):
        colours[method] = _SPARE_COLOURS[i % len(_SPARE_COLOURS)]
    return colours


def new_figure(width: float, height: float) -> Figure:
    """A Figure on its own Agg canvas: no pyplot, so no backend switch and nothing to close."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` at 150 dpi (PNG unless the suffix names another format)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


# --- accuracy against latent size -------------------------------------------------------------


def accuracy_figure(
    rows: list[dict],
    *,
    x: str = "latent",
    y: str = "accuracy",
    err: str | None = "std",
    line: str = "method",
    panel: str | None = "kind",
    title: str = "",
    published: list[dict] | None = None,
) -> Figure:
    """The figure that :func:`accuracy_vs_latent` saves; rows without a ``panel`` value go in all.

    Raises ValueError when two rows would give one line two points at the same ``x`` (e.g. rows
    of several probes or seeds): filter the rows first, so that no line silently zigzags.
    """
    if not rows:
        raise ValueError("accuracy_figure: no rows to plot")
    published = published or []
    panels = sorted({r.get(panel) for r in rows if panel and r.get(panel) is not None}, key=str)
    panels = panels or [None]
    sizes = sorted({r[x] for r in [*rows, *published]})
    if sizes[0] <= 0:
        raise ValueError(f"accuracy_figure: {x!r} must be positive for a log2 axis, got {sizes[0]}")
    colours = method_colours([r[line] for r in [*rows, *published]])

    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.8 * len(panels) + 2.2, 3.6)
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        for ax, key in zip(axes, panels, strict=True):
            for source, is_published in ((rows, False), (published, True)):
                mine = [r for r in source if key is None or r.get(panel) in (key, None)]
                for method in sorted({r[line] for r in mine}):
                    label = f"{method} (published)" if is_published else str(method)
                    _draw_line(
                        ax,
                        [r for r in mine if r[line] == method],
                        x,
                        y,
                        err,
                        colour=colours[method],
                        label=label,
                        published=is_published,
                    )
            ax.set_xscale("log", base=2)
            ax.set_xticks(sizes, labels=[f"{s:g}" for s in sizes])
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xlabel(_AXIS_LABELS.get(x, x))
            ax.grid(True, alpha=0.3, linewidth=0.6)
            if key is not None:
                ax.set_title(_PANEL_TITLES.get(str(key), str(key)))
        axes[0].set_ylabel(_AXIS_LABELS.get(y, f"{y} (%)"))
        handles = {h.get_label(): h for ax in axes for h in ax.get_legend_handles_labels()[0]}
        fig.legend(
            [handles[k] for k in sorted(handles)], sorted(handles), loc="outside right center"
        )
        if title:
            fig.suptitle(title)
    return fig


def _draw_line(
    ax: Any,
    rows: list[dict],
    x: str,
    y: str,
    err: str | None,
    *,
    colour: str,
    label: str,
    published: bool,
) -> None:
    """One method's points in one panel, sorted by x, with error bars where ``err`` is given."""
    rows = sorted(rows, key=lambda r: r[x])
    xs = [r[x] for r in rows]
    if len(set(xs)) < len(xs):
        raise ValueError(
            f"accuracy_figure: several rows for one line at the same {x} ({rows[0]}...); "
            "filter the rows to one probe, protocol and seed first"
        )
    ys = [100 * r[y] for r in rows]
    yerr = [100 * (r.get(err) or 0.0) for r in rows] if err else []
    ax.errorbar(
        xs,
        ys,
        yerr=yerr if any(yerr) else None,
        label=label,
        color=colour,
        marker="o",
        markersize=5,
        linestyle="--" if published else "-",
        markerfacecolor="none" if published else colour,
        capsize=3,
        linewidth=1.5,
    )


def accuracy_vs_latent(
    rows: list[dict],
    path: str | Path,
    *,
    x: str = "latent",
    y: str = "accuracy",
    err: str | None = "std",
    line: str = "method",
    panel: str | None = "kind",
    title: str = "",
    published: list[dict] | None = None,
) -> Path:
    """Probe accuracy (%) against latent size, one line per method and one panel per kind."""
    fig = accuracy_figure(
        rows, x=x, y=y, err=err, line=line, panel=panel, title=title, published=published
    )
    return save_figure(fig, path)


# --- 2-D views of representations -------------------------------------------------------------


@dataclass(frozen=True)
class Projection:
    """Points of a 2-D view, the labels in the same (shuffled) order, and how to label the axes."""

    xy: np.ndarray  # [n, 2]
    labels: np.ndarray  # [n]
    xlabel: str
    ylabel: str
    ticks: bool  # False where the coordinates have no meaning of their own (t-SNE, UMAP)


def project_2d(
    codes: np.ndarray,
    labels: np.ndarray,
    *,
    method: str = "auto",
    max_points: int = 5000,
    seed: int = 0,
) -> Projection:
    """Subsample to ``max_points`` (seeded) and map the codes to 2-D.

    The points come back in a seeded random order even when none are dropped, so that no class
    is always drawn on top of the others. Subsampling comes first, as t-SNE and UMAP are slow.
    """
    if method not in SCATTER_METHODS:
        raise ValueError(f"unknown projection {method!r}; choose from {SCATTER_METHODS}")
    codes = np.asarray(codes, dtype=np.float64)
    labels = np.asarray(labels)
    if codes.ndim != 2 or codes.shape[1] < 2 or len(labels) != len(codes):
        raise ValueError(
            f"need codes [N, D>=2] and labels [N]; got {codes.shape} and {labels.shape}"
        )
    keep = np.random.default_rng(seed).permutation(len(codes))[:max_points]
    codes, labels = codes[keep], labels[keep]
    if method == "auto":
        method = "direct" if codes.shape[1] == 2 else "pca"

    if method == "direct":
        if codes.shape[1] != 2:
            raise ValueError(f"method='direct' needs 2-D codes, got {codes.shape[1]} columns")
        return Projection(codes, labels, "$z_1$", "$z_2$", ticks=True)
    if method == "pca":
        pca = PCA(n_components=2, random_state=seed)
        xy = pca.fit_transform(codes)
        var = 100 * pca.explained_variance_ratio_
        return Projection(xy, labels, f"PC1 ({var[0]:.1f}% var)", f"PC2 ({var[1]:.1f}% var)", True)
    if method == "tsne":
        # Perplexity must stay below the number of points; 30 is the usual default.
        tsne = TSNE(2, init="pca", perplexity=min(30.0, (len(codes) - 1) / 3), random_state=seed)
        return Projection(tsne.fit_transform(codes), labels, "t-SNE 1", "t-SNE 2", ticks=False)
    try:
        import umap
    except ImportError as exc:
        raise ValueError(
            "method='umap' needs the optional umap-learn package: pip install umap-learn"
        ) from exc
    xy = umap.UMAP(n_components=2, random_state=seed).fit_transform(codes)
    return Projection(np.asarray(xy), labels, "UMAP 1", "UMAP 2", ticks=False)


def _class_colours(n: int) -> np.ndarray:
    """RGBA per class: tab10/tab20 while distinguishable, an even sweep of turbo beyond."""
    if n <= 10:
        return matplotlib.colormaps["tab10"](np.arange(n))
    if n <= 20:
        return matplotlib.colormaps["tab20"](np.arange(n))
    return matplotlib.colormaps["turbo"](np.linspace(0, 1, n))


def scatter_figure(
    panels: list[tuple[str, np.ndarray, np.ndarray]],
    *,
    method: str = "auto",
    class_names: Sequence[str] | None = None,
    max_points: int = 3000,
    seed: int = 0,
    title: str = "",
) -> Figure:
    """Latent scatters on a grid of up to 4 columns with one legend, classes coloured alike.

    Class colours come from the labels of all panels together, so that a class has the same
    colour in every panel. ``class_names[label]`` names a class (labels are indices).
    """
    if not panels:
        raise ValueError("scatter_figure: no panels to plot")
    classes = np.unique(np.concatenate([np.asarray(labels).ravel() for _, _, labels in panels]))
    colours = _class_colours(len(classes))
    names = [str(c) if class_names is None else str(class_names[int(c)]) for c in classes]
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)

    with matplotlib.rc_context(STYLE):
        fig = new_figure(3.2 * ncols + 1.4, 3.0 * nrows + (0.3 if title else 0.0))
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, (name, codes, labels) in zip(axes, panels, strict=False):
            view = project_2d(codes, labels, method=method, max_points=max_points, seed=seed)
            colour = colours[np.searchsorted(classes, view.labels)]
            ax.scatter(view.xy[:, 0], view.xy[:, 1], c=colour, s=4, alpha=0.6, linewidths=0)
            ax.set_xlabel(view.xlabel)
            ax.set_ylabel(view.ylabel)
            ax.set_title(name)
            if not view.ticks:
                ax.set_xticks([])
                ax.set_yticks([])
        for ax in axes[len(panels) :]:
            ax.set_axis_off()
        handles = [
            Line2D([], [], marker="o", linestyle="", color=c, markersize=6, label=n)
            for c, n in zip(colours, names, strict=True)
        ]
        fig.legend(
            handles=handles,
            loc="outside right upper",
            title="class",
            ncols=math.ceil(len(handles) / 25),
            handletextpad=0.3,
        )
        if title:
            fig.suptitle(title)
    return fig


def latent_scatter(
    codes: np.ndarray,
    labels: np.ndarray,
    path: str | Path,
    *,
    method: str = "auto",
    class_names: Sequence[str] | None = None,
    title: str = "",
    max_points: int = 5000,
    seed: int = 0,
) -> Path:
    """One 2-D view of a representation, coloured by class: does it separate the classes?"""
    fig = scatter_figure(
        [(title, codes, labels)],
        method=method,
        class_names=class_names,
        max_points=max_points,
        seed=seed,
    )
    return save_figure(fig, path)


def scatter_grid(
    panels: list[tuple[str, np.ndarray, np.ndarray]],
    path: str | Path,
    *,
    method: str = "auto",
    class_names: Sequence[str] | None = None,
    max_points: int = 3000,
    seed: int = 0,
) -> Path:
    """Several latent scatters side by side (e.g. VAE vs InfoVAE per latent size), one legend."""
    fig = scatter_figure(
        panels, method=method, class_names=class_names, max_points=max_points, seed=seed
    )
    return save_figure(fig, path)


# --- PCA eigenvalue spectrum (intrinsic dimension) --------------------------------------------


def eigenvalue_spectrum(
    spectra: dict[str, np.ndarray],
    path: str | Path,
    *,
    threshold: float | None = None,
    title: str = "",
) -> Path:
    """Sorted PCA eigenvalues of the MAP representations, one line per model, on a log axis
    (Zhang et al.'s Figure 5); ``threshold`` (relative to each model's largest eigenvalue) is
    drawn so the intrinsic-dimension count can be read off the plot."""
    fig = new_figure(6.0, 3.8)
    ax = fig.add_subplot()
    colours = method_colours(sorted(spectra))
    for name, values in spectra.items():
        values = np.sort(np.asarray(values, dtype=float))[::-1]
        ranks = np.arange(1, len(values) + 1)
        ax.plot(
            ranks,
            np.maximum(values / values[0], 1e-12),
            marker="o",
            ms=3,
            label=name,
            color=colours[name],
        )
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls="--", lw=1, label=f"threshold {threshold:g}")
    ax.set_yscale("log")
    ax.set_xlabel("component (sorted by eigenvalue)")
    ax.set_ylabel("eigenvalue / largest")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
