"""Disentanglement metrics of a representation against discrete ground-truth factors.

Every metric takes plain arrays: ``codes`` float ``[N, D]`` (one representation per image, e.g.
posterior means or samples) and ``factors`` integer ``[N, F]`` (the index of each ground-truth
factor's value per image, e.g. dSprites' shape, scale, orientation, x, y). Where
disentanglement_lib samples fresh images from a generative dataset, these metrics sample points
from the arrays (uniformly, with replacement), so they apply to any finite labelled dataset.

Defaults are disentanglement_lib's unsupervised-study settings (Locatello et al., "Challenging
Common Assumptions in the Unsupervised Learning of Disentangled Representations", ICML 2019;
github.com/google-research/disentanglement_lib, ``config/unsupervised_study_v1/metric_configs``):

- BetaVAE score (Higgins et al., ICLR 2017): 10,000 train / 5,000 eval classifier points, batch 64,
  a ``LogisticRegression`` fitted to convergence (disentanglement_lib used scikit-learn's default
  of its time, liblinear; today's default lbfgs stops unconverged at 100 iterations on these
  unscaled features, so ``max_iter`` is raised to 1000).
- FactorVAE score (Kim & Mnih, ICML 2018): 10,000 train / 5,000 eval votes, batch 64, global
  variances from 10,000 points, dimensions with std < 0.05 pruned. disentanglement_lib reports
  ``len(mask)`` (= D) as ``num_active_dims``; here it is the number of active dimensions.
- MIG (Chen et al., NeurIPS 2018) and Modularity (Ridgeway & Zemel, NeurIPS 2018): each code
  dimension discretised into 20 equal-width bins (``_histogram_discretize``), mutual information
  in nats.
- DCI (Eastwood & Williams, ICLR 2018): one gradient-boosted classifier per factor with
  scikit-learn's ``GradientBoostingClassifier`` defaults (100 stages of depth-3 trees, learning
  rate 0.1), 10,000 train / 5,000 test points. The default ``backend="lightgbm"``
  (``repvae.evaluate.boosting``) runs scikit-learn's algorithm, with its importances (ties
  between features that split a node alike shared as scikit-learn's random order shares them in
  expectation), LightGBM growing the trees; ``backend="sklearn"`` is disentanglement_lib's
  ``GradientBoostingClassifier`` itself, minutes per representation on ``shapes`` (113 factor
  values, so 11,300 trees). Their times and score differences on the same codes:
  ``results/dci-speed/``.
- SAP (Kumar et al., ICLR 2018): one ``LinearSVC(C=0.01, class_weight="balanced")`` per
  (dimension, factor) pair, 10,000 train / 5,000 test points.

``disentanglement_report`` runs all six and returns a JSON-ready dict.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy import stats
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from repvae.evaluate.boosting import DCI_BACKEND, DCI_BACKENDS, boosted_trees
from repvae.evaluate.metric import Context, Metric, Result, skipped, values_at
from repvae.represent import derive

BATCH_SIZE = 64
N_VARIANCE = 10_000
PRUNE_STD = 0.05
N_BINS = 20
SAP_C = 0.01
GBT_ESTIMATORS = 100  # scikit-learn's default, as disentanglement_lib uses it
FAST_POINTS = (2_000, 1_000)  # train/test points when fast=True
FAST_GBT_ESTIMATORS = 10
# Code entries gathered at once when building classifier points: bounds memory (32 MiB float64)
# whatever N, D or the batch size, while keeping each chunk vectorised.
_CHUNK_ENTRIES = 1 << 22


def _codes_factors(
    codes: np.ndarray, factors: np.ndarray, suffix: str = "", *, varied: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 codes and int64 factors; ``suffix`` names the arrays in messages."""
    c_name, f_name = f"codes{suffix}", f"factors{suffix}"
    codes = np.asarray(codes)
    factors = np.asarray(factors)
    if codes.ndim != 2 or codes.shape[0] == 0:
        raise ValueError(f"{c_name} must be a non-empty [N, D] array, got shape {codes.shape}")
    if not (np.issubdtype(codes.dtype, np.floating) or np.issubdtype(codes.dtype, np.integer)):
        raise ValueError(f"{c_name} must hold real numbers, got dtype {codes.dtype}")
    codes = codes.astype(np.float64)
    if not np.all(np.isfinite(codes)):
        raise ValueError(f"{c_name} contains NaN or infinite values")
    if factors.ndim != 2:
        raise ValueError(f"{f_name} must be an [N, F] array, got shape {factors.shape}")
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(
            f"{f_name} must hold integer factor indices, got dtype {factors.dtype} "
            "(discretise continuous factors first)"
        )
    if factors.shape[0] != codes.shape[0]:
        raise ValueError(
            f"{c_name} has {codes.shape[0]} rows but {f_name} has {factors.shape[0]}: "
            "they must describe the same points"
        )
    if codes.shape[1] < 2:
        raise ValueError(f"{c_name} needs at least 2 dimensions, got {codes.shape[1]}")
    if factors.shape[1] < 2:
        raise ValueError(f"{f_name} needs at least 2 factors, got {factors.shape[1]}")
    if varied:
        for j in range(factors.shape[1]):
            if np.all(factors[:, j] == factors[0, j]):
                raise ValueError(f"factor {j} of {f_name} takes a single value: drop it")
    return codes, factors.astype(np.int64)


