"""``repvae evaluate RUN``: every measurement of a trained run, written into ``RUN/evaluation/``.

Each metric writes ``evaluation/<metric>.json`` (with its protocol and wall time) beside its
figures, so that reports read files instead of recomputing. The test split's posterior parameters
are computed once and shared by all metrics that need them.

    probes            linear SVM, logistic regression, MLP, weighted cosine kNN per representation
    classifier        a semi-supervised model's own q(y|x): accuracy and error on the split
    label_efficiency  accuracy with 10 / 100 / 1,000 / 10,000 / all labels, Locatello's ratio
    information       active units, E_x KL(q(z|x)||p(z)), E_x H(q(z|x)), intrinsic dimension
    likelihood        negative ELBO and IWAE bound in nats and bits/dim
    disentanglement   BetaVAE, FactorVAE, MIG, DCI, SAP, modularity (data with known factors)
    fid               domain FID (always) and Inception FID (when its weights are present)
    pictures          reconstructions, samples, traversals, interpolations, loss curves
    latent_space      2-D views of the MAP codes coloured by class (PCA, t-SNE, UMAP)
"""

from __future__ import annotations

import importlib.util
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI imports this module for its choices; keep that import light
    import torch

    from repvae.data import ImageData
    from repvae.run import Run

METRICS = (
    "probes",
    "classifier",
    "label_efficiency",
    "information",
    "likelihood",
    "disentanglement",
    "fid",
    "pictures",
    "latent_space",
)


@dataclass
class Settings:
    """What each metric computes; the defaults are the documented protocols."""

    kinds: list[str] = field(default_factory=lambda: ["map", "sample"])
    probes: list[str] = field(default_factory=lambda: ["linear", "logistic", "mlp", "knn"])
    protocol: str = "split"
    folds: int = 5
    probe_subset: int | None = None  # training images for probes (None: all)
    label_sizes: list[int | None] = field(default_factory=lambda: [10, 100, 1000, 10000, None])
    label_draws: int = 5
    label_probe: str = "logistic"
    iw_samples: int = 1000
    # test images for the bounds (None: all); 500 x K=1000 decodes keep it to minutes on a CPU
    likelihood_images: int | None = 500
    fid_samples: int = 10_000
    disentanglement_fast: bool = False
    scatter_methods: list[str] = field(default_factory=lambda: ["pca", "tsne", "umap"])
    seed: int = 0


@dataclass
class Context:
    """What several metrics share: the run, its data, and the posterior of the chosen split."""

    run: Run
    data: ImageData
    split: str
    out: Path
    settings: Settings
    _posteriors: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def posterior(self, split: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        from repvae.represent import encode

        split = split or self.split
        if split not in self._posteriors:
            self._posteriors[split] = encode(self.run.model, getattr(self.data, split).images)
        return self._posteriors[split]


def _probes(ctx: Context) -> dict[str, Any]:
    from repvae.api import probe_embeddings
    from repvae.represent import embed

    s = ctx.settings
    embeddings = embed(
        ctx.run, s.kinds, splits=("train", ctx.split), data=ctx.data, seed=s.seed, save=False
    )
    records = []
    for full in embeddings.values():
        emb = full.for_probing(ctx.split, s.probe_subset, s.seed)
        protocol = "split" if emb.kind.startswith("samples") else s.protocol
        records += probe_embeddings(
            emb, probes=s.probes, protocol=protocol, folds=s.folds, seed=s.seed
        )
    return {"split": ctx.split, "results": records}


def _classifier(ctx: Context) -> dict[str, Any]:
    import torch

    from repvae.models import M2

    model = ctx.run.model
    if not isinstance(model, M2):
        return {"skipped": "only semi-supervised models (m2) have a classifier q(y|x)"}
    split = getattr(ctx.data, ctx.split)
    device = next(model.parameters()).device
    with torch.no_grad():
        predicted = torch.cat(
            [model.classify(x.to(device)).argmax(1).cpu() for x in split.images.split(1024)]
        )
    accuracy = (predicted == split.labels).float().mean().item()
    return {
        "split": ctx.split,
        "n": len(split.labels),
        "labelled_images": ctx.run.summary.get("labelled_images"),
        "accuracy": accuracy,
        "error_percent": 100.0 * (1.0 - accuracy),
    }


def _label_efficiency(ctx: Context) -> dict[str, Any]:
    from repvae.evaluate.label_efficiency import label_efficiency

    s = ctx.settings
    train_mean, _ = ctx.posterior("train")
    test_mean, _ = ctx.posterior()
    report = label_efficiency(
        train_mean.numpy(),
        ctx.data.train.labels.numpy(),
        test_mean.numpy(),
        getattr(ctx.data, ctx.split).labels.numpy(),
        sizes=tuple(s.label_sizes),
        draws=s.label_draws,
        probe=s.label_probe,
        seed=s.seed,
    )
    return {"representation": "map", "split": ctx.split, **report}


def _information(ctx: Context) -> dict[str, Any]:
    from repvae.evaluate.information import information_report
    from repvae.report.figures import eigenvalue_spectrum

    info = information_report(*ctx.posterior())
    eigenvalue_spectrum(
        {ctx.run.dir.name: info["eigenvalues"]},
        ctx.out / "eigenvalue_spectrum.png",
        threshold=info["intrinsic_dimension_threshold"],
        title=f"PCA spectrum of MAP codes ({ctx.split} split)",
    )
    return {"split": ctx.split, **info}


def _likelihood(ctx: Context) -> dict[str, Any]:
    import torch

    from repvae.evaluate.likelihood import likelihood_report
    from repvae.models import VAE

    model = ctx.run.model
    if not isinstance(model, VAE):
        # The bounds would need the class marginalised as a second latent; not implemented.
        return {"skipped": "likelihood bounds are implemented for the VAE family, not m2"}
    s = ctx.settings
    images = getattr(ctx.data, ctx.split).images
    if s.likelihood_images is not None and s.likelihood_images < len(images):
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(s.seed))
        images = images[keep[: s.likelihood_images].sort().values]
    report = likelihood_report(model, images, samples=s.iw_samples, seed=s.seed)
    return {"split": ctx.split, **report}


