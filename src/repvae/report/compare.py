"""``repvae compare RUN...``: the evaluation results of several runs side by side (Markdown).

Reads what ``repvae evaluate`` wrote (``RUN/evaluation/*.json``), so nothing is recomputed; a
metric a run has not been evaluated on is left blank.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from repvae.evaluate.suite import REGISTRY
from repvae.files import write_text
from repvae.report.tables import markdown_table

_FIGURES = (
    "latent_pca",
    "latent_tsne",
    "reconstructions",
    "samples",
    "samples_shared_z",
    "traversals",
)


def headline_values(evaluation: Path) -> dict[str, float]:
    """Quantity -> value for one run's evaluation folder (probe accuracies in %), each metric's
    headline numbers as the metric itself declares them."""
    values: dict[str, float] = {}
    for name, metric in REGISTRY.items():
        path = evaluation / f"{name}.json"
        if path.exists():
            values.update(metric.headline(json.loads(path.read_text())))
    return values


def compare_runs(runs: dict[str, Path], out: Path) -> Path:
    """Write ``out/comparison.md``: one line per quantity, one column per run (named by the
    keys of ``runs``), and each run's figures copied beside it."""
    out.mkdir(parents=True, exist_ok=True)
    per_run = {name: headline_values(path / "evaluation") for name, path in runs.items()}
    quantities = list(dict.fromkeys(q for values in per_run.values() for q in values))
    rows = [
        {
            "quantity": q,
            **{
                name: "" if q not in values else f"{values[q]:.4g}"
                for name, values in per_run.items()
            },
        }
        for q in quantities
    ]
    figures = []
    for name, path in runs.items():
        for figure in _FIGURES:
            source = path / "evaluation" / f"{figure}.png"
            if source.exists():
                target = out / f"{name}_{figure}.png"
                shutil.copyfile(source, target)
                figures.append(f"![{name} {figure}]({target.name})")
    sources = "\n".join(f"- {name}: `{path}`" for name, path in runs.items())
    text = (
        "# Evaluation side by side\n\n"
        f"Runs:\n{sources}\n\nEach number comes from `repvae evaluate RUN` (protocols in "
        "`RUN/evaluation/*.json`). `domain_fid` uses the features of a classifier trained on "
        "the dataset itself: it is not comparable with Inception FID; `domain_fid_reference` "
        "is its floor (training vs test images).\n\n"
        + markdown_table(rows, ["quantity", *runs])
        + "\n\n## Figures\n\n"
        + "\n\n".join(figures)
        + "\n"
    )
    path = out / "comparison.md"
    write_text(path, text)
    return path
