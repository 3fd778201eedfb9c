"""The ``pictures`` and ``latent_space`` metrics: what people look at (reconstructions, samples,
traversals, interpolations or class analogies, loss curves; 2-D views of the MAP codes)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from repvae.evaluate.metric import Context, Metric, Result
from repvae.plots.figures import scatter_grid
from repvae.plots.pictures import save_pictures


def _pictures(ctx: Context) -> Result:
    paths = save_pictures(ctx.run, ctx.out, split=ctx.split, seed=ctx.settings.seed, data=ctx.data)
    return {"figures": {name: p.name for name, p in paths.items()}}


def _latent_space(ctx: Context) -> Result:
    mean = ctx.posterior().mean
    labels = getattr(ctx.data, ctx.split).labels.numpy()
    methods = ["direct"] if mean.shape[1] == 2 else list(ctx.settings.scatter_methods)
    skipped = []
    if "umap" in methods and importlib.util.find_spec("umap") is None:
        methods.remove("umap")
        skipped.append("umap: install the optional umap-learn package")
    written = {}
    for method in methods:
        path = ctx.out / f"latent_{method}.png"
        scatter_grid(
            [(f"MAP codes, {method}", mean.numpy(), labels)],
            path,
            method=method,
            class_names=ctx.data.class_names,
            seed=ctx.settings.seed,
        )
        written[method] = path.name
    return {"split": ctx.split, "figures": written, "skipped": skipped}


def _figures_line(name: str) -> Callable[[Result], list[str]]:
    return lambda result: [f"  {name}: {', '.join(result['figures'].values())}"]


PICTURES = Metric("pictures", _pictures, summary=_figures_line("pictures"))
LATENT_SPACE = Metric("latent_space", _latent_space, summary=_figures_line("latent_space"))
