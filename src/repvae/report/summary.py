"""The tables a study report opens with, made to be read at a glance.

One small table per dataset and representation kind (then one for the other measurements): a
line per probe or metric (and latent size), a column per method, each cell our mean over seeds
beside the published value and the difference, and each line citing its published values and
stating how their protocol differs from ours. Published methods we do not train get a line of
their own under the quantity they stand beside. Then the nested models against the separately
trained ones they replace: accuracy at each size (paired by seed where the seeds allow), and
training time.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repvae.report.tables import markdown_table, paired_text
from repvae.studies.published import ANY_DATASET, Published

OTHER = ""  # the section of the measurements that are not probes of one representation kind
SECTION_TITLES = {
    "map": "MAP codes (posterior means)",
    "sample": "one posterior sample",
    "dist": "distribution embeddings [mu, sigma]",
    OTHER: "other measurements",
}
_SECTION_ORDER = ("map", "sample", "samples", "dist")
_COUNTS = ("intrinsic_dimension", "active_units")
# "±" joined to its numbers by no-break spaces: a narrow cell "ours / published / difference"
# wraps at the slashes only, one number (± its spread) a line
PM = "\u00a0±\u00a0"


def quantity(row: dict[str, Any]) -> str:
    """The name of what a results row measures, as the summary and the published data call it."""
    if row["metric"] == "accuracy":
        return f"{row['probe']} probe, {row['kind']} ({row['protocol']})"
    return row["metric"]


def is_accuracy(name: str) -> bool:
    """Probe accuracies are fractions in results.csv and percentages in reports."""
    return name.endswith(")")


def section_of(row: dict[str, Any]) -> str:
    """The table a results row goes in: its representation kind for probes, else OTHER."""
    return row["kind"] if row["metric"] == "accuracy" else OTHER


def section_title(section: str) -> str:
    name, _, k = section.partition(":")
    if name == "samples":
        return f"{k} posterior samples, predictions averaged"
    return SECTION_TITLES.get(section, section)


def _section_key(section: str) -> tuple[int, str]:
    name = section.partition(":")[0]
    order = _SECTION_ORDER.index(name) if name in _SECTION_ORDER else len(_SECTION_ORDER)
    return (len(_SECTION_ORDER) + 1 if section == OTHER else order), section


def fmt(name: str, value: float, averaged: bool = False) -> str:
    """A value of quantity ``name`` as reports print it (accuracies in %)."""
    if is_accuracy(name):
        return f"{100 * value:.2f}"
    if name in _COUNTS:
        # a count, but its mean and std over seeds are not: 10, 11, 11 is 10.7 ± 0.6, not 11 ± 1
        return f"{value:.1f}" if averaged else f"{value:.0f}"
    return f"{value:.2f}" if "percent" in name else f"{value:.3f}"


def _signed(name: str, value: float, averaged: bool) -> str:
    text = fmt(name, value, averaged)
    return text if text.startswith("-") else f"+{text}"


def in_our_units(p: Published) -> tuple[float, float | None]:
    """A published value and its ± in the units of the quantity of ours it stands beside:
    percentages become fractions for probe accuracies, and an accuracy becomes an error."""
    assert p.value is not None
    value, pm = p.value, p.pm
    if is_accuracy(p.our_quantity):
        return value / 100, None if pm is None else pm / 100
    if "error" in p.our_quantity and "accuracy" in p.quantity:
        return 100 - value, pm
    return value, pm


def published_text(p: Published) -> str:
    value, pm = in_our_units(p)
    text = ("≈" if p.approximate else "") + fmt(p.our_quantity, value)
    return text if pm is None else f"{text}{PM}{fmt(p.our_quantity, pm)}"


def natural(name: str) -> tuple:
    """Sort key that puts "error_percent_600_labels" before "error_percent_1000_labels"."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name))


@dataclass
class _Line:
    """One line of a summary table: a quantity at a latent size; ``theirs`` names a published
    method we do not train, whose values stand under the methods of ours they are placed beside."""

    name: str
    latent: int
    theirs: str = ""
    cells: dict[str, str] = field(default_factory=dict)
    citations: list[str] = field(default_factory=list)
    protocols: list[str] = field(default_factory=list)

    def cite(self, p: Published) -> None:
        for found, item in ((self.citations, p.citation), (self.protocols, p.protocol)):
            if item and item not in found:
                found.append(item)


def _one_value_each(placed: list[Published], where: str) -> Published:
    """The published value of one cell; two sources may give it only if they agree."""
    numbers = {(p.value, p.pm) for p in placed}
    if len(numbers) > 1:
        given = "; ".join(f"{p.citation}: {p.value} ± {p.pm}" for p in placed)
        raise ValueError(f"published values disagree for {where}: {given}")
    return placed[0]


Values = dict[tuple[str, int, str], list[float]]  # (quantity, latent, method) -> one per seed


