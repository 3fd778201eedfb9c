"""A study's report, Markdown and one self-contained HTML file: the summary tables (ours beside
the published values, ``summary``), the nested models against the separate ones, figures, every
result (folded), and provenance."""

from __future__ import annotations

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
from repvae.report.summary import (
    fmt,
    in_our_units,
    natural,
    nested_table,
    quantity,
    summary_sections,
)
from repvae.report.tables import markdown_table
from repvae.represent import encode
from repvae.run import load
from repvae.studies.published import Published, published_for
from repvae.studies.results import IMPORTED, collect, import_results, run_finished
from repvae.studies.spec import RunSpec, Study, load_study


def _file_name(label: str) -> str:
    """A label as a file-name part that Markdown links and shells take as it is."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")


def run_table(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every result as it is: one line per run x representation x prefix x probe or metric."""
    table = []
    for r in sorted(
        rows,
        key=lambda r: (
            r["dataset"],
            natural(r["method"]),
            r["kind"] or "",
            natural(quantity(r)),
            int(r["latent"]),
            int(r["seed"]),
        ),
    ):
        if r["metric"] == "accuracy":
            name, value = f"{r['probe']} ({r['protocol']})", f"{100 * r['accuracy']:.2f}"
            value += f" ± {100 * r['std']:.2f}" if r.get("std") else ""
        else:
            name, value = r["metric"], fmt(r["metric"], float(r["value"]))
        table.append({**r, "representation": r["kind"], "quantity": name, "value": value})
    columns = ["dataset", "method", "latent", "seed", "representation", "quantity", "value"]
    return table, columns


def collapsed(summary: str, text: str) -> str:
    """A block the HTML report shows folded (``<details>``), and GitHub too."""
    return f'<details markdown="1">\n<summary>{summary}</summary>\n\n{text}\n\n</details>'


def write_markdown(path: Path, title: str, protocol: str, sections: list[tuple[str, str]]) -> Path:
    body = [f"# {title}", "", protocol, ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text, ""]
    write_text(path, "\n".join(body))
    return path


