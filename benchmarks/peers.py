"""repvae's training loop beside its peers, on the same networks, in one run: a plain PyTorch
loop, pythae's ``BaseTrainer`` (an optional benchmark dependency: ``pip install pythae``),
``repvae train`` in fp32 and ``repvae train`` with its defaults; plus this CPU's matmul speed in
fp32 and bf16, measured in the same run.

    python benchmarks/peers.py --data-root ../shared/datasets [--epochs 3] [--batch-size 128] \
        [--repeats 1] [--seeds 0]

All four train the `conv` VAE networks at latent 16 on MNIST's 54,000 training images (the
official set minus the seeded 10 % validation hold-out), Adam 1e-3, batch 128. The plain
loop and pythae skip validation; ``repvae train`` validates every epoch (its time includes it).
Each trained model is then measured the same way: its negative ELBO on the validation images
(nats, one posterior draw, seed 0) and MAP probes (linear SVM and MLP, split protocol: fit on the
54,000 training images, score on the 10,000 test images). With ``--repeats N`` every loop trains N
times, the loops taking turns, and the table keeps each loop's shortest training time (other
processes and the host only ever slow a run down; on this VM one loop's time varied by up to
1.6x between runs); every repeat starts from the same seed. With ``--seeds S ...`` every loop
trains once per seed (the same work, so the time column is still the shortest of all) and the
accuracy columns are means over the seeds, with each loop's difference from the plain loop
paired by seed (a 95 % t interval): one seed's probe accuracy moves by half a point.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from repvae.config import from_dict
from repvae.data import ImageData
from repvae.data.batches import TensorBatches
from repvae.evaluate.probes import linear_probe, mlp_probe
from repvae.models import VAE
from repvae.report.tables import markdown_table, paired_text
from repvae.represent import encode
from repvae.training import make_adam, quiet_lightning, resolve_precision, train

LATENT = 16


def matmul_gflops(dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        done += 1
    return 2 * n**3 * done / (time.perf_counter() - started) / 1e9


Trained = tuple[Any, float]  # a trained model and its training seconds
Loop = Callable[[int], Trained | None]  # trains from a seed; None: an optional peer is missing


def train_in_turns(
    seeds: list[int], repeats: int, loops: dict[str, Loop]
) -> dict[str, dict[int, Trained]]:
    """Each loop trained once per seed, all of it ``repeats`` times, the loops taking turns;
    per loop and seed the last model and the shortest time (missing peers left out)."""
    trained: dict[str, dict[int, Trained]] = {}
    for _ in range(repeats):
        for seed in seeds:
            for label, loop in loops.items():
                result = loop(seed)
                if result is not None:
                    runs = trained.setdefault(label, {})
                    seconds = min(result[1], runs[seed][1]) if seed in runs else result[1]
                    runs[seed] = (result[0], seconds)
    return trained


def shortest(runs: dict[int, Trained]) -> float:
    """The shortest training time over seeds: every seed does the same work."""
    return min(seconds for _, seconds in runs.values())


def repvae_train(config: Any, out: str, data: ImageData) -> Trained:
    """``repvae train`` into a fresh run folder under ``out`` (a new one for every repeat)."""
    run = train(config, Path(tempfile.mkdtemp(dir=out)) / "run", data=data)
    return run.model.cpu(), float(run.summary["train_seconds"])


def base_config(args: argparse.Namespace, precision: str, seed: int = 0):
    return from_dict(
        {
            "data": {"name": "mnist", "root": args.data_root},
            "model": {"latent_dim": LATENT, "architecture": "conv"},
            "train": {
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": 1e-3,
                "patience": args.epochs,
                "progress": False,
                "precision": precision,
                "seed": seed,
            },
        }
    )


def plain_loop(args: argparse.Namespace, data: ImageData, seed: int) -> tuple[VAE, float]:
    """The loop a user writes by hand: in-memory tensors, fused Adam, fp32, no validation."""
    torch.manual_seed(seed)
    model = VAE(base_config(args, "32-true").model, data.shape)
    optimiser = make_adam(model.parameters(), 1e-3)
    batches = TensorBatches(data.train.images, data.train.labels, args.batch_size, shuffle=True)
    started = time.perf_counter()
    for _ in range(args.epochs):
        for x, _ in batches:
            loss = model.loss(x).loss
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return model.eval(), time.perf_counter() - started


def pythae_loop(args: argparse.Namespace, data: ImageData, seed: int) -> tuple[VAE, float] | None:
    """pythae 0.1.2's BaseTrainer on the same encoder and decoder networks (pythae's VAE has a
    log-variance head where ours has a softplus std, and a sigmoid decoder for its BCE)."""
    if importlib.util.find_spec("pythae") is None:
        return None
    from pythae.data.datasets import BaseDataset  # optional benchmark dependency
    from pythae.models import VAE as PythaeVAE
    from pythae.models import VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    torch.manual_seed(seed)
    ours = VAE(base_config(args, "32-true").model, data.shape)

    class Encoder(BaseEncoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = ours.encoder

        def forward(self, x):
            mean, log_var = self.net(x).chunk(2, dim=1)
            return ModelOutput(embedding=mean, log_covariance=log_var)

    class Decoder(BaseDecoder):
        def __init__(self) -> None:
            super().__init__()
            self.net = ours.decoders[0]

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    config = VAEConfig(input_dim=data.shape, latent_dim=LATENT, reconstruction_loss="bce")
    model = PythaeVAE(config, encoder=Encoder(), decoder=Decoder())
    with tempfile.TemporaryDirectory() as out:
        trainer = BaseTrainer(
            model,
            train_dataset=BaseDataset(data.train.images.float().div(255), data.train.labels),
            training_config=BaseTrainerConfig(
                output_dir=out,
                num_epochs=args.epochs,
                per_device_train_batch_size=args.batch_size,
                learning_rate=1e-3,
                no_cuda=True,
                seed=seed,
            ),
        )
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    return _with_pythae_weights(ours, model), seconds


class _LogVarEncoder(nn.Module):
    """Our encoder's output read as [mean, log variance] (pythae's head) and rewritten as
    [mean, softplus^-1(std)] (ours), so the shared evaluation reads the trained posterior."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        mean, log_var = self.net(x).chunk(2, dim=1)
        std = torch.exp(0.5 * log_var).clamp_min(2e-4) - 1e-4
        return torch.cat([mean, std + torch.log(-torch.expm1(-std))], dim=1)