def _placed(
    published: Sequence[Published], ours: Values, latents: dict[str, set[int]], section: str
) -> dict[tuple[str, int, str, str], list[Published]]:
    """Where each published value stands in ``section``'s table: (quantity, latent, published
    method if we do not train it, our method's column) -> the values given for that cell.

    A probe accuracy stands only where this section measured that probe; any other quantity
    stands in the OTHER section, at the sizes of ours that measured it (or, where we lack it,
    at every size the method was trained at), within the sizes it is placed at."""
    measured = {name for name, _, _ in ours}
    placed: dict[tuple[str, int, str, str], list[Published]] = defaultdict(list)
    for p in published:
        if p.value is None or p.column not in latents:
            continue
        probe = is_accuracy(p.our_quantity)
        name = beside_ours(p.our_quantity, measured) if probe else p.our_quantity
        if name is None or (not probe and section != OTHER):
            continue
        sizes = {size for name_, size, m in ours if (name_, m) == (name, p.column)}
        for latent in sorted(sizes or latents[p.column]):
            if p.applies_to(latent):
                theirs = p.method if p.beside else ""
                placed[(name, latent, theirs, p.column)].append(p)
    return placed


def beside_ours(published: str, measured: set[str]) -> str | None:
    """Our probe accuracy a published one stands beside: the same probe, representation and
    protocol, or else the same probe and representation under another protocol (the line then
    says how the protocols differ), or None where we did not measure that probe."""
    if published in measured:
        return published
    probe = published.rpartition(" (")[0]
    others = sorted(name for name in measured if name.rpartition(" (")[0] == probe)
    return others[0] if others else None


def protocol_difference(ours: str, published: str) -> str:
    """What a line says when a published accuracy was measured under another protocol."""
    return f"protocols differ: ours {_protocol(ours)}, published {_protocol(published)}"


def _protocol(probe_quantity: str) -> str:
    """``split`` of ``mlp probe, map (split)``."""
    return probe_quantity.rpartition(" (")[2].rstrip(")")


def _cell(name: str, values: list[float] | None, p: Published) -> str:
    """ours / published / ours − published (a dash where we have no value)."""
    if values is None:
        return f"— / {published_text(p)}"
    gap = _signed(name, float(np.mean(values)) - in_our_units(p)[0], len(values) > 1)
    return f"{_mean_text(name, values)} / {published_text(p)} / {gap}"


def summary_table(
    rows: list[dict[str, Any]],
    published: Sequence[Published],
    methods: Sequence[str],
    section: str,
) -> tuple[list[dict[str, str]], list[str]]:
    """The rows and columns of one dataset's table for ``section``: ``rows`` are that dataset's
    results, ``published`` the values shown with that dataset, ``methods`` the column order."""
    ours: Values = defaultdict(list)
    for r in rows:
        if section_of(r) == section:
            ours[(quantity(r), int(r["latent"]), r["method"])].append(float(r["value"]))
    latents: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        latents[r["method"]].add(int(r["latent"]))
    lines = {(name, latent, ""): _Line(name, latent) for name, latent, _ in ours}
    for (name, latent, theirs, column), found in _placed(published, ours, latents, section).items():
        line = lines.setdefault((name, latent, theirs), _Line(name, latent, theirs))
        p = _one_value_each(found, f"{column}, {name} at latent {latent}")
        for each in found:
            line.cite(each)
            if each.our_quantity != name:
                note = protocol_difference(name, each.our_quantity)
                if note not in line.protocols:
                    line.protocols.insert(0, note)
        values = None if theirs else ours.get((name, latent, column))
        line.cells[column] = published_text(p) if theirs else _cell(name, values, p)
    for (name, latent, method), values in ours.items():
        lines[(name, latent, "")].cells.setdefault(method, _mean_text(name, values))
    return _layout(list(lines.values()), published, methods, section)


def _layout(
    lines: list[_Line], published: Sequence[Published], methods: Sequence[str], section: str
) -> tuple[list[dict[str, str]], list[str]]:
    """The table of ``lines``: a latent column where sizes differ, the methods that have a
    cell in ``methods``' order, source and protocol where anything is cited; a published
    method's lines under the quantity it stands beside, in the published data's order."""
    present = {m for line in lines for m in line.cells}
    columns = ["quantity", *(["latent"] if len({line.latent for line in lines}) > 1 else [])]
    columns += [m for m in methods if m in present]
    columns += ["source", "protocol"] if any(line.citations for line in lines) else []
    first = {p.method: i for i, p in reversed(list(enumerate(published)))}
    table = []
    for line in sorted(lines, key=lambda x: (natural(x.name), x.latent, first.get(x.theirs, -1))):
        label = _label(line.name, section)
        out = {
            "quantity": f"{label}: {line.theirs} (published)" if line.theirs else label,
            "latent": str(line.latent),
            "source": "; ".join(line.citations),
            "protocol": "; ".join(line.protocols),
        }
        table.append({c: out.get(c, line.cells.get(c, "")) for c in columns})
    return table, columns


def _label(name: str, section: str) -> str:
    """A quantity as its section's table names it: the probe and protocol of a probe."""
    if is_accuracy(name) and section != OTHER:
        probe, _, rest = name.partition(" probe, ")
        return f"{probe} {rest.rpartition(' ')[2]}"
    return name