def figure_link(path: Path, base: Path, caption: str = "") -> str:
    """A figure, under its caption where its picture does not say what it shows."""
    relative = path.relative_to(base)
    link = f"![{relative.with_suffix('')}]({relative})"
    return f"*{caption}*\n\n{link}" if caption else link


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
    # rows imported from a results.csv older than its replaces column: the study knows
    nested = {s.id: s.replaces for s in specs}
    rows = [{**r, "replaces": r["replaces"] or nested.get(r["run"], "")} for r in rows]
    provenance = provenance_table(study_dir, specs, meta, rows)
    markdown_path = study_report(
        study,
        rows,
        study_dir,
        budget=meta.get("budget"),
        published=published_for(study.name, meta["file"]),
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
    published: list[Published] | tuple[Published, ...] = (),
    provenance: str = "",
    overrides: dict[str, Any] | None = None,
) -> Path:
    """results.md + figures for a finished (or partly finished) study: the summary tables (ours
    beside the ``published`` values placed in this study), the nested models against the
    separate ones, figures, every result (folded in the HTML), provenance. ``overrides`` are the
    study's ``--set`` values: the protocol line states the training the runs actually had."""
    ev = study.evaluate
    probe_images = (
        f", on a seeded subset of {ev.subset} training / {ev.subset // 6} test images"
        if ev.subset
        else ", on all images"
    )
    probes = (
        f"Protocol: probes {', '.join(ev.probes)} under {ev.protocol}"
        + (
            f" ({ev.folds}-fold stratified CV over train+test pooled, seed 0)"
            if ev.protocol == "cv"
            else " (train split → test split)"
        )
        + probe_images
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
    seeds = sorted({int(r["seed"]) for r in rows})
    ours = (
        f"mean ± sample std (n − 1) over seeds {seeds}"
        if len(seeds) > 1
        else f"seed {min(seeds, default=0)}"
    )
    spent = f"Budget {budget or 'default'}: {training}{probe_images if ev.probes else ''}."
    # The study's method labels in their listed order, then swept variants in run order.
    order = list(dict.fromkeys([*study.labels.values(), *(r["method"] for r in rows)]))
    summary = summary_sections(rows, published, order, ours, spent)
    heading = "Summary: ours beside the published values" if published else "Summary"
    sections = [(heading, summary)]
    notes = probe_notes_by_method(rows)
    if notes:
        sections.append(("What the probes measure", notes))
    probe_rows = [r for r in rows if r["metric"] == "accuracy"]
    nested, columns = nested_table(probe_rows)
    if nested:
        sections.append(
            (
                "Nested models against the separately trained ones they replace",
                "*Probe accuracy of each prefix m minus that of the separately trained model of "
                "size m (points; with two or more seeds in common, the mean of the per-seed "
                "differences and its 95 % paired t interval); training seconds of the nested "
                "model against the sum of the separate models' over the sizes trained, and their "
                "ratio.*\n\n" + markdown_table(nested, columns),
            )
        )
    figures = study_figures(study, rows, published, study_dir)
    if figures:
        links = [figure_link(path, study_dir, note) for path, note in figures]
        sections.append(("Figures", "\n\n".join(links)))
    if rows:
        table, columns = run_table(rows)
        every = f"{len(rows)} results: every run, representation, prefix, probe and metric"
        sections.append(("Every run", collapsed(every, markdown_table(table, columns))))
    if provenance:
        sections.append(("Provenance", provenance))
    return write_markdown(study_dir / "results.md", study.title or study.name, protocol, sections)


def probe_notes_by_method(rows: list[dict[str, Any]]) -> str:
    """One line per method whose probes measured something other than a representation's
    quality (e.g. a style code kept apart from the class), with the family's note."""
    notes = dict.fromkeys((r["method"], r["note"]) for r in rows if r.get("note"))
    return "\n".join(f"- **{method}**: {note}." for method, note in notes)


def study_figures(
    study: Study,
    rows: list[dict[str, Any]],
    published: list[Published] | tuple[Published, ...],
    study_dir: Path,
) -> list[tuple[Path, str]]:
    """The report's figures, each with its caption where its picture does not name its method:
    accuracy against latent size, then those that read run folders (imported runs, trained
    elsewhere, have none here): latent scatters, spectra, each method's pictures."""
    probe_rows = [r for r in rows if r["metric"] == "accuracy"]
    figures = [(path, "") for path in accuracy_figures(probe_rows, published, study_dir)]
    local = [r for r in rows if run_finished(study_dir, r["run"])]
    figures += latent_scatters([r for r in local if r["metric"] == "accuracy"], study_dir)
    if "information" in study.evaluate.metrics:
        figures += [(path, "") for path in spectra_figure(local, study_dir)]
    if "pictures" in study.evaluate.metrics:  # each method's first run, the pictures listed
        for (dataset, method), r in first_runs(local).items():
            for name in study.pictures:
                path = study_dir / "runs" / r["run"] / "evaluation" / f"{name}.png"
                if path.exists():
                    figures.append((path, f"{dataset}, {method}: {name.replace('_', ' ')}"))
    return figures


def accuracy_figures(
    rows: list[dict[str, Any]], published: list[Published] | tuple[Published, ...], study_dir: Path
) -> list[Path]:
    """Probe accuracy against latent size, one figure per dataset and probe (when the study has
    several sizes), with the published accuracies at the sizes of ours they are placed at."""
    paths = []
    latents = {int(r["latent"]) for r in rows}
    for dataset in sorted({r["dataset"] for r in rows}) if len(latents) > 1 else []:
        for probe in sorted({r["probe"] for r in rows}):
            subset = mean_over_seeds(
                [r for r in rows if r["dataset"] == dataset and r["probe"] == probe]
            )
            refs = {}
            for p in published:
                if p.value is None or not p.our_method or not p.shown_with(dataset):
                    continue
                for r in subset:
                    same = (quantity(r), r["method"]) == (p.our_quantity, p.our_method)
                    if same and p.applies_to(int(r["latent"])):
                        point = {**r, "accuracy": in_our_units(p)[0], "std": None}
                        refs[(r["method"], r["kind"], int(r["latent"]))] = point
            path = study_dir / f"accuracy_vs_latent_{dataset}_{probe}.png"
            title = f"{dataset}: {probe} probe accuracy"
            accuracy_vs_latent(subset, path, title=title, published=list(refs.values()))
            paths.append(path)
    return paths


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
        out.append({**group[0], "accuracy": float(accs.mean()), "std": float(accs.std(ddof=1))})
    return out


def training_settings(study: Study, overrides: dict[str, Any]) -> str:
    """The runs' training as the study resolves it: base config, budget, then --set."""
    train = apply_overrides(from_dict(study.base), overrides).train
    keys = ("epochs", "train_subset", "batch_size", "lr", "patience")
    return ", ".join(f"{k}={getattr(train, k)}" for k in keys if getattr(train, k) is not None)


def latent_scatters(
    rows: list[dict[str, Any]], study_dir: Path, points: int = 2000
) -> list[tuple[Path, str]]:
    """Test-set MAP codes of the separately trained models, one panel per latent size (2-D
    directly, larger sizes projected with PCA), one figure per dataset x method, each returned
    with its caption.

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
                paths.append((path, f"{dataset}, {method}: test-set MAP codes in 2-D"))
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
