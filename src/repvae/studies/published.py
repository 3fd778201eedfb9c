"""Published numbers as data, read through one loader.

The project's reference numbers (``reference_numbers.csv`` of the shared folder) have one row per
published value, in the source's own words::

    source,table,dataset,method,setting,quantity,value,pm,note
    zhang2022,Table 2,mnist,LPVAE (h=1),MAP,linear probe accuracy,94.4,0.1,linear SVM

The package keeps a copy, ``repvae/studies/published.csv`` (``scripts/sync_published.py``
refreshes it from the shared file and keeps the rows of sources the shared file lacks), with
columns that place a value in a study's report, in the study's own words:

- ``study``: the study whose report shows it (empty: none does);
- ``our_dataset``: the dataset label of ours it stands beside (empty: the published dataset, or
  a variant of it named ``<dataset>-...``, e.g. ``cifar10-jpeg``; ``*``: any dataset);
- ``our_method``: our label of the same method, so that the report shows ours − published; or
  ``beside``: for a method we do not train, the method of ours it is shown beside;
- ``our_quantity``: the quantity of ours it is compared with, as reports name them
  (``mlp probe, map (split)``, ``bpd_elbo``, ``classifier_error_percent``);
- ``our_latent``: the latent sizes it applies to (``32``, ``8-128``; empty: any);
- ``protocol``: how the published protocol differs from ours, stated in the report's row.

One published value may stand in several places (several rows with the same source columns).
A row without a value is a published claim with no number; its ``note`` says what it claims.
A study file elsewhere finds its published values in a ``published.csv`` beside it.
Every malformed row is refused with its line number.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from repvae.files import write_text

# the shared file's columns, then the columns that place a value in a study's report
SOURCE_COLUMNS = (
    "source",
    "table",
    "dataset",
    "method",
    "setting",
    "quantity",
    "value",
    "pm",
    "note",
)
PLACEMENT_COLUMNS = (
    "study",
    "our_dataset",
    "our_method",
    "beside",
    "our_quantity",
    "our_latent",
    "protocol",
)
PUBLISHED_FILE = "published.csv"
ANY_DATASET = "*"
_REQUIRED = ("source", "table", "dataset", "method", "quantity")


@dataclass(frozen=True)
class Published:
    """One published value (in the source's units and words) and where a study shows it."""

    source: str
    table: str
    dataset: str
    method: str
    setting: str
    quantity: str
    value: float | None  # None: a claim without a number (the note says what it claims)
    pm: float | None  # the ± the source gives
    note: str
    study: str = ""
    our_dataset: str = ""
    our_method: str = ""
    beside: str = ""
    our_quantity: str = ""
    our_latent: tuple[int, int] | None = None  # inclusive range; None: any latent size
    protocol: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        """What identifies the published value, wherever it is placed."""
        return (self.source, self.table, self.dataset, self.method, self.setting, self.quantity)

    @property
    def citation(self) -> str:
        return f"{self.source} {self.table}"

    @property
    def approximate(self) -> bool:
        """Read off a plot or a sentence ("approaches 98 %"): the shared file's notes say so."""
        return self.note.lower().startswith("approximate")

    @property
    def column(self) -> str:
        """The method of ours whose column shows this value."""
        return self.our_method or self.beside

    @property
    def compared_dataset(self) -> str:
        """The dataset (label) of ours it is compared with, as placed."""
        return self.our_dataset or self.dataset

    def shown_with(self, dataset: str) -> bool:
        """Whether this value stands beside our results on ``dataset`` (a dataset label)."""
        theirs = self.compared_dataset
        return theirs in (dataset, ANY_DATASET) or dataset.startswith(f"{theirs}-")

    def applies_to(self, latent: int) -> bool:
        return self.our_latent is None or self.our_latent[0] <= latent <= self.our_latent[1]

    def source_row(self) -> dict[str, str]:
        """The row in the shared file's layout, as text."""
        return {c: _text(getattr(self, c)) for c in SOURCE_COLUMNS}

    def row(self) -> dict[str, str]:
        """The row in the package file's layout, as text."""
        placement = {c: _text(getattr(self, c)) for c in PLACEMENT_COLUMNS}
        return {**self.source_row(), **placement}


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):  # a latent range
        low, high = value
        return str(low) if low == high else f"{low}-{high}"
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


