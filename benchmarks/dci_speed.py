"""DCI's time and scores with scikit-learn's GradientBoostingClassifier (disentanglement_lib's
classifier, ``dci(backend="sklearn")``) against LightGBM (``backend="lightgbm"``), on the same
codes of a trained run.

    python benchmarks/dci_speed.py RUN [--kinds map sample] [--n-train 10000] [--n-test 5000]

Codes: the run's representations of ``n_train + n_test`` training images (a seeded draw, as
``repvae evaluate`` splits them), so a ``shapes`` run gives disentanglement_lib's 10,000 / 5,000
points and 113 factor values. Besides the two backends, ``--variants`` can add what was tried
and rejected: the LightGBM backend with 255 bins (LightGBM's default) instead of one per
distinct value, and LightGBM's own log-loss objective with its "gain" and "split" importances.
Prints one Markdown row per representation and classifier: seconds, the scores, and their
absolute differences (Δ) from scikit-learn's.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import sklearn
import torch
from joblib import Parallel, delayed

from repvae.evaluate.boosting import boosted_trees
from repvae.evaluate.disentanglement import (
    GBT_ESTIMATORS,
    dci,
    dci_completeness,
    dci_disentanglement,
)
from repvae.report.tables import markdown_table
from repvae.represent import derive, encode
from repvae.run import load

Fit = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, float, float]]
# DCIResult's scores and their column names; "ΔD" is the absolute difference from sklearn's D
SCORES = {
    "disentanglement": "D",
    "completeness": "C",
    "informativeness_test": "I test",
    "informativeness_train": "I train",
}


def _lightgbm_native(importance_type: str) -> Fit:
    """LightGBM's own multiclass objective (Newton-gain splits) at scikit-learn's settings."""

    def fit(
        x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray
    ) -> tuple[np.ndarray, float, float]:
        model = lightgbm.LGBMClassifier(
            n_estimators=GBT_ESTIMATORS,
            learning_rate=0.1,
            max_depth=3,
            num_leaves=8,
            min_child_samples=1,
            reg_lambda=0.0,
            max_bin=len(x),
            min_data_in_bin=1,
            importance_type=importance_type,
            n_jobs=1,
            verbose=-1,
        ).fit(x, y)
        importance = model.feature_importances_.astype(np.float64)
        return importance / importance.sum(), model.score(x, y), model.score(xt, yt)

    return fit


def _bins_255(
    x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray
) -> tuple[np.ndarray, float, float]:
    fit = boosted_trees(x, y, xt, yt, n_estimators=GBT_ESTIMATORS, max_bin=255)
    return fit.importance, fit.train_accuracy, fit.test_accuracy


VARIANTS: dict[str, Fit] = {
    "lightgbm backend, 255 bins": _bins_255,
    "lightgbm objective, gain importance": _lightgbm_native("gain"),
    "lightgbm objective, split importance": _lightgbm_native("split"),
}


def _dci_with(fit: Fit, x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray) -> dict:
    """DCI's scores with another per-factor classifier, one thread per core as ``dci`` runs."""
    fits = Parallel(n_jobs=min(y.shape[1], os.cpu_count() or 1), prefer="threads")(
        delayed(fit)(x, y[:, k], xt, yt[:, k]) for k in range(y.shape[1])
    )
    importance = np.stack([f[0] for f in fits], axis=1)
    return {
        "disentanglement": dci_disentanglement(importance),
        "completeness": dci_completeness(importance),
        "informativeness_test": float(np.mean([f[2] for f in fits])),
        "informativeness_train": float(np.mean([f[1] for f in fits])),
    }


def codes_of(run_dir: str, kinds: list[str], n_train: int, n_test: int, seed: int) -> dict:
    """``{kind: (codes_train, factors_train, codes_test, factors_test)}`` of the run."""
    run = load(run_dir, device="cpu")
    split = run.config.data.load().train
    if split.factors is None:
        raise SystemExit(f"{run.config.data.name} has no ground-truth factors (try shapes)")
    order = np.random.default_rng(seed).permutation(len(split.images))[: n_train + n_test]
    posterior = encode(run.model, split.images[torch.from_numpy(order)])
    factors = split.factors.numpy()[order]
    out = {}
    for kind in kinds:
        codes = derive(posterior, kind, None, draws=1, seed=seed).astype(np.float64)
        out[kind] = (codes[:n_train], factors[:n_train], codes[n_train:], factors[n_train:])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run")
    parser.add_argument("--kinds", nargs="+", default=["map", "sample"])
    parser.add_argument("--n-train", type=int, default=10_000)
    parser.add_argument("--n-test", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS), metavar="V"
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    data = codes_of(args.run, args.kinds, args.n_train, args.n_test, args.seed)
    rows: list[dict[str, Any]] = []
    for kind, arrays in data.items():
        measured: dict[str, tuple[float, dict]] = {}
        for backend in ("sklearn", "lightgbm"):
            start = time.perf_counter()
            result = dci(*arrays, seed=args.seed, backend=backend).as_dict()
            measured[f"{backend} backend"] = (time.perf_counter() - start, result)
        for name in args.variants:
            start = time.perf_counter()
            result = _dci_with(VARIANTS[name], *arrays)
            measured[name] = (time.perf_counter() - start, result)
        old_seconds, old = measured["sklearn backend"]
        for name, (seconds, result) in measured.items():
            row: dict[str, Any] = {
                "codes": kind,
                "classifier": name,
                "seconds": round(seconds, 1),
                "speed-up": f"{old_seconds / seconds:.1f}x",
            }
            row.update({short: round(result[s], 4) for s, short in SCORES.items()})
            row.update(
                {f"Δ{short}": round(abs(result[s] - old[s]), 4) for s, short in SCORES.items()}
            )
            rows.append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    x_train, factors_train = data[args.kinds[0]][:2]
    values = sum(len(np.unique(f)) for f in factors_train.T)
    print(
        f"\n{args.run}: {x_train.shape[0]} train / {args.n_test} test points, "
        f"{x_train.shape[1]} dimensions, {values} factor values; scikit-learn "
        f"{sklearn.__version__}, LightGBM {lightgbm.__version__}, {os.cpu_count()} cores; "
        "D, C, I: disentanglement, completeness, informativeness (mean accuracy); Δ: absolute "
        "difference from the sklearn backend's score\n"
    )
    print(markdown_table(rows, list(rows[0])))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