def _with_pythae_weights(ours: VAE, trained) -> VAE:
    ours.encoder = _LogVarEncoder(trained.encoder.net)
    ours.decoders[0] = trained.decoder.net
    return ours.eval()


@torch.no_grad()
def validation_loss(model: VAE, data: ImageData) -> float:
    torch.manual_seed(0)
    total, n = 0.0, 0
    for x, _ in TensorBatches(data.val.images, data.val.labels, 1000):
        total += model.loss(x).loss.item() * len(x)
        n += len(x)
    return total / n


def probes(model: VAE, data: ImageData) -> tuple[float, float]:
    train_x = encode(model, data.train.images).mean.numpy()
    test_x = encode(model, data.test.images).mean.numpy()
    train_y, test_y = data.train.labels.numpy(), data.test.labels.numpy()
    return (
        linear_probe(train_x, train_y, test_x, test_y),
        mlp_probe(train_x, train_y, test_x, test_y, seed=0),
    )


def paired_cell(scores: list[float], plain: list[float]) -> str:
    """A loop's probe accuracy minus the plain loop's, paired by seed, with its 95 % interval."""
    if len(scores) < 2:
        return ""
    return paired_text(scores, plain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    quiet_lightning()
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    data = base_config(args, "32-true").data.load()
    images = len(data.train) * args.epochs
    out = tempfile.TemporaryDirectory()

    def repvae_loop(precision: str, seed: int) -> Trained:
        return repvae_train(base_config(args, precision, seed), out.name, data)

    chosen = resolve_precision("auto", "cpu")
    plain = "plain PyTorch loop (fp32, no validation)"
    with out:
        trained = train_in_turns(
            args.seeds,
            args.repeats,
            {
                plain: lambda seed: plain_loop(args, data, seed),
                "pythae 0.1.2 BaseTrainer (fp32, no validation)": lambda seed: pythae_loop(
                    args, data, seed
                ),
                "repvae train, fp32 (32-true, validation each epoch)": lambda seed: repvae_loop(
                    "32-true", seed
                ),
                f"repvae train, defaults ({chosen}, validation each epoch)": lambda seed: (
                    repvae_loop("auto", seed)
                ),
            },
        )
    scores = {  # per loop: per seed (validation -ELBO, MAP linear %, MAP MLP %)
        label: [
            (validation_loss(model, data), *(100 * a for a in probes(model, data)))
            for model, _ in runs.values()
        ]
        for label, runs in trained.items()
    }
    baseline = images / shortest(trained[plain])
    _, plain_linear, plain_mlp = (list(column) for column in zip(*scores[plain], strict=True))
    rows: list[dict[str, object]] = []
    per_seed: list[dict[str, object]] = []
    for label, runs in trained.items():
        seconds = shortest(runs)
        val, linear, mlp = (list(column) for column in zip(*scores[label], strict=True))
        row = {
            "loop": label,
            "training s": round(seconds, 1),
            "images/s": round(images / seconds),
            "vs plain loop": f"{images / seconds / baseline:.2f}",
            "val -ELBO (nats)": round(statistics.mean(val), 2),
            "MAP MLP %": round(statistics.mean(mlp), 2),
            "MAP linear %": round(statistics.mean(linear), 2),
        }
        if len(args.seeds) > 1:  # every row has the columns; the plain loop's are empty
            versus_plain = label != plain
            row["MLP - plain [95 %]"] = paired_cell(mlp, plain_mlp) if versus_plain else ""
            row["linear - plain [95 %]"] = paired_cell(linear, plain_linear) if versus_plain else ""
        rows.append(row)
        per_seed.extend(
            {
                "loop": label,
                "seed": seed,
                "training s": round(run_seconds, 1),
                "val -ELBO (nats)": round(v, 2),
                "MAP MLP %": round(m, 2),
                "MAP linear %": round(li, 2),
            }
            for (seed, (_, run_seconds)), (v, li, m) in zip(
                runs.items(), scores[label], strict=True
            )
        )
    print(
        f"MNIST, conv VAE latent {LATENT}, batch {args.batch_size}, {args.epochs} epochs, "
        f"best of {args.repeats}, seeds {' '.join(map(str, args.seeds))} (accuracies: means), "
        f"{torch.get_num_threads()} threads; matmul 2048^2: fp32 {fp32:.0f} GFLOP/s, "
        f"bf16 {bf16:.0f} GFLOP/s ({bf16 / fp32:.1f}x)"
    )
    print(markdown_table(rows, list(rows[0])))
    if len(args.seeds) > 1:
        print("\nPer seed:\n")
        print(markdown_table(per_seed, list(per_seed[0])))


if __name__ == "__main__":
    main()
