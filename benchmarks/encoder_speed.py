"""Encoder throughput: torch eager against ONNX Runtime, the same exported MAP head, side by side
in one run, at batch 1 (a service answering one image) and batch 256 (indexing a dataset).

    python benchmarks/encoder_speed.py RUN [--threads 1 2] [--seconds 5]

Images/s is the median of ``--repeats`` windows of ``--seconds`` each after warm-up; both
encoders get the same uint8 images and the same number of threads. The ONNX graph is exported
to RUN/encoder.onnx first if missing (``repvae export``); the embeddings of both are compared.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from repvae.export import ONNX_FILE, OnnxEncoder, TorchEncoder, export_onnx
from repvae.report.tables import markdown_table
from repvae.run import load


def rate(
    encode: Callable[[np.ndarray], np.ndarray], images: np.ndarray, seconds: float, repeats: int
) -> float:
    for _ in range(3):
        encode(images)
    windows = []
    for _ in range(repeats):
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            encode(images)
            done += len(images)
        windows.append(done / (time.perf_counter() - started))
    return statistics.median(windows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 256])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    run = load(args.run, device="cpu")
    onnx_path = args.run / ONNX_FILE
    if not onnx_path.exists():
        export_onnx(run.model, onnx_path)
    data = run.config.data.load().test.images.numpy()
    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        eager, onnx = TorchEncoder(run.model), OnnxEncoder(onnx_path, threads=threads)
        gap = float(np.abs(eager(data[:256]) - onnx(data[:256])).max())
        for batch in args.batches:
            images = data[:batch]
            torch_rate = rate(eager, images, args.seconds, args.repeats)
            onnx_rate = rate(onnx, images, args.seconds, args.repeats)
            rows.append(
                {
                    "threads": threads,
                    "batch": batch,
                    "torch img/s": round(torch_rate),
                    "onnxruntime img/s": round(onnx_rate),
                    "onnx / torch": f"{onnx_rate / torch_rate:.2f}",
                    "max |difference|": f"{gap:.1e}",
                }
            )
    print(
        f"encoder of {args.run} ({run.model.family}, {run.config.model.architecture}, latent "
        f"{run.model.latent_dim}); torch {torch.__version__}"
    )
    print(markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