def _split_arrays(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated train and test arrays of the same code and factor widths."""
    x_train, y_train = _codes_factors(codes_train, factors_train, "_train")
    x_test, y_test = _codes_factors(codes_test, factors_test, "_test", varied=False)
    if x_test.shape[1] != x_train.shape[1] or y_test.shape[1] != y_train.shape[1]:
        raise ValueError(
            f"train ({x_train.shape[1]} dims, {y_train.shape[1]} factors) and test "
            f"({x_test.shape[1]} dims, {y_test.shape[1]} factors) arrays differ in width"
        )
    return x_train, y_train, x_test, y_test


def _at_least(minimum: int, **counts: int) -> None:
    for name, value in counts.items():
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")


@dataclass(frozen=True)
class _Result:
    def as_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready: arrays become lists)."""
        return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class BetaVAEResult(_Result):
    """Accuracy of the factor classifier on its training points and on fresh points."""

    train_accuracy: float
    eval_accuracy: float


@dataclass(frozen=True)
class FactorVAEResult(_Result):
    """Majority-vote accuracy; ``active_dims`` are the unpruned dimensions' indices."""

    train_accuracy: float
    eval_accuracy: float
    num_active_dims: int
    active_dims: np.ndarray
    note: str


@dataclass(frozen=True)
class MIGResult(_Result):
    """``score`` is the mean of ``per_factor``; MI ``[D, F]`` and entropies ``[F]`` in nats."""

    score: float
    per_factor: np.ndarray
    mutual_information: np.ndarray
    factor_entropy: np.ndarray


@dataclass(frozen=True)
class DCIResult(_Result):
    """Disentanglement, completeness and informativeness (mean accuracy over factors)."""

    disentanglement: float
    completeness: float
    informativeness_train: float
    informativeness_test: float
    importance: np.ndarray  # [D, F]


@dataclass(frozen=True)
class SAPResult(_Result):
    """``score_matrix[d, k]``: test accuracy of dimension d alone at predicting factor k."""

    score: float
    score_matrix: np.ndarray


@dataclass(frozen=True)
class ModularityResult(_Result):
    """``score`` is the mean of ``per_code``."""

    score: float
    per_code: np.ndarray


class _SameValueSampler:
    """Draws points that share one factor's value with given anchor points, O(1) per draw.

    Within each factor the points are sorted by value, so the points sharing a value form one
    contiguous run of ``order[k]``; each point stores where its run starts and how long it is.
    """

    def __init__(self, factors: np.ndarray) -> None:
        n, f = factors.shape
        self.order = np.empty((f, n), dtype=np.intp)
        self.start = np.empty((f, n), dtype=np.intp)
        self.count = np.empty((f, n), dtype=np.intp)
        for k in range(f):
            _, inverse, counts = np.unique(factors[:, k], return_inverse=True, return_counts=True)
            self.order[k] = np.argsort(inverse, kind="stable")
            self.start[k] = (np.cumsum(counts) - counts)[inverse]
            self.count[k] = counts[inverse]

    def draw(self, rng: np.random.Generator, factor: np.ndarray, anchor: np.ndarray) -> np.ndarray:
        """Random points with ``factors[:, factor] == factors[anchor, factor]`` (broadcast)."""
        factor, anchor = np.broadcast_arrays(factor, anchor)
        offset = rng.integers(self.count[factor, anchor])
        return self.order[factor, self.start[factor, anchor] + offset]


def _chunks(n: int, entries_per_item: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges over n items, each holding about ``_CHUNK_ENTRIES`` entries."""
    step = max(1, _CHUNK_ENTRIES // entries_per_item)
    return [(lo, min(lo + step, n)) for lo in range(0, n, step)]


def _beta_vae_points(
    codes: np.ndarray,
    sampler: _SameValueSampler,
    n_factors: int,
    n_points: int,
    batch_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Features (mean |z1 - z2| over pairs sharing factor k's value) and labels k."""
    labels = rng.integers(n_factors, size=n_points)
    features = np.empty((n_points, codes.shape[1]))
    for lo, hi in _chunks(n_points, batch_size * codes.shape[1]):
        # Anchors are uniform points, so a pair's shared value follows the data's distribution
        # and the pair's other factors vary freely, as in disentanglement_lib.
        anchors = rng.integers(codes.shape[0], size=(hi - lo, batch_size))
        partners = sampler.draw(rng, labels[lo:hi, None], anchors)
        features[lo:hi] = np.abs(codes[anchors] - codes[partners]).mean(axis=1)
    return features, labels


def beta_vae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    n_train: int = 10_000,
    n_test: int = 5_000,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
) -> BetaVAEResult:
    """BetaVAE score (Higgins et al. 2017): can a linear classifier tell which factor was held
    fixed from the mean absolute code difference of ``batch_size`` pairs sharing its value?

    ``n_train``/``n_test`` count classifier points (disentanglement_lib's ``num_train``/
    ``num_eval``); the score is ``eval_accuracy``. Chance is about 1/F.
    """
    codes, factors = _codes_factors(codes, factors)
    _at_least(1, n_train=n_train, n_test=n_test, batch_size=batch_size)
    rng = np.random.default_rng(seed)
    sampler = _SameValueSampler(factors)
    n_factors = factors.shape[1]
    x_train, y_train = _beta_vae_points(codes, sampler, n_factors, n_train, batch_size, rng)
    x_test, y_test = _beta_vae_points(codes, sampler, n_factors, n_test, batch_size, rng)
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return BetaVAEResult(
        train_accuracy=float(model.score(x_train, y_train)),
        eval_accuracy=float(model.score(x_test, y_test)),
    )


def _factor_vae_votes(
    scaled: np.ndarray,
    sampler: _SameValueSampler,
    n_factors: int,
    n_votes: int,
    batch_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Votes ``[A, F]``: how often dimension a had the least variance with factor k fixed."""
    n_dims = scaled.shape[1]
    votes = np.zeros((n_dims, n_factors), dtype=np.int64)
    for lo, hi in _chunks(n_votes, batch_size * n_dims):
        k = rng.integers(n_factors, size=hi - lo)
        anchors = rng.integers(scaled.shape[0], size=hi - lo)
        batch = sampler.draw(rng, k[:, None], np.repeat(anchors[:, None], batch_size, axis=1))
        dims = scaled[batch].var(axis=1, ddof=1).argmin(axis=1)
        votes += np.bincount(dims * n_factors + k, minlength=n_dims * n_factors).reshape(
            n_dims, n_factors
        )
    return votes


def factor_vae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    n_train: int = 10_000,
    n_test: int = 5_000,
    batch_size: int = BATCH_SIZE,
    n_variance: int = N_VARIANCE,
    prune_std: float = PRUNE_STD,
    seed: int = 0,
) -> FactorVAEResult:
    """FactorVAE score (Kim & Mnih 2018): with one factor fixed over a batch, is the dimension of
    least (globally normalised) variance always the same one for that factor?

    Dimensions whose std over ``n_variance`` random points (all if fewer) is below ``prune_std``
    (or zero) are inactive. Each of ``n_train`` votes pairs that argmin dimension with the fixed
    factor; the classifier maps each dimension to its majority factor and the score
    (``eval_accuracy``) is its accuracy on ``n_test`` fresh votes. With no active dimension both
    accuracies are 0.
    """
    codes, factors = _codes_factors(codes, factors)
    _at_least(1, n_train=n_train, n_test=n_test)
    _at_least(2, batch_size=batch_size, n_variance=n_variance)
    rng = np.random.default_rng(seed)
    sample = rng.choice(codes.shape[0], size=min(n_variance, codes.shape[0]), replace=False)
    if sample.size < 2:
        raise ValueError("factor_vae_score needs at least 2 points to estimate variances")
    std = codes[sample].std(axis=0, ddof=1)
    active = np.flatnonzero((std >= prune_std) & (std > 0))
    if active.size == 0:
        note = f"no active dimension: every code std is below prune_std={prune_std}"
        return FactorVAEResult(0.0, 0.0, 0, active, note)
    scaled = codes[:, active] / std[active]
    sampler = _SameValueSampler(factors)
    n_factors = factors.shape[1]
    train_votes = _factor_vae_votes(scaled, sampler, n_factors, n_train, batch_size, rng)
    test_votes = _factor_vae_votes(scaled, sampler, n_factors, n_test, batch_size, rng)
    majority = train_votes.argmax(axis=1)
    rows = np.arange(active.size)
    return FactorVAEResult(
        train_accuracy=float(train_votes[rows, majority].sum() / n_train),
        eval_accuracy=float(test_votes[rows, majority].sum() / n_test),
        num_active_dims=int(active.size),
        active_dims=active,
        note="",
    )


def _discretize(codes: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin indices in 1..n_bins per dimension (disentanglement_lib's ``_histogram_discretize``)."""
    binned = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], bins=n_bins)
        binned[:, d] = np.digitize(codes[:, d], edges[:-1])
    return binned


