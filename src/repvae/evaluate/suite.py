"""``repvae evaluate RUN``: every measurement of a trained run, written into ``RUN/evaluation/``.

Each metric writes ``evaluation/<metric>.json`` (with its protocol and wall time) beside its
figures, so that reports read files instead of recomputing. The test split's posterior is
computed once and shared by all metrics that need it. A metric a model's family cannot support
writes ``{"skipped": reason}``.

    probes            linear SVM, logistic regression, MLP, weighted cosine kNN per representation
    classifier        a semi-supervised model's own q(y|x): accuracy and error on the split
    coherence         multimodal models: cross-modal and joint coherence of generated digits
    label_efficiency  accuracy with 10 / 100 / 1,000 / 10,000 / all labels, Locatello's ratio
    information       active units, E_x KL(q(z|x)||p(z)), E_x H(q(z|x)), intrinsic dimension
    likelihood        negative ELBO and IWAE bound in nats and bits/dim
    disentanglement   BetaVAE, FactorVAE, MIG, DCI, SAP, modularity (data with known factors)
    fid               domain FID (always) and Inception FID (when its weights are present)
    pictures          reconstructions, samples, traversals, interpolations, loss curves
    latent_space      2-D views of the MAP codes coloured by class (PCA, t-SNE, UMAP)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from repvae.data import ImageData
from repvae.evaluate import (
    classifier,
    coherence,
    disentanglement,
    fid,
    information,
    label_efficiency,
    likelihood,
    probing,
    views,
)
from repvae.evaluate.metric import Context, Metric, Result, Settings
from repvae.files import write_text
from repvae.run import Run

# In the order they run and print.
REGISTRY: dict[str, Metric] = {
    m.name: m
    for m in (
        probing.METRIC,
        classifier.METRIC,
        coherence.METRIC,
        label_efficiency.METRIC,
        information.METRIC,
        likelihood.METRIC,
        disentanglement.METRIC,
        fid.METRIC,
        views.PICTURES,
        views.LATENT_SPACE,
    )
}
METRICS = tuple(REGISTRY)


def metric_values(metric: str, result: Result) -> dict[str, float]:
    """The headline numbers of one ``evaluation/<metric>.json``."""
    return REGISTRY[metric].headline(result)


def summary_lines(results: dict[str, Result]) -> list[str]:
    """One screen of the headline numbers of ``evaluate``'s results."""
    lines: list[str] = []
    for name, metric in REGISTRY.items():
        if name in results:
            lines += metric.summary(results[name])
    return lines


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
    unknown = [m for m in only if m not in REGISTRY]
    if unknown:
        raise ValueError(f"--only: unknown metrics {unknown}; choose from {METRICS}")
    out = run.dir / "evaluation"
    out.mkdir(exist_ok=True)
    ctx = Context(run, data or run.config.data.load(), split, out, settings or Settings())
    run.model.eval()
    results: dict[str, Any] = {}
    for name, metric in REGISTRY.items():
        if name not in only:
            continue
        if log:
            log(f"evaluating {name} ...")
        started = time.perf_counter()
        result = metric.compute(ctx)
        result["seconds"] = round(time.perf_counter() - started, 3)
        write_text(out / f"{name}.json", json.dumps(result, indent=2))
        results[name] = result
    return results