def _disentanglement(ctx: Context) -> dict[str, Any]:
    from repvae.evaluate.disentanglement import disentanglement_report
    from repvae.represent import derive

    split = ctx.data.train
    if split.factors is None:
        return {"skipped": f"{ctx.data.name} has no ground-truth factors (try shapes, dsprites)"}
    s = ctx.settings
    mean, std = ctx.posterior("train")
    factors = split.factors.numpy()
    report: dict[str, Any] = {"split": "train", "factor_names": list(ctx.data.factor_names)}
    for kind in ("map", "sample"):
        codes = derive(mean, std, kind, None, draws=1, seed=s.seed)
        report[kind] = disentanglement_report(
            codes, factors, seed=s.seed, fast=s.disentanglement_fast
        )
    return report


def _fid(ctx: Context) -> dict[str, Any]:
    from repvae.data.paths import data_root
    from repvae.evaluate.fid import fid_report

    cache = data_root(ctx.run.config.data.root) / "fid-classifiers"
    return fid_report(
        ctx.run.model, ctx.data, n=ctx.settings.fid_samples, seed=ctx.settings.seed, cache_dir=cache
    )


def _pictures(ctx: Context) -> dict[str, Any]:
    from repvae.report.pictures import save_pictures

    paths = save_pictures(ctx.run, ctx.out, split=ctx.split, seed=ctx.settings.seed)
    return {"figures": {name: p.name for name, p in paths.items()}}


def _latent_space(ctx: Context) -> dict[str, Any]:
    from repvae.report.figures import scatter_grid

    mean, _ = ctx.posterior()
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


_COMPUTE: dict[str, Callable[[Context], dict[str, Any]]] = {
    "probes": _probes,
    "classifier": _classifier,
    "label_efficiency": _label_efficiency,
    "information": _information,
    "likelihood": _likelihood,
    "disentanglement": _disentanglement,
    "fid": _fid,
    "pictures": _pictures,
    "latent_space": _latent_space,
}


def evaluate(
    run: Run,
    *,
    only: tuple[str, ...] | list[str] = METRICS,
    split: str = "test",
    settings: Settings | None = None,
    data: ImageData | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Compute the chosen metrics on ``split``; returns what was written to evaluation/*.json.

    Each metric's JSON records its wall time in ``seconds``, so ``benchmarks/evaluate_time.py``
    and reports read the cost from the same files.
    """
    unknown = [m for m in only if m not in METRICS]
    if unknown:
        raise ValueError(f"--only: unknown metrics {unknown}; choose from {METRICS}")
    out = run.dir / "evaluation"
    out.mkdir(exist_ok=True)
    ctx = Context(run, data or run.config.data.load(), split, out, settings or Settings())
    run.model.eval()
    results: dict[str, Any] = {}
    for metric in METRICS:
        if metric not in only:
            continue
        if log:
            log(f"evaluating {metric} ...")
        started = time.perf_counter()
        result = _COMPUTE[metric](ctx)
        result["seconds"] = round(time.perf_counter() - started, 3)
        (out / f"{metric}.json").write_text(json.dumps(result, indent=2))
        results[metric] = result
    return results
