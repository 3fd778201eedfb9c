"""Re-report every committed study under ``results/`` from its ``results.csv`` alone.

The committed studies keep their results table and report, not their run folders. This rebuilds
a study folder for each (``study.yaml`` from the command in its provenance table) and runs
``repvae report STUDY --import results.csv``, so a change to the reporting code can be checked
against the committed numbers: run it before and after, and diff the two ``results.md`` sets.

    python scripts/rereport.py OUT_DIR [--only NAME ...] [--publish DEST]

``--only`` re-reports the named folders of ``results/`` alone; ``--publish DEST`` then copies each
report (``results.md``, ``results.html`` and the figures it links) to ``DEST/<name>/``, leaving the
study files (``study.yaml``, the copied tables) behind.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
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
    if args.image_size:
        overrides["data.image_size"] = args.image_size
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


def publish(folder: Path, dest: Path) -> None:
    """The report of a study folder, without its study files: Markdown, HTML, linked figures."""
    dest.mkdir(parents=True, exist_ok=True)
    markdown = (folder / "results.md").read_text()
    for name in ["results.md", "results.html", *re.findall(r"!\[[^]]*\]\(([^)]+)\)", markdown)]:
        shutil.copyfile(folder / name, dest / name)


def rereport(out: Path, only: list[str] | None = None, dest: Path | None = None) -> None:
    for results in sorted((ROOT / "results").glob("*/results.csv")):
        if only and results.parent.name not in only:
            continue
        folder = study_folder(results.parent, out)
        if folder is None:
            print(f"skip {results.parent.name}: no reproduce command in its results.md")
            continue
        code = main(["report", str(folder), "--import", str(results)])
        print(f"{results.parent.name}: exit {code}")
        if dest is not None and code == 0:
            publish(folder, dest / results.parent.name)


if __name__ == "__main__":
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("out", type=Path)
    options.add_argument("--only", nargs="+", metavar="NAME")
    options.add_argument("--publish", type=Path, metavar="DEST")
    args = options.parse_args()
    rereport(args.out, args.only, args.publish)
