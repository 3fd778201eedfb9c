"""The levers of a training step, re-measured with bf16 in place (issue 26): channels-last,
``torch.compile`` (inductor on CPU), the batch size and oneDNN's bf16 math on fp32 tensors
(``torch.backends.mkldnn.{conv,matmul}.fp32_precision = "bf16"``: no casts, the kernels round
inside), each against the plain fp32 step, in one run, on the MNIST conv VAE at latent 16 (the
networks of ``benchmarks/peers.py``).

    python benchmarks/step_levers.py [--steps 40] [--repeats 3]

Each cell: images/s of forward + backward + fused-Adam step on random uint8 images, the best of
``--repeats`` windows of ``--steps`` steps after warm-up (best, not median: other processes only
ever slow a window down), and the seconds the first three steps took (compilation, for
``torch.compile``). The configurations alternate within each repeat so that drift hits all.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from repvae.config import from_dict
from repvae.models import VAE
from repvae.report.tables import markdown_table
from repvae.training import make_adam


@dataclass(frozen=True)
class Lever:
    name: str
    bf16: bool = False
    channels_last: bool = False
    compiled: bool = False
    batch: int = 128
    onednn_bf16_math: bool = False


LEVERS = [
    Lever("fp32 (the plain loop's step)"),
    Lever("fp32, channels-last", channels_last=True),
    Lever("bf16 autocast", bf16=True),
    Lever("bf16, channels-last (repvae train's default step)", bf16=True, channels_last=True),
    Lever("bf16, batch 256", bf16=True, batch=256),
    Lever("bf16, channels-last, batch 256", bf16=True, channels_last=True, batch=256),
    Lever("fp32, torch.compile", compiled=True),
    Lever("bf16, torch.compile", bf16=True, compiled=True),
    Lever("fp32 tensors, oneDNN bf16 math", onednn_bf16_math=True),
    Lever(
        "fp32 tensors, oneDNN bf16 math, channels-last", onednn_bf16_math=True, channels_last=True
    ),
]


@contextmanager
def onednn_fp32_math(precision: str) -> Iterator[None]:
    """oneDNN's math for fp32 convolutions and matmuls ("bf16" or "none", the default), set
    for one step only: the setting is global and the levers take turns."""
    mkldnn = torch.backends.mkldnn
    # attributes torch sets when it loads the backend; its type stubs do not declare them
    conv, matmul = mkldnn.conv, mkldnn.matmul  # type: ignore[attr-defined]
    saved = conv.fp32_precision, matmul.fp32_precision
    conv.fp32_precision = matmul.fp32_precision = precision
    try:
        yield
    finally:
        conv.fp32_precision, matmul.fp32_precision = saved


class Step:
    """One lever's model, optimiser and batch, ready to time."""

    def __init__(self, lever: Lever) -> None:
        torch.manual_seed(0)
        config = from_dict({"model": {"latent_dim": 16, "architecture": "conv"}})
        model = VAE(config.model, (1, 28, 28))
        fmt = torch.channels_last if lever.channels_last else torch.contiguous_format
        self.model = model.to(memory_format=fmt)  # type: ignore[call-overload]
        self.optimiser = make_adam(self.model.parameters(), 1e-3)
        x = torch.randint(0, 256, (lever.batch, 1, 28, 28), dtype=torch.uint8)
        self.x = x.contiguous(memory_format=fmt)
        self.lever = lever
        loss = self._loss
        self.loss = torch.compile(loss) if lever.compiled else loss
        started = time.perf_counter()
        for _ in range(3):
            self()
        self.warmup = time.perf_counter() - started

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.loss(x).loss

    def __call__(self) -> None:
        with onednn_fp32_math("bf16" if self.lever.onednn_bf16_math else "none"):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.lever.bf16):
                loss = self.loss(self.x)
            self.optimiser.zero_grad(set_to_none=True)
            loss.backward()
            self.optimiser.step()

    def rate(self, steps: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            self()
        return self.lever.batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    steps = [Step(lever) for lever in LEVERS]
    best = [0.0] * len(steps)
    for _ in range(args.repeats):
        for i, step in enumerate(steps):
            best[i] = max(best[i], step.rate(args.steps))
    base = best[0]
    rows = [
        {
            "step": s.lever.name,
            "images/s": round(b),
            "vs fp32": round(b / base, 2),
            "first 3 steps s": round(s.warmup, 1),
        }
        for s, b in zip(steps, best, strict=True)
    ]
    threads = torch.get_num_threads()
    print(f"MNIST conv VAE, latent 16, {threads} threads, torch {torch.__version__}")
    print(markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
