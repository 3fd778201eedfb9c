"""The main job: the whole story on the embedded 8x8 digits in about a minute on a laptop CPU.

Trains a VAE, an InfoVAE (MMD instead of KL) and a Matryoshka InfoVAE, with a deterministic
autoencoder and probabilistic PCA as the baselines, extracts MAP and posterior-sample
representations, and probes every nested size with the linear and the nonlinear probe (train on
the train split, test on the held-out test split, seed 0). Representations a model does not have
(samples of a deterministic code) are left blank in the table.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from repvae.config import PRESETS, apply_overrides, from_dict
from repvae.data import load_dataset
from repvae.evaluate.probing import probe_embeddings
from repvae.files import write_text
from repvae.report.tables import markdown_table
from repvae.represent import embed
from repvae.training import train

LATENT = 16
MODELS = (
    ("VAE", "vae"),
    ("InfoVAE", "infovae"),
    ("Matryoshka-InfoVAE", "minfovae"),
    ("AE (baseline)", "ae"),
    ("pPCA (baseline)", "ppca"),
)
KINDS = ("map", "sample", "samples:50")


def demo(
    out: str | Path = "runs/demo", *, epochs: int | None = None, progress: bool = True
) -> list[dict]:
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    data = load_dataset("digits", seed=0)
    base = from_dict(
        {
            "data": {"name": "digits"},
            "model": {"latent_dim": LATENT},
            "train": {
                "epochs": epochs or 60,
                "batch_size": 64,
                "lr": 2e-3,
                "patience": 10,
                "progress": progress,
            },
        }
    )
    rows = []
    for label, preset in MODELS:
        cfg = apply_overrides(base, PRESETS.get(preset).overrides(LATENT))
        started = time.perf_counter()
        run = train(cfg, out / preset, data=data)
        seconds = time.perf_counter() - started
        sizes = run.model.prefixes
        kinds = [k for k in KINDS if k == "map" or run.model.capabilities.continuous_posterior]
        embeddings = embed(run, kinds, dims=sizes, data=data)
        for m in sizes:
            row = {"model": label, "latent": m, "train s": round(seconds, 1)}
            for kind in kinds:
                probes = ("linear", "mlp") if kind == "map" else ("mlp",)
                for r in probe_embeddings(embeddings[(kind, m)], probes=probes):
                    row[f"{kind} {r['probe']}"] = round(100 * r["accuracy"], 1)
            rows.append(row)
    columns = [
        "model",
        "latent",
        "map linear",
        "map mlp",
        "sample mlp",
        "samples:50 mlp",
        "train s",
    ]
    table = markdown_table(rows, columns)
    write_text(
        out / "results.md",
        "Probe test accuracy (%) on the embedded digits (sklearn 8x8, 1,797 images; "
        f"split train/val/test = {len(data.train)}/{len(data.val)}/{len(data.test)}, "
        f"seed 0)\n\n{table}\n",
    )
    write_text(out / "results.json", json.dumps(rows, indent=2))
    print(table)
    print(f"\nRun folders and results: {out}/")
    return rows
