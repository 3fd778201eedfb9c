"""The paired table of results/precision-parity, from the run folders' own files
(``summary.json``, ``probes.json``).

    python scripts/parity_table.py RUNS_FOLDER [PREFIX] > table.md
    python scripts/parity_table.py --a STEM --b STEM [--labels A B] [--seeds S ...] > table.md

A run stem is a run folder's path without its seed suffix: ``STEM`` is seed 0,
``STEM-seedS`` seed S. The first form compares ``RUNS_FOLDER/PREFIX-32-true`` (fp32) with
``RUNS_FOLDER/PREFIX-auto`` (bf16); the second any two stems, such as a control that shares
the baseline's arithmetic. One row per seed both have (of ``--seeds``, where given), with each
run's best validation loss and MAP probe accuracies (split protocol), then each column's mean
and sample standard deviation, and the paired B − A differences with a 95 % t interval and
the equivalence test the parity target asks for (TOST at 5 %: shown when the 90 % t interval
lies inside the target's margin: 0.5 % of the validation loss, 0.3 points of a probe).
After 15 epochs a seed's two runs share little but their start: changing only the CPU thread
count (the order of floating-point sums) moved fp32's CIFAR-10 probes by half a point, so the
interval, not the mean or the signs of a few pairs, says what the seeds can tell.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from pathlib import Path

from repvae.evaluate.paired import equivalence_over_seeds, paired_over_seeds

COLUMNS = ("val loss", "linear", "mlp")
MARGINS = {"val loss": 0.5, "linear": 0.3, "mlp": 0.3}  # issue 26's parity targets


def scores(run: Path) -> dict[str, float]:
    summary = json.loads((run / "summary.json").read_text())
    probes = {
        r["probe"]: 100 * r["accuracy"]
        for r in json.loads((run / "probes.json").read_text())
        if r["kind"] == "map" and r["protocol"] == "split"
    }
    return {"val loss": summary["best_val_loss"], "linear": probes["linear"], "mlp": probes["mlp"]}


def probed_runs(stem: Path) -> dict[int, Path]:
    """``seed -> run folder`` of the probed runs of ``stem``."""
    pattern = re.compile(rf"{re.escape(stem.name)}(?:-seed(\d+))?$")
    found = ((pattern.match(p.name), p) for p in stem.parent.iterdir())
    return {int(m.group(1) or 0): p for m, p in found if m and (p / "probes.json").exists()}


def mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ({statistics.stdev(values):.2f})"


def interval(a: list[float], b: list[float], margin: float) -> str:
    """A − B paired by seed: mean, sample std, the 95 % t interval and the TOST verdict."""
    tost = equivalence_over_seeds(a, b, margin)
    (low, high), (tost_low, tost_high) = paired_over_seeds(a, b)["interval"], tost["interval"]
    verdict = "shown" if tost["equivalent"] else "not shown"
    return (
        f"{tost['difference']:+.2f} ({tost['std']:.2f}), 95 % [{low:+.2f}, {high:+.2f}]; "
        f"within ±{margin}: {verdict} (TOST p = {tost['p_value']:.3f}, "
        f"90 % [{tost_low:+.2f}, {tost_high:+.2f}])"
    )


def table(
    a: Path, b: Path, labels: tuple[str, str] = ("fp32", "bf16"), only: list[int] | None = None
) -> str:
    """The table of the seeds both stems have probed (of ``only``, where given)."""
    runs_a, runs_b = probed_runs(a), probed_runs(b)
    both = sorted(runs_a.keys() & runs_b.keys() & set(runs_a if only is None else only))
    if len(both) < 2:
        raise SystemExit(f"{a} and {b}: fewer than two seeds with both runs probed")
    by_seed = {s: (scores(runs_a[s]), scores(runs_b[s])) for s in both}
    first, second = labels
    header = "| seed | " + " | ".join(f"{first} {c} | {second} {c}" for c in COLUMNS) + " |"
    lines = [header, "|" + "---|" * (1 + 2 * len(COLUMNS))]
    for s, (x, y) in by_seed.items():
        cells = " | ".join(f"{x[c]:.2f} | {y[c]:.2f}" for c in COLUMNS)
        lines.append(f"| {s} | {cells} |")
    means = " | ".join(
        f"{mean_std([v[i][c] for v in by_seed.values()])}" for c in COLUMNS for i in (0, 1)
    )
    lines.append(f"| mean (sample std) | {means} |")
    lines.append("")
    lines.append(
        f"Paired {second} − {first} over {len(both)} seeds: mean (sample std), 95 % t interval;"
        " equivalence within the target's margin by two one-sided t tests at 5 %:"
    )
    lines.append("")
    pairs = list(by_seed.values())
    # each pair's relative difference, against zero
    relative = [100 * (y["val loss"] - x["val loss"]) / abs(x["val loss"]) for x, y in pairs]
    zero = [0.0] * len(relative)
    lines.append(
        f"- val loss, % of the {first} run's (negative: {second} lower): "
        f"{interval(relative, zero, MARGINS['val loss'])}"
    )
    for c in COLUMNS[1:]:
        lines.append(
            f"- MAP {c}, points: "
            f"{interval([y[c] for _, y in pairs], [x[c] for x, _ in pairs], MARGINS[c])}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="?", type=Path, help="folder of PREFIX-32-true/-auto runs")
    parser.add_argument("prefix", nargs="?", default="cifar")
    parser.add_argument("--a", type=Path, help="the baseline's run stem")
    parser.add_argument("--b", type=Path, help="the compared run stem")
    parser.add_argument("--labels", nargs=2, default=("fp32", "bf16"), metavar=("A", "B"))
    parser.add_argument("--seeds", nargs="+", type=int, help="only these seeds")
    args = parser.parse_args()
    if (args.runs is None) == (args.a is None or args.b is None):
        parser.error("give either RUNS_FOLDER [PREFIX] or both --a and --b")
    if args.runs is not None:
        a, b = (args.runs / f"{args.prefix}-{p}" for p in ("32-true", "auto"))
    else:
        a, b = args.a, args.b
    print(table(a, b, tuple(args.labels), args.seeds))


if __name__ == "__main__":
    main()
