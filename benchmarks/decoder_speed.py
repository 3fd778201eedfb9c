"""Speed of PixelVAE decoders on this machine: training images/s and ancestral sampling time.

    python benchmarks/decoder_speed.py [--threads 2] [--seconds 8] [--widths 16 128]
    python benchmarks/decoder_speed.py --shape 3 32 32 --architecture conv   # CIFAR-10-shaped

For each decoder of the pixelvae study (by default the paper's MNIST networks: MLP 784-500-500
encoder with BatchNorm, z = 32, decoder z-500-500 -> 16x28x28 features, 10-component logistic
mixture; ``--shape``/``--architecture`` for RGB images and the conv networks) at each head width
(16: the study's quick budget, 128: the paper's), prints
- training images/s of one Adam step at batch 100 (forward, backward, update; uint8 input),
- FLOPs of one training step per image (torch's FlopCounterMode),
- seconds to draw 16 samples (H*W ancestral steps, features cached, windowed head),
beside the Bernoulli VAE with the same encoder/decoder MLPs (no head) for scale. Timings are the
median of ``--repeats`` windows of ``--seconds`` each, after warm-up steps.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from repvae.config import PRESETS, ModelConfig, apply_overrides, from_dict
from repvae.models import VAE
from repvae.report.tables import markdown_table

BATCH = 100


def config(preset: str | None, width: int, architecture: str) -> ModelConfig:
    base = from_dict({"model": {"latent_dim": 32, "architecture": architecture, "hidden": 500}})
    if preset is None:
        return base.model
    overrides: dict[str, Any] = {
        **PRESETS.get(preset).overrides(32),
        "model.head.channels": width,
        "model.head.layers": 6 if width <= 16 else 15,
    }
    return apply_overrides(base, overrides).model


def train_rate(model: VAE, x: torch.Tensor, seconds: float, repeats: int) -> float:
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def step() -> None:
        loss = model.loss(x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    rates = []
    for _ in range(repeats):
        steps, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            step()
            steps += 1
        rates.append(steps * BATCH / (time.perf_counter() - started))
    return statistics.median(rates)


def flops_per_image(model: VAE, x: torch.Tensor) -> float:
    with FlopCounterMode(display=False) as counter:
        model.loss(x).loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 128])
    parser.add_argument("--shape", type=int, nargs=3, default=[1, 28, 28], metavar=("C", "H", "W"))
    parser.add_argument("--architecture", default="mlp-bn", help="model.architecture")
    args = parser.parse_args()
    shape = tuple(args.shape)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randint(0, 256, (BATCH, *shape), dtype=torch.uint8)
    rows = []
    cases: list[tuple[str, str | None, int]] = [("bernoulli VAE (no head)", None, 0)]
    cases += [
        (p, p, w) for w in args.widths for p in ("pixelvae-h0", "lpvae-h1", "lpvae-h2", "fpvae")
    ]
    for name, preset, width in cases:
        model = VAE(config(preset, width, args.architecture), shape)
        rate = train_rate(model.train(), x, args.seconds, args.repeats)
        gflops = flops_per_image(model, x) / 1e9
        model.eval()
        started = time.perf_counter()
        model.sample(16, torch.Generator().manual_seed(0))
        sample_s = time.perf_counter() - started
        rows.append(
            {
                "decoder": name,
                "head width": f"{width}+{width}" if width else "-",
                "train images/s": f"{rate:.0f}",
                "GFLOP/image/step": f"{gflops:.3f}",
                "16 samples (s)": f"{sample_s:.2f}",
            }
        )
        print(rows[-1], flush=True)
    print(
        f"\n{torch.get_num_threads()} threads, batch {BATCH}, {args.architecture} networks, "
        f"images {'x'.join(map(str, shape))}, torch {torch.__version__}\n"
    )
    print(markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
