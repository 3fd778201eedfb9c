"""A study's Markdown report: our numbers beside the published ones, costs, and figures."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from repvae.config import apply_overrides, from_dict
from repvae.data.splits import seeded_subset
from repvae.files import write_text
from repvae.plots.figures import accuracy_vs_latent, eigenvalue_spectrum, scatter_grid
from repvae.report.html import markdown_to_html
from repvae.report.tables import markdown_table
from repvae.represent import encode
from repvae.run import load
from repvae.studies.results import IMPORTED, collect, import_results, run_finished
from repvae.studies.spec import RunSpec, Study, load_study


def read_published(path: Path) -> list[dict[str, Any]]:
    """Published values stored as data: probe accuracies (``latent``, ``kind``, ``probe``,
    ``accuracy`` columns) or any quantity of the summary table (``quantity``, ``value``)."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        for key, kind in (("latent", int), ("accuracy", float), ("value", float)):
            if r.get(key) not in (None, ""):
                r[key] = kind(r[key])
    return rows


def _file_name(label: str) -> str:
    """A label as a file-name part that Markdown links and shells take as it is."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")


def quantity(row: dict[str, Any]) -> str:
    """The name of what a results row measures, as the summary table and published data call it."""
    if row["metric"] == "accuracy":
        return f"{row['probe']} probe, {row['kind']} ({row['protocol']})"
    return row["metric"]


def _fmt(name: str, value: float, averaged: bool = False) -> str:
    if name.endswith(")"):  # a probe accuracy: percent
        return f"{100 * value:.2f}"
    if name in ("intrinsic_dimension", "active_units"):
        # a count, but its mean and std over seeds are not: 10, 11, 11 is 10.7 ± 0.5, not 11 ± 0
        return f"{value:.1f}" if averaged else f"{value:.0f}"
    return f"{value:.2f}" if "percent" in name else f"{value:.3f}"


def pivot_table(
    summary: list[dict[str, Any]], order: list[str] | tuple[str, ...] = ()
) -> tuple[list[dict[str, Any]], list[str]]:
    """``summary_table`` with one line per dataset x quantity and one column per method (in
    ``order``, then the rest sorted): ours (mean ± std over seeds), then the published value in
    brackets where there is one. The first line counts the seeds behind each column."""
    present = {r["method"] for r in summary}
    methods = [m for m in order if m in present] + sorted(present.difference(order))
    lines: dict[tuple[str, str], dict[str, Any]] = {}
    for r in summary:
        seeds = lines.setdefault(
            (r["dataset"], ""), {"dataset": r["dataset"], "quantity": "seeds (runs averaged)"}
        )
        seeds[r["method"]] = max(seeds.get(r["method"], 0), r["seeds"])
        line = lines.setdefault(
            (r["dataset"], r["quantity"]), {"dataset": r["dataset"], "quantity": r["quantity"]}
        )
        cell = r["ours (mean ± std)"]
        line[r["method"]] = f"{cell} [{r['published']}]" if r["published"] else cell
    columns = ["dataset", "quantity", *methods]
    return [{c: line.get(c, "") for c in columns} for line in lines.values()], columns


def summary_table(
    rows: list[dict[str, Any]], published: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One line per dataset x method x quantity: mean ± std over seeds beside the published
    value (accuracies in %)."""
    ref = {
        (p["dataset"], p["method"], p["quantity"]): p["value"] for p in published if "quantity" in p
    }
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        groups[(r["dataset"], r["method"], int(r["latent"]), quantity(r))].append(float(r["value"]))
    table = []
    for (dataset, method, latent, name), values in sorted(groups.items(), key=_natural):
        mean, std = float(np.mean(values)), float(np.std(values))
        averaged = len(values) > 1
        paper = ref.get((dataset, method, name))
        table.append(
            {
                "dataset": dataset,
                "method": method,
                "latent": latent,
                "quantity": name,
                "ours (mean ± std)": f"{_fmt(name, mean, True)} ± {_fmt(name, std, True)}"
                if averaged
                else _fmt(name, mean),
                "seeds": len(values),
                "published": "" if paper is None else _fmt(name, paper),
                "difference": "" if paper is None else _fmt(name, mean - paper, averaged),
            }
        )
    return table


def _natural(item: tuple) -> tuple:
    """Sort key that puts "error_percent_600_labels" before "error_percent_1000_labels"."""
    (dataset, method, latent, name), _ = item
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name))
    return dataset, method, latent, parts


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.2f}"


