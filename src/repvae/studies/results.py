"""A study's results table: ``STUDY/results.csv`` is rebuilt from the run folders (one row per
run x representation x prefix x probe or metric) and is the single source for reports. Runs
trained in another study folder (another machine, or a folder since deleted) join through
``STUDY/imported.csv``: their rows, copied from that folder's ``results.csv`` by
``import_results``, stand in for a run folder that is not here; a run folder here always wins.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from repvae.data import dataset_label
from repvae.evaluate.suite import metric_values
from repvae.files import write_text
from repvae.studies.spec import RunSpec, Study

RESULT_COLUMNS = [
    "run",
    "dataset",
    "method",
    "replaces",
    "latent",
    "dims",
    "seed",
    "kind",
    "probe",
    "protocol",
    "accuracy",
    "std",
    "n_train",
    "n_test",
    "train_seconds",
    "epochs",
    "metric",
    "value",
    "note",
]


# Columns added since the first results.csv files, with the value the older rows mean.
LATER_COLUMNS = {"replaces": "", "note": ""}
IMPORTED = "imported.csv"
_NUMBER_COLUMNS = (
    *("latent", "dims", "seed", "epochs", "n_train", "n_test"),
    *("accuracy", "std", "train_seconds", "value"),
)


def _number(text: str) -> int | float | None:
    """A CSV cell as the number ``collect`` wrote (an int stays an int), or None if empty."""
    if text in ("", None):
        return None
    try:
        return int(text)
    except ValueError:
        return float(text)


def read_results(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``results.csv`` (or ``imported.csv``) with the types ``collect`` gives
    them: numbers as numbers, empty numeric cells as None."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(RESULT_COLUMNS).difference(reader.fieldnames or [], LATER_COLUMNS)
        if missing:
            raise ValueError(f"{path}: not a study's results.csv (no column {sorted(missing)})")
        rows = list(reader)
    for row in rows:
        for column, default in LATER_COLUMNS.items():
            row.setdefault(column, default)
        try:
            row.update({key: _number(row[key]) for key in _NUMBER_COLUMNS})
        except ValueError as err:
            raise ValueError(f"{path}: run {row['run']}: {err}") from None
    return rows


def run_finished(study_dir: Path, run_id: str) -> bool:
    """Whether the run's folder holds a finished run (training writes summary.json last)."""
    return (study_dir / "runs" / run_id / "summary.json").exists()


def import_results(study_dir: Path, specs: list[RunSpec], sources: list[Path]) -> list[str]:
    """Copy into ``STUDY/imported.csv`` the rows of this study's runs that finished in other
    study folders (their ``results.csv``), for the runs that have no finished folder here.

    A later source, or a later import, replaces the rows of the runs it has. A row's method
    must be the one this study gives its run id (a row of another study would otherwise
    slip in), and it cannot have trained more epochs than this study's budget allows.
    Returns the imported run ids."""
    if not sources:
        return []
    wanted = {s.id: s for s in specs if not run_finished(study_dir, s.id)}
    target = study_dir / IMPORTED
    rows_by_run: dict[str, list[dict[str, Any]]] = {}
    for row in read_results(target) if target.exists() else []:
        rows_by_run.setdefault(row["run"], []).append(row)
    imported: list[str] = []
    for source in sources:
        if not Path(source).is_file():
            raise FileNotFoundError(f"{source}: no such results file to import")
        fresh: dict[str, list[dict[str, Any]]] = {}
        for row in read_results(Path(source)):
            spec = wanted.get(row["run"])
            if spec is None:
                continue
            if row["method"] != spec.method:
                raise ValueError(
                    f"{source}: run {row['run']} is labelled {row['method']!r}, but this "
                    f"study calls it {spec.method!r}: rows of another study?"
                )
            if row["epochs"] is not None and row["epochs"] > spec.config.train.epochs:
                raise ValueError(
                    f"{source}: run {row['run']} trained {row['epochs']} epochs, more than "
                    f"this study's budget ({spec.config.train.epochs}): another budget?"
                )
            fresh.setdefault(row["run"], []).append(row)
        rows_by_run.update(fresh)
        imported += [run for run in fresh if run not in imported]
    if not imported:
        names = ", ".join(map(str, sources))
        raise ValueError(
            f"{names}: no rows for the runs this study lacks ({sorted(wanted) or 'none'})"
        )
    write_rows(target, [row for rows in rows_by_run.values() for row in rows])
    return imported


def collect(study: Study, specs: list[RunSpec], study_dir: Path) -> list[dict[str, Any]]:
    """Rebuild ``results.csv`` from the run folders (only the study's current runs), and from
    ``imported.csv`` for the runs that finished elsewhere."""
    imported: dict[str, list[dict[str, Any]]] = {}
    if (study_dir / IMPORTED).exists():
        for row in read_results(study_dir / IMPORTED):
            imported.setdefault(row["run"], []).append(row)
    rows = []
    for spec in specs:
        run_dir = study_dir / "runs" / spec.id
        if not run_finished(study_dir, spec.id):
            rows += imported.get(spec.id, [])
            continue
        summary = json.loads((run_dir / "summary.json").read_text())
        common = {
            "run": spec.id,
            "dataset": dataset_label(spec.config.data.name),
            "method": spec.method,
            "replaces": spec.replaces,
            "seed": spec.config.train.seed,
            "train_seconds": round(summary["train_seconds"], 1),
            "epochs": summary["epochs"],
        }
        probes = run_dir / "probes.json"
        for r in json.loads(probes.read_text()) if probes.exists() else []:
            rows.append(
                {
                    **common,
                    "latent": r.get("dims") or spec.config.model.latent_dim,
                    "dims": r.get("dims"),
                    "kind": r["kind"],
                    "probe": r["probe"],
                    "protocol": r["protocol"],
                    "accuracy": r["accuracy"],
                    "std": r["std"],
                    "n_train": r["n_train"],
                    "n_test": r["n_test"],
                    "metric": "accuracy",
                    "value": r["accuracy"],
                    # what the probe measured, where the family says it is not the usual
                    "note": r.get("note", ""),
                }
            )
        for metric in study.evaluate.metrics:
            path = run_dir / "evaluation" / f"{metric}.json"
            if not path.exists():
                continue
            result = json.loads(path.read_text())
            for name, value in metric_values(metric, result).items():
                rows.append(
                    {
                        **common,
                        "latent": spec.config.model.latent_dim,
                        "kind": "map" if metric == "information" else "",
                        "protocol": result.get("split", ""),
                        "n_test": result.get("n_images", result.get("n")),
                        "metric": name,
                        "value": value,
                    }
                )
    write_rows(study_dir / "results.csv", rows)
    return rows


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """A results table as CSV, written atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, RESULT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, text.getvalue())