def _number(text: str, column: str, where: str) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {column} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {column} {text!r} is not a finite number")
    return value


def _latent(text: str, where: str) -> tuple[int, int] | None:
    """``32`` -> (32, 32); ``8-128`` -> (8, 128); empty -> None (any latent size)."""
    if text == "":
        return None
    low, _, high = text.partition("-")
    try:
        bounds = int(low), int(high or low)
    except ValueError:
        raise ValueError(f"{where}: our_latent {text!r} is not N or N-M") from None
    if not 0 < bounds[0] <= bounds[1]:
        raise ValueError(f"{where}: our_latent {text!r} is not a range of positive sizes")
    return bounds


def _parse(cells: dict[str, str], where: str) -> Published:
    """One row, checked: the fields every value needs, numbers, and a placement that can work."""
    for column in _REQUIRED:
        if not cells[column]:
            raise ValueError(f"{where}: no {column}")
    value = _number(cells["value"], "value", where)
    pm = _number(cells["pm"], "pm", where)
    if value is None and not cells["note"]:
        raise ValueError(f"{where}: no value, and no note saying what the source claims")
    if pm is not None and (pm < 0 or value is None):
        raise ValueError(f"{where}: pm {cells['pm']!r} needs a value and must be >= 0")
    placed = {c: cells.get(c, "") for c in PLACEMENT_COLUMNS}
    if placed["our_method"] and placed["beside"]:
        raise ValueError(f"{where}: our_method and beside both set; a value is one or the other")
    if placed["study"] and value is not None:
        for column, missing in (
            ("our_method or beside", not (placed["our_method"] or placed["beside"])),
            ("our_quantity", not placed["our_quantity"]),
        ):
            if missing:
                raise ValueError(f"{where}: placed in study {placed['study']!r} without {column}")
    return Published(
        **{c: cells[c] for c in SOURCE_COLUMNS if c not in ("value", "pm")},
        value=value,
        pm=pm,
        **{c: v for c, v in placed.items() if c != "our_latent"},
        our_latent=_latent(placed["our_latent"], where),
    )


def read_published(path: str | Path) -> list[Published]:
    """The rows of a published-values file: the shared reference table or the package's copy.

    Raises ValueError naming the file and line of the first malformed row: a missing column, a
    row with too few or too many cells, an empty required field, a value or ± that is not a
    number, a placement that cannot work, or one value given twice with different numbers."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}:1: empty file; expected the columns {list(SOURCE_COLUMNS)}")
        missing = [c for c in SOURCE_COLUMNS if c not in header]
        unknown = [c for c in header if c not in SOURCE_COLUMNS + PLACEMENT_COLUMNS]
        if missing or unknown:
            raise ValueError(
                f"{path}:1: header {header}: missing {missing}, unknown {unknown}; expected "
                f"{list(SOURCE_COLUMNS)} and optionally {list(PLACEMENT_COLUMNS)}"
            )
        rows: list[Published] = []
        seen: dict[tuple[str, ...], tuple[Published, int]] = {}
        for cells in reader:
            where = f"{path}:{reader.line_num}"
            if not any(cells):
                continue  # a blank line
            if len(cells) != len(header):
                raise ValueError(f"{where}: {len(cells)} cells, expected {len(header)} ({header})")
            row = _parse(dict(zip(header, cells, strict=True)), where)
            earlier = seen.setdefault(row.key, (row, reader.line_num))
            if (earlier[0].value, earlier[0].pm, earlier[0].note) != (row.value, row.pm, row.note):
                raise ValueError(f"{where}: {row.key} was given differently on line {earlier[1]}")
            rows.append(row)
    return rows


def write_published(path: str | Path, rows: list[Published]) -> None:
    """The package file's layout (source columns, then placement columns), written atomically."""
    text = io.StringIO()
    writer = csv.DictWriter(text, [*SOURCE_COLUMNS, *PLACEMENT_COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(r.row() for r in rows)
    write_text(path, text.getvalue())


def published_for(study: str, study_file: str | Path) -> list[Published]:
    """The values placed in ``study`` by the ``published.csv`` beside its study file (for the
    shipped studies, the package's copy of the reference numbers); none if there is no file."""
    path = Path(study_file).with_name(PUBLISHED_FILE)
    if not path.exists():
        return []
    return [r for r in read_published(path) if r.study == study]
