"""Every study committed under results/ still re-reports from its results.csv alone (older
results.csv layouts included), as scripts/rereport.py does before and after a change."""

import importlib.util
from pathlib import Path

import pytest

from repvae.cli import main
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
    assert read_results(folder / "results.csv") == read_results(results / "results.csv")