def _mutual_information(codes: np.ndarray, factors: np.ndarray, n_bins: int) -> np.ndarray:
    """MI ``[D, F]`` (nats) between each discretised code dimension and each factor."""
    _at_least(2, n_bins=n_bins)
    binned = _discretize(codes, n_bins)
    return np.array(
        [
            [mutual_info_score(factors[:, k], binned[:, d]) for k in range(factors.shape[1])]
            for d in range(codes.shape[1])
        ]
    )


def mig(codes: np.ndarray, factors: np.ndarray, *, n_bins: int = N_BINS) -> MIGResult:
    """Mutual information gap (Chen et al. 2018): per factor, the MI of its most informative
    dimension minus that of the runner-up, over the factor's entropy; averaged over factors.

    A factor captured equally by two dimensions scores 0, as the metric intends.
    """
    codes, factors = _codes_factors(codes, factors)
    mi = _mutual_information(codes, factors, n_bins)
    entropy = np.array(
        [stats.entropy(np.unique(factors[:, k], return_counts=True)[1]) for k in range(mi.shape[1])]
    )
    top = np.sort(mi, axis=0)
    per_factor = (top[-1] - top[-2]) / entropy
    return MIGResult(float(per_factor.mean()), per_factor, mi, entropy)


def _one_minus_entropy(weights: np.ndarray) -> np.ndarray:
    """1 - H(row / row sum) per row, log base = row length, so it lies in [0, 1].

    An all-zero row counts as uniform (score 0), as disentanglement_lib's ``+ 1e-11`` makes it.
    """
    weights = np.where(weights.sum(axis=1, keepdims=True) > 0, weights, 1.0)
    # The clip removes rounding below 0 (a uniform row gives -2e-16).
    return np.clip(1.0 - stats.entropy(weights, base=weights.shape[1], axis=1), 0.0, 1.0)


