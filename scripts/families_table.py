"""The family comparison of results/families-mnist16 as Markdown, from the run folders' own
files (``summary.json``, ``probes.json``, ``config.yaml``).

    python scripts/families_table.py RUNS_FOLDER > table.md

One row per run and representation kind (with its data set and networks) with the MAP linear
and MLP probe accuracies (split protocol), the training time, and the family's note where the
code is not a fair representation score (a style code); then a codebook table for the runs that
have one, and a coherence table for the multimodal runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def _cell(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def probe_rows(runs: Path) -> list[str]:
    lines = [
        "| run | family | data | networks | representation | linear % | MLP % | train s | epochs |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes: dict[str, str] = {}
    for run in sorted(p for p in runs.iterdir() if (p / "probes.json").exists()):
        config = yaml.safe_load((run / "config.yaml").read_text())
        summary = json.loads((run / "summary.json").read_text())
        records = json.loads((run / "probes.json").read_text())
        for kind in dict.fromkeys(r["kind"] for r in records):
            by_probe = {r["probe"]: r for r in records if r["kind"] == kind}
            note = next((r["note"] for r in by_probe.values() if r.get("note")), "")
            mark = ""
            if note:
                mark = " " + "*" * (list(dict.fromkeys([*notes.values(), note])).index(note) + 1)
                notes[run.name] = note
            accuracy = {p: 100 * r["accuracy"] for p, r in by_probe.items()}
            lines.append(
                f"| {run.name}{mark} | {config['model']['family']} | {config['data']['name']} "
                f"| {config['model']['architecture']} | {kind} "
                f"| {_cell(accuracy.get('linear'))} | {_cell(accuracy.get('mlp'))} "
                f"| {summary['train_seconds']:.0f} | {summary['epochs']} |"
            )
    for i, note in enumerate(dict.fromkeys(notes.values())):
        lines.append(f"\n{'*' * (i + 1)} {note}.")
    return lines


def codebook_rows(runs: Path) -> list[str]:
    lines = [
        "| run | EMA | dead-code restarts | perplexity | codes used | dead codes | best val loss |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for run in sorted(runs.iterdir()):
        path = run / "summary.json"
        summary = json.loads(path.read_text()) if path.exists() else {}
        if "codebook_perplexity" not in summary:
            continue
        options = yaml.safe_load((run / "config.yaml").read_text())["model"]["vqvae"]
        restarts = (
            f"below {options['dead_code_threshold']}" if options["dead_code_threshold"] else "off"
        )
        lines.append(
            f"| {run.name} | {'on' if options['ema'] else 'off'} | {restarts} "
            f"| {summary['codebook_perplexity']:.1f} | {summary['codes_used']} "
            f"| {summary['dead_codes']} | {summary['best_val_loss']:.2f} |"
        )
    return lines if len(lines) > 2 else []


def coherence_rows(runs: Path) -> list[str]:
    lines = [
        "| run | fusion | cross-modal coherence % | joint coherence % "
        "| per pair (source -> target) % | classifiers on real images % |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for run in sorted(runs.iterdir()):
        path = run / "evaluation" / "coherence.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        fusion = yaml.safe_load((run / "config.yaml").read_text())["model"]["multimodal"]["fusion"]
        matrix = result["cross_coherence_matrix"]
        pairs = ", ".join(
            f"{i + 1}->{j + 1} {100 * v:.1f}"
            for i, row in enumerate(matrix)
            for j, v in enumerate(row)
            if i != j
        )
        accuracy = ", ".join(f"{100 * a:.1f}" for a in result["classifier_accuracy"])
        lines.append(
            f"| {run.name} | {fusion} | {100 * result['cross_coherence']:.2f} "
            f"| {100 * result['joint_coherence']:.2f} | {pairs} | {accuracy} |"
        )
    return lines if len(lines) > 2 else []


def main() -> None:
    runs = Path(sys.argv[1])
    print("\n".join(probe_rows(runs)))
    codebook = codebook_rows(runs)
    if codebook:
        print("\nCodebook usage over the training images' code maps (K = 128):\n")
        print("\n".join(codebook))
    coherence = coherence_rows(runs)
    if coherence:
        print("\nMultimodal coherence on the PolyMNIST-3 test images:\n")
        print("\n".join(coherence))


if __name__ == "__main__":
    main()
