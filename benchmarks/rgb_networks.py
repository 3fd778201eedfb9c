"""Training speed and memory of the RGB networks at 32x32 and 128x128: ``resnet`` (the former
``auto`` for RGB) against ``convnet`` (``auto`` now), fp32 against bf16 autocast, in one run.

    python benchmarks/rgb_networks.py [--sizes 32 128] [--batch 128] [--seconds 6]

Each cell is a training step of a VAE (Gaussian likelihood, latent 64, fused Adam, channels-last
uint8 input, as ``repvae train`` runs it) on random images, one process per cell so that the
peak resident memory (``ru_maxrss`` of that process) is the cell's own; images/s is the median
of three windows of ``--seconds`` after warm-up steps. GFLOP per image and step are counted by
torch's FlopCounterMode. A cell that would take more than ``--max-seconds`` per step is skipped.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from repvae.config import ModelConfig
from repvae.models import VAE
from repvae.report.tables import markdown_table
from repvae.training import make_adam


def cell(architecture: str, size: int, batch: int, bf16: bool, seconds: float) -> dict:
    torch.manual_seed(0)
    model = VAE(
        ModelConfig(latent_dim=64, architecture=architecture, likelihood="gaussian"),
        (3, size, size),
    ).to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimiser = make_adam(model.parameters(), 1e-3)
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8).contiguous(
        memory_format=torch.channels_last
    )

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(x).loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    started = time.perf_counter()
    step()
    first = time.perf_counter() - started
    rates = []
    for _ in range(3):
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < max(seconds, first):
            step()
            done += batch
        rates.append(done / (time.perf_counter() - started))
    return {
        "images/s": statistics.median(rates),
        "gflop": counter.get_total_flops() / batch / 1e9,
        "peak GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[32, 128])
    parser.add_argument("--architectures", nargs="+", default=["resnet", "convnet"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--cell", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cell:
        architecture, size, bf16 = args.cell.split(",")
        print(json.dumps(cell(architecture, int(size), args.batch, bf16 == "1", args.seconds)))
        return
    rows = []
    for size in args.sizes:
        for architecture in args.architectures:
            for bf16 in (False, True):
                command = [
                    sys.executable,
                    __file__,
                    "--cell",
                    f"{architecture},{size},{int(bf16)}",
                    "--batch",
                    str(args.batch),
                    "--seconds",
                    str(args.seconds),
                ]
                try:
                    done = subprocess.run(
                        command,
                        capture_output=True,
                        text=True,
                        check=True,
                        timeout=args.max_seconds * 6,
                    )
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                except subprocess.TimeoutExpired:
                    result = {
                        "images/s": float("nan"),
                        "gflop": float("nan"),
                        "peak GB": float("nan"),
                    }
                rows.append(
                    {
                        "size": f"{size}x{size}",
                        "network": architecture,
                        "precision": "bf16-mixed" if bf16 else "fp32",
                        "images/s": round(result["images/s"], 1),
                        "GFLOP / image / step": round(result["gflop"], 2),
                        "peak RSS GB": round(result["peak GB"], 2),
                    }
                )
                print(rows[-1], flush=True)
    print(f"batch {args.batch}, {torch.get_num_threads()} threads")
    print(markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