def _shares(weights: np.ndarray) -> np.ndarray:
    """Weights as fractions of their total (equal shares when all are zero)."""
    total = weights.sum()
    return weights / total if total > 0 else np.full_like(weights, 1.0 / weights.size)


def dci_disentanglement(importance: np.ndarray) -> float:
    """1 - entropy over factors of each code dimension's importances ``[D, F]``, weighted by
    the dimension's share of the total importance (disentanglement_lib's ``disentanglement``)."""
    return float(np.sum(_one_minus_entropy(importance) * _shares(importance.sum(axis=1))))


def dci_completeness(importance: np.ndarray) -> float:
    """1 - entropy over code dimensions of each factor's importances ``[D, F]``, weighted by the
    factor's share of the total importance (disentanglement_lib's ``completeness``): a factor
    no dimension captures (all importances zero) weighs nothing."""
    return float(np.sum(_one_minus_entropy(importance.T) * _shares(importance.sum(axis=0))))


def dci(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    n_estimators: int = GBT_ESTIMATORS,
    seed: int = 0,
    backend: str = DCI_BACKEND,
) -> DCIResult:
    """DCI (Eastwood & Williams 2018) from gradient-boosted-tree feature importances ``[D, F]``.

    Disentanglement and completeness as ``dci_disentanglement`` and ``dci_completeness``.
    Informativeness: mean accuracy over factors. Each boosting stage grows one tree per factor
    value, so the cost grows with the total number of values (113 for dSprites; the backends'
    times in the module docstring). Lower ``n_estimators`` for speed only.
    """
    x_train, y_train, x_test, y_test = _split_arrays(
        codes_train, factors_train, codes_test, factors_test
    )
    _at_least(1, n_estimators=n_estimators)
    if backend not in DCI_BACKENDS:
        raise ValueError(f"backend must be one of {DCI_BACKENDS}, got {backend!r}")
    n_factors = y_train.shape[1]

    def fit(k: int) -> tuple[np.ndarray, float, float]:
        if backend == "lightgbm":
            boosted = boosted_trees(
                x_train, y_train[:, k], x_test, y_test[:, k], n_estimators=n_estimators, seed=seed
            )
            return boosted.importance, boosted.train_accuracy, boosted.test_accuracy
        model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed)
        model.fit(x_train, y_train[:, k])
        return (
            np.abs(model.feature_importances_),
            model.score(x_train, y_train[:, k]),
            model.score(x_test, y_test[:, k]),
        )

    # The factors' classifiers are independent and single-threaded: one thread per core. sklearn
    # grows the trees without the GIL (so does LightGBM, called through ctypes), so threads run as
    # fast as joblib's default worker processes (sklearn: 16.6 against 17.8 s on 2 cores, same
    # scores), and leave none behind: the loky processes outlived the call and kept a finished
    # study's worker from exiting.
    fits = Parallel(n_jobs=min(n_factors, os.cpu_count() or 1), prefer="threads")(
        delayed(fit)(k) for k in range(n_factors)
    )
    importance = np.stack([f[0] for f in fits], axis=1)
    acc_train = np.array([f[1] for f in fits])
    acc_test = np.array([f[2] for f in fits])
    return DCIResult(
        disentanglement=dci_disentanglement(importance),
        completeness=dci_completeness(importance),
        informativeness_train=float(acc_train.mean()),
        informativeness_test=float(acc_test.mean()),
        importance=importance,
    )


