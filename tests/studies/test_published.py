"""Published numbers enter the package through one loader, which reads every row of the shared
reference table, refuses a malformed row with its line number, and places each value beside a
quantity its study measures."""

import csv
import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from repvae.studies.published import (
    PLACEMENT_COLUMNS,
    SOURCE_COLUMNS,
    Published,
    published_for,
    read_published,
)
from repvae.studies.spec import builtin_study, load_study

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "published" / "reference_numbers.csv"
PACKAGE = ROOT / "src" / "repvae" / "studies" / "published.csv"


def _sync_script():
    spec = importlib.util.spec_from_file_location("sync", ROOT / "scripts" / "sync_published.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_file():
        pytest.skip("../shared/published/reference_numbers.csv is not present")
    return SHARED


def test_every_row_of_the_shared_reference_table_is_read(shared):
    with open(shared, newline="") as f:
        lines = [cells for cells in csv.reader(f) if any(cells)][1:]
    rows = read_published(shared)
    assert len(rows) == len(lines) > 90
    assert [r.source_row()["method"] for r in rows] == [cells[3] for cells in lines]
    assert {r.source for r in rows} == {"zhang2022", "slides", "aevae"}
    fid = next(r for r in rows if r.source == "aevae")
    assert (fid.value, fid.pm, fid.setting) == (269.98, None, "2000 real vs 2000 generated")
    claim = next(r for r in rows if r.value is None)  # a claim with no number is a row too
    assert "keeps up" in claim.note


def test_the_package_copy_holds_every_shared_row_as_the_shared_file_gives_it(shared):
    package = read_published(PACKAGE)
    assert _sync_script().merged(read_published(shared), package) == package
    by_key = {r.key: r for r in package}
    for row in read_published(shared):
        assert (by_key[row.key].value, by_key[row.key].pm) == (row.value, row.pm)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


GOOD = ["zhang2022", "Table 2", "mnist", "FPVAE", "z=32", "BPD", "0.98", "", ""]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({6: "0,98"}, r"value '0,98' is not a number"),
        ({6: "nan"}, r"value 'nan' is not a finite number"),
        ({7: "-1"}, r"pm '-1' needs a value and must be >= 0"),
        ({3: ""}, r"no method"),
        ({6: ""}, r"no value, and no note"),
        ({"drop": 8}, r"8 cells, expected 9"),
    ],
)
def test_a_malformed_row_is_refused_with_its_line_number(tmp_path, broken, message):
    row = list(GOOD)
    for column, value in broken.items():
        if column == "drop":
            row = row[:value]
        else:
            row[column] = value
    # line 1 is the header, lines 2-3 are good, line 4 is the broken row
    rows = [GOOD, [*GOOD[:4], "z=16", *GOOD[5:]], row]
    path = _write(tmp_path / "published.csv", list(SOURCE_COLUMNS), rows)
    with pytest.raises(ValueError, match=rf"published\.csv:4: {message}"):
        read_published(path)


def test_a_quoted_note_over_two_lines_counts_its_lines_and_a_bad_header_is_line_1(tmp_path):
    quoted = [*GOOD[:8], "one\ntwo"]
    path = _write(tmp_path / "p.csv", list(SOURCE_COLUMNS), [quoted, [*GOOD[:6], "x", "", ""]])
    with pytest.raises(ValueError, match=r"p\.csv:4: value 'x'"):
        read_published(path)
    path = _write(tmp_path / "p.csv", [*SOURCE_COLUMNS[:-1], "notes"], [GOOD])
    with pytest.raises(ValueError, match=r"p\.csv:1: .*missing \['note'\], unknown \['notes'\]"):
        read_published(path)


def test_one_value_given_twice_differently_or_placed_without_a_quantity_is_refused(tmp_path):
    columns = [*SOURCE_COLUMNS, *PLACEMENT_COLUMNS]
    placed = [*GOOD, "pixelvae", "", "FPVAE", "", "bpd_elbo", "32", "as ours"]
    twice = [*placed[:6], "0.99", *placed[7:]]
    path = _write(tmp_path / "p.csv", columns, [placed, placed, twice])
    with pytest.raises(ValueError, match=r"p\.csv:4: .* given differently on line 2"):
        read_published(path)
    no_quantity = [*placed[:13], "", *placed[14:]]
    with pytest.raises(ValueError, match=r"p\.csv:2: placed in study 'pixelvae' without our_q"):
        read_published(_write(tmp_path / "p.csv", columns, [no_quantity]))
    both = [*placed[:12], "VAE (h=0)", *placed[13:]]
    with pytest.raises(ValueError, match=r"p\.csv:2: our_method and beside both set"):
        read_published(_write(tmp_path / "p.csv", columns, [both]))
    bad_latent = [*placed[:14], "8-x", placed[15]]
    with pytest.raises(ValueError, match=r"p\.csv:2: our_latent '8-x' is not N or N-M"):
        read_published(_write(tmp_path / "p.csv", columns, [bad_latent]))


@pytest.mark.parametrize("name", ["flexible", "pixelvae", "semisupervised", "aevae"])
def test_every_placed_value_stands_beside_a_method_its_study_trains(name):
    study_file = builtin_study(name)
    study = load_study(study_file)
    methods = {s.method for budget in study.budgets for s in study.with_budget(budget).runs()}
    placed = published_for(name, study_file)
    assert placed, f"no published values placed in {name}"
    for p in placed:
        if p.value is not None:
            assert p.column in methods, f"{p.citation} {p.method}: {p.column!r} not in {methods}"


def test_syncing_keeps_placements_adds_new_rows_unplaced_and_keeps_other_sources(tmp_path):
    sync = _sync_script()
    shared = [
        Published("zhang2022", "Table 2", "mnist", "FPVAE", "z=32", "BPD", 0.98, None, ""),
        Published("zhang2022", "Table 2", "mnist", "VAE (h=0)", "z=32", "BPD", 1.24, None, ""),
    ]
    placed = replace(shared[0], value=0.97, study="pixelvae", our_method="FPVAE")
    placed = replace(placed, our_quantity="bpd_elbo")
    gone = replace(shared[0], method="LPVAE (h=9)", study="pixelvae", our_method="x")
    gone = replace(gone, our_quantity="bpd_elbo")
    own = Published("kingma2014", "Table 1", "mnist", "M1+TSVM", "", "test error", 3.49, 0.04, "")
    rows = sync.merged(shared, [gone, placed, own])
    assert rows == [replace(placed, value=0.98), shared[1], own]
    package = tmp_path / "published.csv"
    sync.write_published(package, [gone, placed, own])
    source = tmp_path / "shared.csv"
    sync.write_published(source, shared)
    lines = sync.sync(source, package)
    assert any("new, not placed" in line and "VAE (h=0)" in line for line in lines)
    assert any("dropped" in line and "LPVAE (h=9)" in line for line in lines)
    assert read_published(package) == rows
