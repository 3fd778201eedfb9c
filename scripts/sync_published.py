"""Copy the shared reference numbers into the package: ``src/repvae/studies/published.csv``.

The library never reads the shared folder (it is not shipped); its studies read the package's
copy. This refreshes that copy from the shared file, through the loader the reports use
(``repvae.studies.published.read_published``, which refuses a malformed row with its line):

- every row of the shared file is kept, in its order, with its value, ± and note as the shared
  file gives them and the placements (study, our method, quantity, protocol) the copy had for it;
  a new row arrives unplaced, shown in no report until someone places it;
- rows of sources the shared file does not hold (e.g. ``kingma2014``) are kept as they are;
- placed rows whose value left the shared file are dropped, and named.

    python scripts/sync_published.py [SHARED_CSV]    # default ../shared/published/...
"""

from __future__ import annotations

import sys
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

from repvae.studies.published import Published, read_published, write_published

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "published" / "reference_numbers.csv"
PACKAGE = ROOT / "src" / "repvae" / "studies" / "published.csv"


def merged(shared: list[Published], package: list[Published]) -> list[Published]:
    """The package's rows refreshed from the shared rows (see the module docstring)."""
    placed: dict[tuple[str, ...], list[Published]] = defaultdict(list)
    for row in package:
        placed[row.key].append(row)
    rows: list[Published] = []
    for row in shared:
        kept = placed.pop(row.key, [])
        rows += [replace(p, value=row.value, pm=row.pm, note=row.note) for p in kept] or [row]
    sources = {row.source for row in shared}
    return rows + [p for group in placed.values() for p in group if p.source not in sources]


def sync(shared_csv: Path = SHARED, package_csv: Path = PACKAGE) -> list[str]:
    """Rewrite ``package_csv`` from ``shared_csv``; returns what changed, one line each."""
    shared, package = read_published(shared_csv), read_published(package_csv)
    rows = merged(shared, package)
    before = {p.key for p in package}
    after = {p.key for p in rows}
    lines = [f"new, not placed in any study yet: {key}" for key in sorted(after - before)]
    lines += [f"dropped (no longer in the shared file): {key}" for key in sorted(before - after)]
    write_published(package_csv, rows)
    return [*lines, f"{package_csv}: {len(rows)} rows ({len(shared)} from {shared_csv})"]


if __name__ == "__main__":
    for line in sync(*(Path(a) for a in sys.argv[1:2])):
        print(line)