def sap(
    codes_train: np.ndarray,
    factors_train: np.ndarray,
    codes_test: np.ndarray,
    factors_test: np.ndarray,
    *,
    C: float = SAP_C,
) -> SAPResult:
    """SAP (Kumar et al. 2018): per factor, the test accuracy of the best single-dimension
    linear classifier minus the runner-up's, averaged over factors."""
    x_train, y_train, x_test, y_test = _split_arrays(
        codes_train, factors_train, codes_test, factors_test
    )
    scores = np.zeros((x_train.shape[1], y_train.shape[1]))
    for d in range(x_train.shape[1]):
        for k in range(y_train.shape[1]):
            model = LinearSVC(C=C, class_weight="balanced", random_state=0)
            model.fit(x_train[:, d : d + 1], y_train[:, k])
            scores[d, k] = model.score(x_test[:, d : d + 1], y_test[:, k])
    top = np.sort(scores, axis=0)
    return SAPResult(float(np.mean(top[-1] - top[-2])), scores)


def modularity(codes: np.ndarray, factors: np.ndarray, *, n_bins: int = N_BINS) -> ModularityResult:
    """Modularity (Ridgeway & Zemel 2018): does each dimension carry information about a single
    factor? Per dimension 1 - sum_{k != argmax} MI_k^2 / (max_k MI_k^2 * (F - 1)); a dimension
    with no information about any factor scores 0 (disentanglement_lib's convention)."""
    codes, factors = _codes_factors(codes, factors)
    squared = _mutual_information(codes, factors, n_bins) ** 2
    top = squared.max(axis=1)
    excess = np.divide(
        squared.sum(axis=1) - top,
        top * (squared.shape[1] - 1),
        out=np.ones_like(top),
        where=top > 0,
    )
    per_code = 1.0 - excess
    return ModularityResult(float(per_code.mean()), per_code)


