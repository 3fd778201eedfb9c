"""Per-layer KL of hierarchical runs over training, in one figure (results/families-mnist16).

    python scripts/hierarchical_kl.py OUT.png LABEL=RUN [LABEL=RUN ...]

Reads each run's ``logs/metrics.csv`` (the ``train/kl_layerN`` terms, logged every 50 steps,
before free bits) and draws each layer's KL in nats against the training step: one colour per
layer, one line style per run, so a collapsing upper layer shows as its line falling to 0.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import matplotlib

from repvae.plots.figures import new_figure, save_figure

STYLES = ("-", "--", ":", "-.")


def layer_series(run: Path) -> dict[int, tuple[list[int], list[float]]]:
    """Layer -> (steps, KL) from a run's training log."""
    series: dict[int, tuple[list[int], list[float]]] = {}
    with open(run / "logs" / "metrics.csv", newline="") as f:
        for record in csv.DictReader(f):
            for column, value in record.items():
                if column.startswith("train/kl_layer") and value:
                    steps, values = series.setdefault(
                        int(column.removeprefix("train/kl_layer")), ([], [])
                    )
                    steps.append(int(float(record["step"])))
                    values.append(float(value))
    return series


def main() -> None:
    out, pairs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    colours = matplotlib.colormaps["tab10"]
    fig = new_figure(6.4, 3.8)
    ax = fig.add_subplot()
    for (label, run), style in zip(pairs, STYLES, strict=False):
        for layer, (steps, values) in sorted(layer_series(Path(run)).items()):
            ax.plot(steps, values, style, color=colours(layer - 1), label=f"{label}: layer {layer}")
    ax.set_xlabel("training step")
    ax.set_ylabel("KL of the layer (nats, batch mean)")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_title("Ladder VAE on MNIST: KL per stochastic layer (1 = bottom)")
    ax.legend(fontsize=8)
    print(save_figure(fig, out))


if __name__ == "__main__":
    main()
