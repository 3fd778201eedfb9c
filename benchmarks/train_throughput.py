"""Training throughput of the MNIST conv VAE (latent 32): the library's loop vs plain PyTorch.

    python benchmarks/train_throughput.py [--data-root ../shared/datasets] [--seconds 6]

Prints images/s of a training step at batch 32, 128 and 512 for
- ``reference``: a straightforward loop, ``for x, _ in DataLoader(per-sample Dataset): ...``
  with default (contiguous) memory format and default Adam;
- ``repvae``: the library's Lightning loop (in-memory TensorBatches, channels-last, fused Adam,
  per-step logging to CSV, as ``repvae train`` runs it, validation and checkpoints off);
plus an ablation at batch 128 (each speed choice alone on the plain loop) and the achieved
GFLOP/s (FLOPs of one training step counted by torch's FlopCounterMode) beside a large fp32
matmul measured in the same run. Timings exclude warm-up steps; each figure is the median of
``--repeats`` runs, the reference and the library alternating so that drift hits both.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from repvae.config import ModelConfig, TrainConfig
from repvae.data.batches import TensorBatches
from repvae.models import VAE
from repvae.report.tables import markdown_table
from repvae.training import LitVAE, make_adam, quiet_lightning

WARMUP = 5


class PerSampleImages(Dataset):
    """What a torchvision-style dataset does: one float tensor per __getitem__."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i].float() / 255.0, int(self.labels[i])


def load_images(data_root: str | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    if data_root:
        from repvae.data import load_dataset

        data = load_dataset("mnist", data_root, download=False)
        return data.train.images, data.train.labels, "MNIST train split"
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (20_000, 1, 28, 28), dtype=torch.uint8, generator=g)
    return (
        images,
        torch.randint(0, 10, (20_000,), generator=g),
        "random uint8 28x28 (no --data-root)",
    )


def new_model(channels_last: bool) -> VAE:
    torch.manual_seed(0)
    model = VAE(ModelConfig(latent_dim=32, architecture="conv"), (1, 28, 28))
    if not channels_last:
        return model
    # Module.to takes memory_format (documented), but torch's stubs do not list it
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def plain_loop(
    images,
    labels,
    batch_size: int,
    seconds: float,
    *,
    batcher: bool,
    channels_last: bool,
    fused: bool,
) -> float:
    """images/s of a hand-written loop with the chosen speed options."""
    model = new_model(channels_last)
    opt = (
        make_adam(model.parameters(), 1e-3)
        if fused
        else torch.optim.Adam(model.parameters(), lr=1e-3)
    )
    loader: TensorBatches | DataLoader
    if batcher:
        loader = TensorBatches(images, labels, batch_size, shuffle=True, drop_last=True)
    else:
        loader = DataLoader(
            PerSampleImages(images, labels), batch_size=batch_size, shuffle=True, drop_last=True
        )
    steps, seen, started = 0, 0, 0.0  # started: set once the warm-up steps are done
    while True:
        for x, _ in loader:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = model.loss(x).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            if steps == WARMUP:
                started = time.perf_counter()
            elif steps > WARMUP:
                seen += len(x)
                if time.perf_counter() - started > seconds:
                    return seen / (time.perf_counter() - started)


class _Clock(L.Callback):
    def __init__(self) -> None:
        self.started, self.seen, self.stopped = 0.0, 0, 0.0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == WARMUP:
            self.started = time.perf_counter()
        elif trainer.global_step > WARMUP:
            self.seen += len(batch[0])
            self.stopped = time.perf_counter()


def library_loop(images, labels, batch_size: int, seconds: float, estimate: float) -> float:
    """images/s of the library's Lightning loop, sized to run about ``seconds``."""
    steps = WARMUP + max(10, int(seconds * estimate / batch_size))
    cfg = TrainConfig(batch_size=batch_size, progress=False)
    batches = TensorBatches(images, labels, batch_size, shuffle=True)
    module = LitVAE(new_model(channels_last=True), cfg, batches)
    clock = _Clock()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(
            accelerator="cpu",
            max_steps=steps,
            limit_val_batches=0,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=[clock],
            logger=L.pytorch.loggers.CSVLogger(tmp),
            log_every_n_steps=50,
        )
        trainer.fit(module, batches)
    return clock.seen / (clock.stopped - clock.started)


def matmul_gflops(n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - started) / 1e9


def step_flops_per_image(batch_size: int = 128) -> float:
    model = new_model(channels_last=False)
    x = torch.randint(0, 256, (batch_size, 1, 28, 28), dtype=torch.uint8)
    with FlopCounterMode(display=False) as counter:
        model.loss(x).loss.backward()
    return counter.get_total_flops() / batch_size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    quiet_lightning()
    warnings.filterwarnings("ignore", message=".*(val_dataloader|LeafSpec).*")
    images, labels, source = load_images(args.data_root)
    flops = step_flops_per_image()
    peak = matmul_gflops()
    print(f"data: {source}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(
        f"one training step: {flops / 1e6:.1f} MFLOP per image; "
        f"fp32 2048^3 matmul: {peak:.1f} GFLOP/s\n"
    )

    rows = []
    for bs in (32, 128, 512):
        refs, libs = [], []
        for _ in range(args.repeats):
            refs.append(
                plain_loop(
                    images,
                    labels,
                    bs,
                    args.seconds,
                    batcher=False,
                    channels_last=False,
                    fused=False,
                )
            )
            libs.append(library_loop(images, labels, bs, args.seconds, estimate=refs[-1]))
        ref, lib = statistics.median(refs), statistics.median(libs)
        rows.append(
            {
                "batch": bs,
                "reference img/s": round(ref),
                "repvae img/s": round(lib),
                "speed-up": f"{lib / ref:.2f}x",
                "repvae GFLOP/s": round(lib * flops / 1e9, 1),
                "% of matmul": f"{100 * lib * flops / 1e9 / peak:.0f}%",
            }
        )
    print(markdown_table(rows, list(rows[0])))

    print("\nAblation at batch 128 (plain loop, one option at a time):")
    options = [
        (
            "DataLoader, contiguous, default Adam",
            dict(batcher=False, channels_last=False, fused=False),
        ),
        ("+ in-memory TensorBatches", dict(batcher=True, channels_last=False, fused=False)),
        ("+ channels-last", dict(batcher=False, channels_last=True, fused=False)),
        ("+ fused Adam", dict(batcher=False, channels_last=False, fused=True)),
        ("all three", dict(batcher=True, channels_last=True, fused=True)),
    ]
    ablation = [
        {
            "loop": name,
            "img/s": round(
                statistics.median(
                    plain_loop(images, labels, 128, args.seconds, **kw) for _ in range(args.repeats)
                )
            ),
        }
        for name, kw in options
    ]
    print(markdown_table(ablation, ["loop", "img/s"]))


if __name__ == "__main__":
    main()