def _split_sizes(n: int, n_train: int, n_test: int) -> tuple[int, int]:
    """The requested sizes, or the same train:test ratio over all n points when too few."""
    if n >= n_train + n_test:
        return n_train, n_test
    train = round(n * n_train / (n_train + n_test))
    return train, n - train


def disentanglement_report(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    n_train: int = 10_000,
    n_test: int = 5_000,
    seed: int = 0,
    fast: bool = False,
    dci_backend: str = DCI_BACKEND,
) -> dict[str, Any]:
    """All six metrics as one JSON-ready dict, with the settings and seconds of each.

    The points are split (seeded) into ``n_train``/``n_test`` points, or in that ratio when there
    are fewer; DCI and SAP fit on the train and score on the test split, MIG and Modularity use
    the train split, as disentanglement_lib does. BetaVAE and FactorVAE draw their ``n_train``/
    ``n_test`` classifier points from all points. ``fast=True`` caps the points at
    ``FAST_POINTS`` and DCI at ``FAST_GBT_ESTIMATORS`` boosting stages: for tests and demos only.
    ``dci_backend`` grows DCI's trees (``dci``'s ``backend``).
    """
    codes, factors = _codes_factors(codes, factors)
    _at_least(1, n_train=n_train, n_test=n_test)
    if fast:
        n_train, n_test = min(n_train, FAST_POINTS[0]), min(n_test, FAST_POINTS[1])
    n_estimators = FAST_GBT_ESTIMATORS if fast else GBT_ESTIMATORS
    split_train, split_test = _split_sizes(codes.shape[0], n_train, n_test)
    order = np.random.default_rng(seed).permutation(codes.shape[0])
    train, test = order[:split_train], order[split_train : split_train + split_test]
    runs = {
        "beta_vae": (
            lambda: beta_vae_score(codes, factors, n_train=n_train, n_test=n_test, seed=seed),
            {"n_train": n_train, "n_test": n_test, "batch_size": BATCH_SIZE},
        ),
        "factor_vae": (
            lambda: factor_vae_score(codes, factors, n_train=n_train, n_test=n_test, seed=seed),
            {
                "n_train": n_train,
                "n_test": n_test,
                "batch_size": BATCH_SIZE,
                "n_variance": N_VARIANCE,
                "prune_std": PRUNE_STD,
            },
        ),
        "mig": (lambda: mig(codes[train], factors[train]), {"n_bins": N_BINS}),
        "dci": (
            lambda: dci(
                codes[train],
                factors[train],
                codes[test],
                factors[test],
                n_estimators=n_estimators,
                seed=seed,
                backend=dci_backend,
            ),
            {"n_estimators": n_estimators, "backend": dci_backend},
        ),
        "sap": (
            lambda: sap(codes[train], factors[train], codes[test], factors[test]),
            {"C": SAP_C},
        ),
        "modularity": (lambda: modularity(codes[train], factors[train]), {"n_bins": N_BINS}),
    }
    report: dict[str, Any] = {
        "n_points": int(codes.shape[0]),
        "latent_dim": int(codes.shape[1]),
        "n_factors": int(factors.shape[1]),
        "n_train": split_train,
        "n_test": split_test,
        "seed": seed,
        "fast": fast,
        "note": (
            f"fast=True: at most {FAST_POINTS[0]}/{FAST_POINTS[1]} points and "
            f"{FAST_GBT_ESTIMATORS} GBT stages; not comparable with published numbers"
            if fast
            else "disentanglement_lib unsupervised-study settings"
        ),
    }
    if (split_train, split_test) != (n_train, n_test):
        report["note"] += (
            f"; only {codes.shape[0]} points, so DCI, SAP, MIG and Modularity use a "
            f"{split_train}/{split_test} split instead of {n_train}/{n_test}"
        )
    seconds: dict[str, float] = {}
    for name, (run, settings) in runs.items():
        start = time.perf_counter()
        report[name] = {**run().as_dict(), "settings": settings}
        seconds[name] = time.perf_counter() - start
    report["seconds"] = seconds
    return report