def accuracy_table(
    rows: list[dict[str, Any]], published: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One line per dataset x method x latent x kind x probe: ours (mean ± std), published,
    difference."""
    ref = {(p["dataset"], p["method"], p["latent"], p["kind"], p["probe"]): p for p in published}
    table = []
    order = ("dataset", "method", "kind", "probe")
    for r in sorted(rows, key=lambda r: (*(r[k] for k in order), int(r["latent"]), int(r["seed"]))):
        p = ref.get((r["dataset"], r["method"], int(r["latent"]), r["kind"], r["probe"]))
        ours = f"{_pct(r['accuracy'])} ± {_pct(r['std'])}" if r.get("std") else _pct(r["accuracy"])
        table.append(
            {
                "dataset": r["dataset"],
                "method": r["method"],
                "latent": r["latent"],
                "seed": r["seed"],
                "representation": r["kind"],
                "probe": f"{r['probe']} ({r['protocol']})",
                "ours %": ours,
                "published %": _pct(p["accuracy"]) if p else "",
                "difference": f"{100 * (r['accuracy'] - p['accuracy']):+.2f}" if p else "",
            }
        )
    return table


def cost_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Wall time of each nested model beside the separately trained models it replaces."""
    per_run = {r["run"]: r for r in rows}
    separate: dict[tuple[str, str], float] = defaultdict(float)
    nested = []
    for r in per_run.values():
        if r.get("replaces"):
            nested.append(r)
        else:
            separate[(r["dataset"], r["method"])] += float(r["train_seconds"])
    out = []
    for r in nested:
        base = r["replaces"]
        total = separate.get((r["dataset"], base))
        out.append(
            {
                "dataset": r["dataset"],
                "nested model": r["method"],
                "train s": r["train_seconds"],
                "replaces": f"separately trained {base} models",
                "their train s (sum)": round(total, 1) if total else "",
                "ratio": f"{float(r['train_seconds']) / total:.2f}" if total else "",
            }
        )
    return out


def write_markdown(path: Path, title: str, protocol: str, sections: list[tuple[str, str]]) -> Path:
    body = [f"# {title}", "", protocol, ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text, ""]
    write_text(path, "\n".join(body))
    return path


def figure_link(path: Path, base: Path) -> str:
    relative = path.relative_to(base)
    return f"![{relative.with_suffix('')}]({relative})"


def report_study(
    study_dir: str | Path, imports: list[Path] | tuple[Path, ...] = ()
) -> tuple[Path, Path]:
    """Rebuild ``results.md`` and the self-contained ``results.html`` of a study folder from its
    ``study.yaml`` and run folders (works on a partly finished study too).

    ``imports`` are other folders' ``results.csv`` files: the runs this folder lacks are taken
    from them (kept in ``imported.csv``, so later reports keep them too)."""
    study_dir = Path(study_dir)
    meta_path = study_dir / "study.yaml"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path}: missing; is {study_dir} a study folder?")
    meta = yaml.safe_load(meta_path.read_text())
    if not meta.get("file") or not Path(meta["file"]).exists():
        raise FileNotFoundError(
            f"{meta_path}: the study file it names ({meta.get('file')}) is missing"
        )
    # the seeds the study ran with (--seeds), not only the budget's
    study = load_study(meta["file"]).with_budget(meta.get("budget"), meta.get("seeds"))
    specs = study.runs(meta.get("overrides") or {})
    import_results(study_dir, specs, list(imports))
    rows = collect(study, specs, study_dir)
    published = Path(meta["file"]).with_name(f"{Path(meta['file']).stem}_published.csv")
    provenance = provenance_table(study_dir, specs, meta, rows)
    markdown_path = study_report(
        study,
        rows,
        study_dir,
        budget=meta.get("budget"),
        published_csv=published,
        provenance=provenance,
        overrides=meta.get("overrides") or {},
    )
    return markdown_path, markdown_to_html(markdown_path)


