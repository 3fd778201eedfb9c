"""Plain-text/Markdown tables: the CLI prints the same table a report embeds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repvae.evaluate.paired import paired_over_seeds


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    # a bar inside a cell (q(z|x)) would end the cell
    return "" if value is None else str(value).replace("|", "\\|")


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub-flavoured Markdown table, columns padded so it also reads well in a terminal."""
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in cells]
    return "\n".join(out)


def accuracy_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Probe records -> rows with accuracy as 'mean ± std' percentages."""
    rows = []
    for r in records:
        acc = f"{100 * r['accuracy']:.2f}"
        if r.get("std"):
            acc += f" ± {100 * r['std']:.2f}"
        rows.append({**r, "accuracy %": acc, "dims": r.get("dims") or "all"})
    return rows


def paired_text(a: Sequence[float], b: Sequence[float], scale: float = 1.0) -> str:
    """A − B paired by seed as a cell: the mean difference and its 95 % t interval, each times
    ``scale`` (100 for accuracies kept as fractions), e.g. ``+1.33 [-0.10, +2.77]``."""
    paired = paired_over_seeds(a, b)
    low, high = (scale * v for v in paired["interval"])
    return f"{scale * paired['difference']:+.2f} [{low:+.2f}, {high:+.2f}]"
