"""Every study committed under results/ still re-reports from its results.csv alone (older
results.csv layouts included), as scripts/rereport.py does before and after a change."""

import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from repvae.cli import main
from repvae.studies.published import published_for
from repvae.studies.results import read_results

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = sorted(p.parent for p in (ROOT / "results").glob("*/results.csv"))


def _rereport():
    spec = importlib.util.spec_from_file_location("rereport", ROOT / "scripts" / "rereport.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("results", COMMITTED, ids=[p.name for p in COMMITTED])
def test_a_committed_study_re_reports_with_its_numbers(results, tmp_path):
    folder = _rereport().study_folder(results, tmp_path)
    assert folder is not None, f"{results}/results.md names no reproduce command"
    assert main(["report", str(folder), "--import", str(results / "results.csv")]) == 0
    rows = read_results(folder / "results.csv")
    assert rows == read_results(results / "results.csv")
    report = (folder / "results.md").read_text()
    # nested models meet the separate ones they replace, even in a results.csv older than the
    # replaces column; published values stand beside ours, cited, where the study places some
    if any(r["method"].startswith("Matryoshka") for r in rows):
        assert "## Nested models against the separately trained ones" in report
    study = yaml.safe_load((folder / "study.yaml").read_text())
    if published_for(study["name"], study["file"]):
        assert re.search(r"\| (zhang2022|slides|kingma2014|aevae) ", report)