def provenance_table(
    study_dir: Path, specs: list[RunSpec], meta: dict[str, Any], rows: list[dict[str, Any]]
) -> str:
    """What produced the numbers: command, budget, progress, versions and hardware. ``rows``
    are the collected results: the runs among them without a folder here were imported."""
    done = [s for s in specs if run_finished(study_dir, s.id)]
    imported = {r["run"] for r in rows}.difference(s.id for s in done)
    env: dict[str, Any] = {}
    if done:
        config = yaml.safe_load((study_dir / "runs" / done[0].id / "config.yaml").read_text())
        env = config.get("repvae", {})
    finished = f"{len(done) + len(imported)} of {len(specs)}"
    if imported:
        finished += (
            f" ({len(imported)} trained in another study folder: their rows are in {IMPORTED}, "
            "their run folders and figures are not here)"
        )
    rows = [
        {
            "item": "command",
            "value": f"`{meta.get('command') or 'repvae run-experiment ' + str(meta.get('file'))}`",
        },
        {"item": "budget", "value": meta.get("budget") or "default"},
        {"item": "runs finished", "value": finished},
    ]
    if meta.get("executor"):  # where the last invocation ran what it lacked
        rows.append({"item": "executor", "value": meta["executor"]})
    rows += [{"item": key, "value": value} for key, value in env.items()]
    return markdown_table(rows, ["item", "value"])


def study_report(
    study: Study,
    rows: list[dict[str, Any]],
    study_dir: Path,
    *,
    budget: str | None,
    published_csv: Path | None,
    provenance: str = "",
    overrides: dict[str, Any] | None = None,
) -> Path:
    """results.md + figures for a finished (or partly finished) study. ``overrides`` are the
    study's ``--set`` values: the protocol line states the training the runs actually had."""
    published = read_published(published_csv) if published_csv else []
    probe_rows = [r for r in rows if r["metric"] == "accuracy"]
    ev = study.evaluate
    probes = (
        f"Protocol: probes {', '.join(ev.probes)} under {ev.protocol}"
        + (
            f" ({ev.folds}-fold stratified CV over train+test pooled, seed 0)"
            if ev.protocol == "cv"
            else " (train split → test split)"
        )
        + (
            f", on a seeded subset of {ev.subset} training / {ev.subset // 6} test images"
            if ev.subset
            else ", on all images"
        )
        + ". "
        if ev.probes
        else ""
    )
    metrics = f"Metrics: {', '.join(ev.metrics)} (test split). " if ev.metrics else ""
    training = training_settings(study, overrides or {})
    protocol = (
        f"{probes}{metrics}Budget: {budget or 'default'}; training: {training}."
        + f" Source of published values: {study.source}."
    )
    sections = []
    if ev.metrics or len(study.seeds) > 1:
        # The study's method labels in their listed order, then swept variants in run order.
        order = list(dict.fromkeys([*study.labels.values(), *(r["method"] for r in rows)]))
        table, columns = pivot_table(summary_table(rows, published), order)
        seeds = sorted({int(r["seed"]) for r in rows})
        sections.append(
            (
                f"Summary (mean ± std over seeds {seeds}; published values in brackets; "
                "accuracies in %)",
                markdown_table(table, columns),
            )
        )
    if probe_rows:
        sections.append(
            (
                "Probe accuracy" + (" per run" if len(study.seeds) > 1 else ""),
                markdown_table(
                    accuracy_table(probe_rows, [p for p in published if "accuracy" in p]),
                    [
                        "dataset",
                        "method",
                        "latent",
                        *(["seed"] if len(study.seeds) > 1 else []),
                        "representation",
                        "probe",
                        "ours %",
                        "published %",
                        "difference",
                    ],
                ),
            )
        )
    costs = cost_table(probe_rows)
    if costs:
        sections.append(
            (
                "Training cost: one nested model vs the separate models it replaces",
                markdown_table(costs, list(costs[0])),
            )
        )
    figures = []
    latents = {int(r["latent"]) for r in probe_rows}
    for dataset in sorted({r["dataset"] for r in probe_rows}) if len(latents) > 1 else []:
        for probe in sorted({r["probe"] for r in probe_rows}):
            subset = mean_over_seeds(
                [r for r in probe_rows if r["dataset"] == dataset and r["probe"] == probe]
            )
            refs = [
                p
                for p in published
                if p["dataset"] == dataset and p.get("probe") == probe and "accuracy" in p
            ]
            path = study_dir / f"accuracy_vs_latent_{dataset}_{probe}.png"
            accuracy_vs_latent(
                subset, path, title=f"{dataset}: {probe} probe accuracy", published=refs
            )
            figures.append(path)
    # figures that read run folders: imported runs (trained elsewhere) have none here
    local = [r for r in rows if run_finished(study_dir, r["run"])]
    figures += latent_scatters([r for r in local if r["metric"] == "accuracy"], study_dir)
    if "information" in ev.metrics:
        figures += spectra_figure(local, study_dir)
    if "pictures" in ev.metrics:  # each method's traversals (first seed)
        for r in first_runs(local).values():
            path = study_dir / "runs" / r["run"] / "evaluation" / "traversals.png"
            if path.exists():
                figures.append(path)
    if figures:
        sections.append(("Figures", "\n\n".join(figure_link(p, study_dir) for p in figures)))
    if provenance:
        sections.append(("Provenance", provenance))
    return write_markdown(study_dir / "results.md", study.title or study.name, protocol, sections)


