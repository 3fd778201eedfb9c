"""Wall time of ``repvae evaluate`` per metric at its default settings.

    python benchmarks/evaluate_time.py RUN [--data-root ../shared/datasets] [--only ...]

Runs the full evaluation suite on a trained run (e.g. an MNIST VAE from ``repvae train``) and
prints one row per metric: seconds (as recorded in ``RUN/evaluation/<metric>.json``) and what the
metric computed. Disentanglement is skipped on datasets without generative factors (MNIST); time
it on a ``shapes`` run. The FID row includes training the domain classifier the first time a
dataset is seen (it is cached afterwards): run twice to see both costs.
"""

from __future__ import annotations

import argparse
import time

import torch

from repvae.evaluate.suite import METRICS, evaluate
from repvae.report.tables import markdown_table
from repvae.run import load


def describe(metric: str, result: dict) -> str:
    if isinstance(result.get("skipped"), str):  # the whole metric
        return f"skipped: {result['skipped']}"
    if metric == "fid":
        return f"domain FID on {result['n']} samples"
    if metric == "probes":
        return f"{len(result['results'])} probe x representation results"
    if metric == "likelihood":
        return f"ELBO + IWAE K={result['iwae_samples']} on {result['n_images']} images"
    if metric == "information":
        return f"{result['n']} test images"
    if metric == "label_efficiency":
        return f"{len(result['sizes'])} label budgets"
    if "figures" in result:
        made = ", ".join(result["figures"].values())
        return f"{made} (skipped: {'; '.join(result['skipped'])})" if "skipped" in result else made
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--data-root")
    parser.add_argument("--only", nargs="+", choices=METRICS, default=list(METRICS))
    args = parser.parse_args()
    run = load(args.run)
    if args.data_root:
        run.config.data.root = args.data_root
    started = time.perf_counter()
    results = evaluate(run, only=args.only, log=print)
    total = time.perf_counter() - started
    rows = [
        {"metric": m, "seconds": f"{r['seconds']:.1f}", "what": describe(m, r)}
        for m, r in results.items()
    ]
    rows.append({"metric": "total (incl. data loading)", "seconds": f"{total:.1f}", "what": ""})
    print(f"\n{run.dir}: {run.config.data.name}, {torch.get_num_threads()} threads\n")
    print(markdown_table(rows, ["metric", "seconds", "what"]))


if __name__ == "__main__":
    main()