def _disentanglement(ctx: Context) -> Result:
    split = ctx.data.train
    if split.factors is None:
        return skipped(f"{ctx.data.name} has no ground-truth factors (try shapes, dsprites)")
    s = ctx.settings
    posterior = ctx.posterior("train")
    factors = split.factors.numpy()
    report: Result = {"split": "train", "factor_names": list(ctx.data.factor_names)}
    kinds = ["map", "sample"] if ctx.run.model.capabilities.continuous_posterior else ["map"]
    for kind in kinds:
        codes = derive(posterior, kind, None, draws=1, seed=s.seed)
        report[kind] = disentanglement_report(
            codes, factors, seed=s.seed, fast=s.disentanglement_fast, dci_backend=s.dci_backend
        )
    return report


def _headline_scores(report: dict[str, Any]) -> dict[str, float]:
    """The scalar scores of one representation's report (nested dicts flattened one level)."""
    scores = {}
    for key, value in report.items():
        if isinstance(value, float):
            scores[key] = value
        elif isinstance(value, dict):
            scores.update({f"{key}.{k}": v for k, v in value.items() if isinstance(v, float)})
    return scores


def _summary(result: Result) -> list[str]:
    if "skipped" in result:
        return [f"  disentanglement skipped: {result['skipped']}"]
    return [
        f"  disentanglement ({kind}): "
        + ", ".join(f"{k} {v:.3f}" for k, v in _headline_scores(result[kind]).items())
        for kind in ("map", "sample")
        if kind in result
    ]


METRIC = Metric(
    "disentanglement",
    _disentanglement,
    values_at(
        {
            f"{score}_{kind}": (kind, *path)
            for kind in ("map", "sample")
            for score, path in {
                "beta_vae": ("beta_vae", "eval_accuracy"),
                "factor_vae": ("factor_vae", "eval_accuracy"),
                "mig": ("mig", "score"),
                "dci_disentanglement": ("dci", "disentanglement"),
                "dci_completeness": ("dci", "completeness"),
                "dci_informativeness": ("dci", "informativeness_test"),
                "sap": ("sap", "score"),
                "modularity": ("modularity", "score"),
            }.items()
        }
    ),
    _summary,
)