def mean_over_seeds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One point per method x latent x kind: with several seeds, the mean accuracy and the std
    over seeds (with one seed, the row as it is, its std being over CV folds)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], int(r["latent"]), r["kind"])].append(r)
    out = []
    for group in groups.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        accs = np.array([float(r["accuracy"]) for r in group])
        out.append({**group[0], "accuracy": float(accs.mean()), "std": float(accs.std())})
    return out


def training_settings(study: Study, overrides: dict[str, Any]) -> str:
    """The runs' training as the study resolves it: base config, budget, then --set."""
    train = apply_overrides(from_dict(study.base), overrides).train
    keys = ("epochs", "train_subset", "batch_size", "lr", "patience")
    return ", ".join(f"{k}={getattr(train, k)}" for k in keys if getattr(train, k) is not None)


def latent_scatters(rows: list[dict[str, Any]], study_dir: Path, points: int = 2000) -> list[Path]:
    """Test-set MAP codes of the separately trained models, one panel per latent size (2-D
    directly, larger sizes projected with PCA), one figure per dataset x method.

    The points are a seeded random pick: test sets stored class by class (image folders) would
    otherwise show only their first classes."""
    paths = []
    first_seed = min((int(r["seed"]) for r in rows), default=0)
    runs = sorted(
        {
            (r["dataset"], r["method"], int(r["latent"]), r["run"])
            for r in rows
            # separately trained (not a Matryoshka prefix), one seed
            if r["dims"] in (None, "") and int(r["seed"]) == first_seed
        }
    )
    methods = sorted({m for _, m, _, _ in runs})
    data_cache: dict = {}
    for dataset in sorted({d for d, *_ in runs}):
        for method in methods:
            panels = []
            for d, m, latent, run_id in runs:
                if d != dataset or m != method:
                    continue
                run = load(study_dir / "runs" / run_id, device="cpu")
                cfg = run.config.data
                if dataset not in data_cache:
                    data = cfg.load()
                    pick = seeded_subset(len(data.test), points, np.random.default_rng(0))
                    data_cache[dataset] = (data, pick)
                data, pick = data_cache[dataset]
                mean = encode(run.model, data.test.images[pick]).mean
                panels.append((f"latent {latent}", mean.numpy(), data.test.labels[pick].numpy()))
            if panels:
                path = study_dir / f"latent_{_file_name(dataset)}_{_file_name(method)}.png"
                scatter_grid(panels, path, class_names=data_cache[dataset][0].class_names)
                paths.append(path)
    return paths


def first_runs(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """One row per dataset x method: from its lowest seed's run (for per-method figures)."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: int(r["seed"])):
        first.setdefault((r["dataset"], r["method"]), r)
    return first


def spectra_figure(rows: list[dict[str, Any]], study_dir: Path) -> list[Path]:
    """Zhang et al.'s Figure 5: the PCA eigenvalue spectra of the MAP codes, one line per method
    (its first seed's run), from each run's evaluation/information.json."""
    first = first_runs(rows)
    paths = []
    for dataset in sorted({d for d, _ in first}):
        spectra, threshold = {}, None
        for (d, method), r in sorted(first.items()):
            info_path = study_dir / "runs" / r["run"] / "evaluation" / "information.json"
            if d == dataset and info_path.exists():
                info = json.loads(info_path.read_text())
                spectra[method] = np.asarray(info["eigenvalues"])
                threshold = info["intrinsic_dimension_threshold"]
        if spectra:
            path = study_dir / f"eigenvalue_spectrum_{_file_name(dataset)}.png"
            title = f"{dataset}: PCA spectrum of the MAP codes (test split)"
            paths.append(eigenvalue_spectrum(spectra, path, threshold=threshold, title=title))
    return paths
