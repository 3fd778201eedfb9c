"""How the InfoVAE/MMD-VAE weight lambda shapes the posterior (the measurement behind the
``infovae`` preset's lambda = 100).

    python benchmarks/infovae_lambda.py --data-root ../shared/datasets [--variants vae a1-l100]

MNIST, 10,000 training images, 3 epochs, latent 16, seed 0; MLP probe (split protocol) trained
on the first 10,000 training images' representations and tested on the 10,000 test images;
posterior std and the spread of posterior means are averaged over 2,000 test images.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import cast

from repvae.config import from_dict
from repvae.data import load_dataset
from repvae.evaluate.probing import probe_embeddings
from repvae.models import DiagonalGaussian
from repvae.report.tables import markdown_table
from repvae.represent import embed
from repvae.training import quiet_lightning, train

VARIANTS = {
    "vae": {"alpha": 0.0, "lam": 1.0},
    "a1-l1000": {"alpha": 1.0, "lam": 1000.0},
    "a1-l100": {"alpha": 1.0, "lam": 100.0},
    "a1-l10": {"alpha": 1.0, "lam": 10.0},
    "a0-l1000": {"alpha": 0.0, "lam": 1000.0},
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    quiet_lightning()
    data = load_dataset("mnist", args.data_root)
    rows = []
    for name in args.variants:
        cfg = from_dict(
            {
                "data": {"name": "mnist", "root": args.data_root},
                "model": {"latent_dim": 16, "vae": VARIANTS[name]},
                "train": {"epochs": 3, "train_subset": 10000, "progress": False},
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            run = train(cfg, tmp, data=data)
            emb = embed(run, ["map", "sample"], data=data, save=False)
            q = cast(DiagonalGaussian, run.model.encode(data.test.images[:2000]))
        row = {"variant": name, "alpha": VARIANTS[name]["alpha"], "lam": VARIANTS[name]["lam"]}
        for kind in ("map", "sample"):
            e = emb[(kind, None)]
            e.features["train"], e.labels["train"] = (
                e.features["train"][:10000],
                e.labels["train"][:10000],
            )
            row[f"{kind} mlp %"] = round(
                100 * probe_embeddings(e, probes=["mlp"])[0]["accuracy"], 1
            )
        row["posterior std"] = round(q.std.mean().item(), 3)
        row["spread of means"] = round(q.mean.std(0).mean().item(), 3)
        rows.append(row)
    print(markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    main()
