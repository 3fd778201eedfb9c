"""Label efficiency: probe accuracy as a function of how many labelled training points it gets.

A representation that makes classes easy to separate needs few labels. Locatello et al. (2019)
summarise the curve by the *statistical efficiency*: accuracy with 100 labels over accuracy with
10,000. Subsets are class-balanced and redrawn ``draws`` times (seeded) per size, and every probe
is evaluated on the full test set, so the spread across draws is the subset's effect alone.
"""

from collections.abc import Callable, Sequence

import numpy as np

from repvae.data.splits import balanced_subset
from repvae.evaluate.metric import Context, Metric, Result
from repvae.evaluate.probes import (
    ArrayLike,
    _prepare,
    knn_probe,
    linear_probe,
    logistic_probe,
    mlp_probe,
)

_KNN_K = 20  # knn_probe's default k
_PROBES: dict[str, Callable[..., float]] = {
    "linear": linear_probe,
    "logistic": logistic_probe,
    "mlp": mlp_probe,
    "knn": knn_probe,
}
_SEEDED = ("linear", "mlp")  # the probes whose fit takes a seed


def _fit(probe: str, data: tuple[np.ndarray, ...], seed: int) -> float:
    options: dict[str, int] = {}
    if probe in _SEEDED:
        options["seed"] = seed
    if probe == "knn":
        options["k"] = min(_KNN_K, len(data[0]))
    return _PROBES[probe](*data, **options)


def label_efficiency(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    *,
    sizes: Sequence[int | None] = (10, 100, 1000, 10000, None),
    draws: int = 5,
    probe: str = "logistic",
    seed: int = 0,
) -> dict:
    """Test accuracy of ``probe`` trained on class-balanced subsets of ``sizes`` labels, JSON-ready.

    ``None`` in ``sizes`` means all training labels (one draw: there is nothing to redraw).
    Sizes below the number of classes or above the training-set size are skipped, and labels
    short of ``n`` (a class with fewer than ``n / C`` points) are reported, both in ``notes``.
    kNN uses ``k = min(20, n)``. Per size: mean and population std over draws, the per-draw
    accuracies and the number of labels each draw used. ``statistical_efficiency`` is
    acc(100) / acc(10000) (Locatello et al. 2019), or None where either size was not run.
    """
    if probe not in _PROBES:
        raise ValueError(f"unknown probe {probe!r}; choose from {tuple(_PROBES)}")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    x, y, tx, ty = _prepare(train_x, train_y, test_x, test_y)
    n_classes = len(np.unique(y))
    notes: list[str] = []
    results: list[dict] = []
    for size in sizes:
        if size is not None and size < n_classes:
            notes.append(f"size {size} skipped: fewer labels than the {n_classes} classes")
            continue
        if size is not None and size > len(y):
            notes.append(f"size {size} skipped: only {len(y)} training points")
            continue
        subsets = (
            [np.arange(len(y))]
            if size is None
            else [
                balanced_subset(y, size, np.random.default_rng([seed, size, d]))
                for d in range(draws)
            ]
        )
        accs = [_fit(probe, (x[idx], y[idx], tx, ty), seed) for idx in subsets]
        n_used = [len(idx) for idx in subsets]
        if size is not None and min(n_used) < size:
            notes.append(f"size {size}: some classes are too small, draws used {n_used} labels")
        if probe == "knn" and min(n_used) < _KNN_K:
            notes.append(f"size {size}: kNN with k = {min(n_used)} (fewer than {_KNN_K} labels)")
        results.append(
            {
                "size": "all" if size is None else size,
                "n_used": n_used,
                "mean": float(np.mean(accs)),
                "std": float(np.std(accs)),
                "accuracies": accs,
            }
        )
    by_size = {r["size"]: r["mean"] for r in results}
    efficiency = None
    if by_size.get(100) is not None and by_size.get(10000):
        efficiency = by_size[100] / by_size[10000]
    return {
        "protocol": {
            "probe": probe,
            "draws": draws,
            "seed": seed,
            "class_balanced": True,
            "n_train": len(y),
            "n_test": len(ty),
            "n_classes": n_classes,
        },
        "sizes": results,
        "statistical_efficiency": efficiency,
        "notes": notes,
    }


def _label_efficiency(ctx: Context) -> Result:
    s = ctx.settings
    report = label_efficiency(
        ctx.posterior("train").mean.numpy(),
        ctx.data.train.labels.numpy(),
        ctx.posterior().mean.numpy(),
        getattr(ctx.data, ctx.split).labels.numpy(),
        sizes=tuple(s.label_sizes),
        draws=s.label_draws,
        probe=s.label_probe,
        seed=s.seed,
    )
    return {"representation": "map", "split": ctx.split, **report}


def _headline(result: Result) -> dict[str, float]:
    """Test error (%) with n labels, the way semi-supervised tables (Kingma et al.) print it,
    and Locatello et al.'s acc(100)/acc(10,000) where both sizes were run."""
    values = {
        f"error_percent_{r['size']}_labels": 100.0 * (1.0 - r["mean"])
        for r in result.get("sizes", [])
    }
    if result.get("statistical_efficiency") is not None:
        values["statistical_efficiency"] = result["statistical_efficiency"]
    return values


def _summary(result: Result) -> list[str]:
    probe = result["protocol"]["probe"]
    lines = [
        f"  {probe} probe with {size['size']:>5} labels: "
        f"{100 * size['mean']:6.2f}% ± {100 * size['std']:.2f}"
        for size in result["sizes"]
    ]
    ratio = result["statistical_efficiency"]
    lines.append(
        "  statistical efficiency acc(100)/acc(10000): "
        + ("n/a" if ratio is None else f"{ratio:.3f}")
    )
    return lines


METRIC = Metric("label_efficiency", _label_efficiency, _headline, _summary)
