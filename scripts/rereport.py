"""Re-report every committed study under ``results/`` from its ``results.csv`` alone.

The committed studies keep their results table and report, not their run folders. This rebuilds
a study folder for each (``study.yaml`` from the command in its provenance table) and runs
``repvae report STUDY --import results.csv``, so a change to the reporting code can be checked
against the committed numbers: run it before and after, and diff the two ``results.md`` sets.

    python scripts/rereport.py OUT_DIR
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import yaml

from repvae.cli import main, parser

ROOT = Path(__file__).resolve().parents[1]


def command_of(report: Path) -> list[str] | None:
    """The study command in the report's provenance table (its last one)."""
    found = re.findall(
        r"\| command\s*\| `(repvae (?:reproduce|run-experiment) [^`]*)`", report.read_text()
    )
    return shlex.split(found[-1])[1:] if found else None


def study_folder(results: Path, out: Path) -> Path | None:
    argv = command_of(results / "results.md")
    if argv is None or argv[0] != "reproduce":
        return None
    args = parser().parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.set)
    overrides = {k: yaml.safe_load(v) for k, v in overrides.items()}
    if args.dataset:
        overrides["data.name"] = args.dataset
    if args.data_root:
        overrides["data.root"] = str(args.data_root)
    study_file = ROOT / "src" / "repvae" / "studies" / f"{args.name}.yaml"
    folder = out / results.name
    folder.mkdir(parents=True, exist_ok=True)
    meta = {
        "name": args.name,
        "file": str(study_file),
        "command": " ".join(["repvae", *argv]),
        "budget": args.budget,
        "seeds": args.seeds
        or yaml.safe_load(study_file.read_text())
        .get("budgets", {})
        .get(args.budget or "", {})
        .get("seeds"),
        "overrides": overrides,
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return folder


def rereport(out: Path) -> None:
    for results in sorted((ROOT / "results").glob("*/results.csv")):
        folder = study_folder(results.parent, out)
        if folder is None:
            print(f"skip {results.parent.name}: no reproduce command in its results.md")
            continue
        code = main(["report", str(folder), "--import", str(results)])
        print(f"{results.parent.name}: exit {code}")


if __name__ == "__main__":
    rereport(Path(sys.argv[1]))
