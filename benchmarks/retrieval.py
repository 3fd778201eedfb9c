"""Retrieval with flexible embeddings: MNIST test images as queries against the training images
as the store, flat at each prefix size m and through funnels, for a Matryoshka model and a plain
model cut to the same prefixes. Prints the tables, writes them (README.md, results.json) and two
figures to ``--out``.

    python benchmarks/retrieval.py --data-root ../shared/datasets \\
        --runs Matryoshka-InfoVAE=runs/retrieval/minfovae InfoVAE=runs/retrieval/infovae \\
        --out results/retrieval-mnist

Protocol: the store holds the MAP codes of the training split (the official training set minus
the seeded 10 % validation hold-out), the queries are the 10,000 official test images; cosine
similarity of the prefixes (truncated, then L2-normalised). Quality: mAP@100 (relevant = the
query's class) and 1-NN accuracy. Cost: multiply-adds per query, and the wall time of all queries
searched as one batch by FAISS's exact flat index on one thread (plus the re-ranking, for a
funnel), per query; memory: the flat index's size at m (N x m float32).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import faiss
import matplotlib
import numpy as np

from repvae.evaluate.retrieval import retrieval_scores
from repvae.export import TorchEncoder
from repvae.plots.figures import STYLE, new_figure, save_figure
from repvae.report.tables import markdown_table
from repvae.run import load
from repvae.store import EmbeddingStore, flat_search, funnel_search
from repvae.store.indexing import index_split

DIMS = [2, 8, 16, 32, 64, 128]
K = 100
FUNNELS: list[tuple[list[int], list[int]]] = [
    ([8, 128], [400]),
    ([16, 128], [400]),
    ([8, 32, 128], [1000, 400]),
]


def timed(search) -> tuple[Any, float]:
    started = time.perf_counter()
    found = search()
    return found, time.perf_counter() - started


def latency(search, queries: np.ndarray, n: int = 500) -> float:
    """Mean seconds of one query searched alone (as a service answers one request)."""
    started = time.perf_counter()
    for i in range(n):
        search(queries[i : i + 1])
    return (time.perf_counter() - started) / n


def evaluate_run(name: str, run_dir: Path, data_root: str | None, work: Path) -> list[dict]:
    run = load(run_dir, device="cpu")
    config = run.config.data
    if data_root:
        config.root = data_root
    data = config.load()
    store_dir = work / name
    if (store_dir / "manifest.json").exists():
        store = EmbeddingStore.open(store_dir)
    else:
        store = EmbeddingStore.create(
            store_dir,
            run=str(run_dir.resolve()),
            dim=run.model.latent_dim,
            shape=run.model.shape,
            prefixes=run.model.prefixes,
            index_dims=DIMS,
            class_names=list(data.class_names),
        )
    encoder = TorchEncoder(run.model)
    index_split(store, encoder, data, "train", keep_images=False, progress=False)
    store.build_indexes()
    queries = encoder(data.test.images.numpy())
    labels = data.test.labels.numpy()
    rows = []
    for m in DIMS:
        found, seconds = timed(lambda m=m: flat_search(store, queries, m, K))
        single = latency(lambda q, m=m: flat_search(store, q, m, K), queries)
        rows.append(_row(name, f"flat m={m}", m, found, seconds, single, labels, store))
    for dims, shortlist in FUNNELS:
        store.index(dims[0])
        found, seconds = timed(lambda d=dims, s=shortlist: funnel_search(store, queries, d, s, K))
        single = latency(lambda q, d=dims, s=shortlist: funnel_search(store, q, d, s, K), queries)
        label = f"funnel {'→'.join(map(str, dims))} ({'/'.join(map(str, shortlist))})"
        rows.append(_row(name, label, dims[-1], found, seconds, single, labels, store, dims[0]))
    return rows


def _row(
    model: str,
    search: str,
    dim: int,
    found,
    seconds: float,
    single: float,
    labels: np.ndarray,
    store: EmbeddingStore,
    first: int | None = None,
) -> dict:
    scores = retrieval_scores(store.labels[found.ids], labels, store.labels)
    full_cost = len(store) * store.manifest.dim
    return {
        "model": model,
        "search": search,
        "m": dim,
        "mAP@100 %": round(100 * scores[f"map@{K}"], 2),
        "1-NN %": round(100 * scores["nn1_accuracy"], 2),
        "multiply-adds / query": found.cost,
        "cost vs flat m=128": round(found.cost / full_cost, 4),
        "ms / query (batch)": round(1000 * seconds / len(labels), 4),
        "ms / query (alone)": round(1000 * single, 4),
        "index MB": round(len(store) * (first or dim) * 4 / 2**20, 2),
    }


def figures(rows: list[dict], out: Path) -> list[Path]:
    models = list(dict.fromkeys(r["model"] for r in rows))
    flat = [r for r in rows if r["search"].startswith("flat")]
    with matplotlib.rc_context(STYLE):
        fig = new_figure(10.5, 3.8)
        axes = fig.subplots(1, 2)
        for ax, key in zip(axes, ("1-NN %", "mAP@100 %"), strict=True):
            for model in models:
                points = [r for r in flat if r["model"] == model]
                ax.plot([r["m"] for r in points], [r[key] for r in points], "o-", label=model)
                funnels = [
                    r for r in rows if r["model"] == model and r["search"].startswith("funnel")
                ]
                ax.scatter(
                    [r["m"] for r in funnels],
                    [r[key] for r in funnels],
                    marker="x",
                    s=40,
                    label=f"{model}, funnels",
                )
            ax.set(
                xscale="log",
                xlabel="prefix size m",
                ylabel=key,
                title=f"{key} (MNIST test → train)",
            )
            ax.set_xticks(DIMS, [str(m) for m in DIMS])
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        quality = save_figure(fig, out / "retrieval_quality.png")
        fig = new_figure(10.5, 3.6)
        axes = fig.subplots(1, 2)
        for model in models:
            points = [r for r in flat if r["model"] == model]
            axes[0].plot(
                [r["m"] for r in points],
                [r["ms / query (alone)"] for r in points],
                "o-",
                label=model,
            )
        axes[1].plot(DIMS, [flat[0]["index MB"] / flat[0]["m"] * m for m in DIMS], "o-")
        axes[0].set(
            xscale="log",
            xlabel="prefix size m",
            ylabel="ms per query (one at a time, 1 thread)",
            title="flat search time",
        )
        axes[1].set(xscale="log", xlabel="prefix size m", ylabel="MB", title="flat index memory")
        for ax in axes:
            ax.set_xticks(DIMS, [str(m) for m in DIMS])
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        cost = save_figure(fig, out / "retrieval_cost.png")
    return [quality, cost]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, metavar="NAME=RUN")
    parser.add_argument("--data-root")
    parser.add_argument("--out", type=Path, default=Path("results/retrieval-mnist"))
    parser.add_argument("--work", type=Path, default=Path("runs/retrieval-stores"))
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in args.runs:
        name, _, run_dir = spec.partition("=")
        rows += evaluate_run(name, Path(run_dir), args.data_root, args.work)
    table = markdown_table(rows, list(rows[0]))
    print(table)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    for path in figures(rows, args.out):
        print(path)


if __name__ == "__main__":
    main()
