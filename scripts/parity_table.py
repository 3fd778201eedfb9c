"""The bf16-against-fp32 parity table of results/precision-parity, from the run folders' own
files (``summary.json``, ``probes.json``).

    python scripts/parity_table.py RUNS_FOLDER [PREFIX] > table.md

Pairs ``PREFIX-32-true[-seedS]`` with ``PREFIX-auto[-seedS]`` (seed 0 has no suffix), one row
per seed with both runs' best validation loss and MAP probe accuracies (split protocol), then
each column's mean and sample standard deviation, and the paired bf16 − fp32 differences with
a 95 % t interval: the seed-to-seed spread is as large as the difference being bounded, so the
interval, not the mean alone, says what the seeds can tell.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

from repvae.evaluate.paired import paired_over_seeds

PRECISIONS = ("32-true", "auto")
COLUMNS = ("val loss", "linear", "mlp")


def scores(run: Path) -> dict[str, float]:
    summary = json.loads((run / "summary.json").read_text())
    probes = {
        r["probe"]: 100 * r["accuracy"]
        for r in json.loads((run / "probes.json").read_text())
        if r["kind"] == "map" and r["protocol"] == "split"
    }
    return {"val loss": summary["best_val_loss"], "linear": probes["linear"], "mlp": probes["mlp"]}


def seeds(runs: Path, prefix: str) -> list[int]:
    pattern = re.compile(rf"{re.escape(prefix)}-32-true(?:-seed(\d+))?$")
    found = (pattern.match(p.name) for p in runs.iterdir())
    return sorted(int(m.group(1) or 0) for m in found if m)


def folder(runs: Path, prefix: str, precision: str, seed: int) -> Path:
    return runs / f"{prefix}-{precision}{'' if seed == 0 else f'-seed{seed}'}"


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ({statistics.stdev(values):.2f})"


def interval(a: list[float], b: list[float]) -> str:
    """A − B paired by seed: mean, sample std and the 95 % t interval."""
    d = paired_over_seeds(a, b)
    low, high = d["interval"]
    return f"{d['difference']:+.2f} ({d['std']:.2f}), 95 % [{low:+.2f}, {high:+.2f}]"


def table(runs: Path, prefix: str) -> str:
    complete = [
        s
        for s in seeds(runs, prefix)
        if all((folder(runs, prefix, p, s) / "probes.json").exists() for p in PRECISIONS)
    ]
    if len(complete) < 2:
        raise SystemExit(f"{runs}: fewer than two seeds with both precisions probed")
    by_seed = {s: [scores(folder(runs, prefix, p, s)) for p in PRECISIONS] for s in complete}
    header = "| seed | " + " | ".join(f"fp32 {c} | bf16 {c}" for c in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(COLUMNS))]
    for s, (fp32, bf16) in by_seed.items():
        cells = " | ".join(f"{fp32[c]:.2f} | {bf16[c]:.2f}" for c in COLUMNS)
        lines.append(f"| {s} | {cells} |")
    means = " | ".join(
        f"{mean_std([v[i][c] for v in by_seed.values()])}" for c in COLUMNS for i in (0, 1)
    )
    lines.append(f"| mean (sample std) | {means} |")
    lines.append("")
    lines.append(
        f"Paired bf16 − fp32 over {len(complete)} seeds, mean (sample std), 95 % t interval:"
    )
    lines.append("")
    pairs = list(by_seed.values())
    # each pair's relative difference, against zero
    relative = [100 * (b["val loss"] - f["val loss"]) / abs(f["val loss"]) for f, b in pairs]
    zero = [0.0] * len(relative)
    lines.append(f"- val loss: {interval(relative, zero)} % of fp32's (negative: bf16 lower)")
    for c in COLUMNS[1:]:
        lines.append(
            f"- MAP {c}: {interval([b[c] for _, b in pairs], [f[c] for f, _ in pairs])} points"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "cifar"))