def _mean_text(name: str, values: list[float]) -> str:
    if len(values) == 1:
        return fmt(name, values[0])
    spread = float(np.std(values, ddof=1))  # the sample std over seeds
    return f"{fmt(name, float(np.mean(values)), True)}{PM}{fmt(name, spread, True)}"


def summary_sections(
    rows: list[dict[str, Any]],
    published: Sequence[Published],
    methods: Sequence[str],
    ours: str,
    budget: str,
) -> str:
    """Every dataset's tables, each under its own heading and a caption that says what a cell
    holds (``ours``: over what it is a mean) and the ``budget``, then the published claims
    without a number."""
    out = []
    for dataset in sorted({r["dataset"] for r in rows}):
        mine = [r for r in rows if r["dataset"] == dataset]
        shown = [p for p in published if p.shown_with(dataset)]
        renamed = sorted({p.compared_dataset for p in shown} - {dataset, ANY_DATASET})
        cell = f"ours ({ours}) / published / ours − published" if shown else f"ours ({ours})"
        caption = f"Each cell: {cell}; accuracies in %. {budget}"
        note = f" Published values are for {', '.join(renamed)}." if renamed else ""
        for section in sorted({section_of(r) for r in mine}, key=_section_key):
            table, columns = summary_table(mine, shown, methods, section)
            out += [f"### {dataset}: {section_title(section)}", "", f"*{caption}{note}*", ""]
            out += [markdown_table(table, columns), ""]
        claims = [p for p in shown if p.value is None]
        if claims:
            out += [f"Published for {dataset} without a number:", ""]
            out += [f"- {p.citation}, {p.method} ({p.setting}): {p.note}" for p in claims]
            out += [""]
    return "\n".join(out).strip()


def _train_seconds(runs: dict[str, tuple[int, float]]) -> float:
    """Training time of one method: the mean over seeds at each size it was trained at
    (``run -> (size, seconds)``), summed over the sizes."""
    by_size: dict[int, list[float]] = defaultdict(list)
    for size, seconds in runs.values():
        by_size[size].append(seconds)
    return float(sum(np.mean(v) for v in by_size.values()))


def nested_difference(nested: dict[int, float], separate: dict[int, float]) -> str:
    """Nested − separate accuracy in points, from ``seed -> accuracy`` of each. With two or more
    seeds in common, the mean of the per-seed differences and its 95 % paired t interval, which
    says how far the seeds agree (pairing removes what a seed fixes for both, such as the data
    order, though little of it survives long training). Otherwise the difference of the means."""
    shared = sorted(nested.keys() & separate.keys())
    if len(shared) < 2:
        return f"{100 * (np.mean(list(nested.values())) - np.mean(list(separate.values()))):+.2f}"
    return paired_text([nested[s] for s in shared], [separate[s] for s in shared], scale=100)


def nested_table(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Each nested model against the separately trained models it replaces, from probe rows:
    accuracy points (nested − separate; paired by seed where both have two or more seeds, see
    ``nested_difference``) at every size both have, and training time (the nested model's
    against the sum over sizes of the separate models')."""
    accuracy: dict[tuple[str, str, str, int], dict[int, float]] = defaultdict(dict)
    runs: dict[tuple[str, str], dict[str, tuple[int, float]]] = defaultdict(dict)
    nested: dict[tuple[str, str], str] = {}
    for r in rows:
        name = f"{r['kind']}, {_label(quantity(r), r['kind'])}"
        key = (r["dataset"], r["method"], name, int(r["latent"]))
        accuracy[key][int(r["seed"])] = float(r["accuracy"])
        size = 0 if r.get("dims") not in (None, "") else int(r["latent"])
        runs[(r["dataset"], r["method"])][r["run"]] = (size, float(r["train_seconds"]))
        if r.get("replaces"):
            nested[(r["dataset"], r["method"])] = r["replaces"]
    sizes = sorted({latent for *_, latent in accuracy})
    table = []
    for (dataset, method), replaces in nested.items():
        mine = _train_seconds(runs[(dataset, method)])
        theirs = _train_seconds(runs.get((dataset, replaces), {}))
        names = sorted({n for d, m, n, _ in accuracy if (d, m) == (dataset, method)})
        for i, name in enumerate(names):
            line: dict[str, Any] = {"dataset": dataset, "nested model": method}
            line |= {"replaces": replaces, "representation, probe": name}
            for size in sizes:
                a = accuracy.get((dataset, method, name, size))
                b = accuracy.get((dataset, replaces, name, size))
                if a and b:
                    line[f"m={size}"] = nested_difference(a, b)
            if i == 0:  # the cost is the model's, not the probe's: once
                line["train s"] = f"{mine:.1f}"
                if theirs:
                    line |= {"separate train s": f"{theirs:.1f}", "ratio": f"{mine / theirs:.2f}"}
            table.append(line)
    columns = ["dataset", "nested model", "replaces", "representation, probe"]
    columns += [f"m={s}" for s in sizes if any(f"m={s}" in line for line in table)]
    return table, [*columns, "train s", "separate train s", "ratio"]
