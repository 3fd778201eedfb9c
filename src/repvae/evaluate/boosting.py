"""scikit-learn's ``GradientBoostingClassifier`` with LightGBM growing the trees: the same
algorithm and impurity-based feature importances, many times faster (DCI's classifiers).

scikit-learn fits each stage's regression trees (one per class, one in all for two classes) to
the negative log-loss gradient by squared error, then sets each leaf to one Newton step; a
feature's importance sums the squared-error reductions of its splits. LightGBM's own log-loss
objectives split on Newton gain instead (gradients weighted by hessians): on a beta-VAE's codes
its "gain" importances moved DCI scores by up to 0.027, its "split" counts by up to 0.05
(``results/dci-speed/``). So LightGBM is driven one stage at a time with a custom objective
whose hessian is 1: its split gain, and so its "gain" importance, is then exactly scikit-learn's
squared-error reduction, while the Newton leaf values are computed here from LightGBM's leaf
assignment, as scikit-learn computes them. With one bin per distinct value (``max_bin=None``)
the candidate splits are scikit-learn's too. Ties: where several features split a node's points
into the same two groups (duplicated or monotonically related code dimensions), scikit-learn
takes whichever it happens to try first, in a random order drawn at every node, while LightGBM
always keeps the lowest-numbered one; so each split's gain is shared here equally among the
features that give the same partition: scikit-learn's importance in expectation over its random
order (the partition, and so every later split, is the same whichever feature takes it). What is
left to differ: thresholds placed at bin bounds rather than halfway between a node's own points
(test points only), and LightGBM's float32 gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, softmax

# DCI's classifiers: "lightgbm", this module (the default), or "sklearn", disentanglement_lib's
# GradientBoostingClassifier itself
DCI_BACKENDS = ("lightgbm", "sklearn")
DCI_BACKEND = "lightgbm"
# scikit-learn's GradientBoostingClassifier defaults, as disentanglement_lib's DCI uses them
LEARNING_RATE = 0.1
MAX_DEPTH = 3


@dataclass(frozen=True)
class BoostedFit:
    """Importances ``[D]`` (summing to 1; all 0 when no tree split) and the accuracies."""

    importance: np.ndarray
    train_accuracy: float
    test_accuracy: float


def _start(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Initial raw predictions ``[T]``, targets ``[N, T]`` and the Newton step's factor.

    As scikit-learn: the log prior odds for two classes (one tree a stage), else the
    mean-centred log priors with (K - 1) / K times the Newton step (one tree per class).
    """
    n_classes = int(y.max()) + 1
    prior = np.bincount(y, minlength=n_classes) / y.size
    if n_classes == 2:
        eps = np.finfo(np.float64).eps
        p = np.clip(prior[1], eps, 1 - eps)
        return np.array([np.log(p / (1 - p))]), (y == 1).astype(np.float64)[:, None], 1.0
    log_prior = np.log(prior)
    target = np.eye(n_classes)[y]
    return log_prior - log_prior.mean(), target, (n_classes - 1) / n_classes


def _probabilities(raw: np.ndarray) -> np.ndarray:
    return expit(raw) if raw.shape[1] == 1 else softmax(raw, axis=1)


def _predict(raw: np.ndarray) -> np.ndarray:
    """Encoded classes, breaking ties as scikit-learn does."""
    return (raw[:, 0] >= 0).astype(np.int64) if raw.shape[1] == 1 else raw.argmax(axis=1)


def _fixed(
    gradient: np.ndarray, hessian: np.ndarray
) -> Callable[[np.ndarray, Any], tuple[np.ndarray, np.ndarray]]:
    """A LightGBM custom objective returning gradients and hessians computed beforehand."""
    return lambda _raw, _data: (gradient, hessian)


def _leaves(booster: Any, x: np.ndarray, stage: int) -> np.ndarray:
    """The leaf ``[N, T]`` of each point in each tree of one stage."""
    return np.asarray(booster.predict(x, start_iteration=stage, num_iteration=1, pred_leaf=True))


Ranges = dict[int, tuple[np.ndarray, np.ndarray]]  # leaf -> the min and max [D] of its points


def _leaf_ranges(x: np.ndarray, leaves: np.ndarray) -> Ranges:
    """Each leaf's per-feature minimum and maximum over the training points it holds (one pass
    over the points per tree; a node's ranges are then those of its leaves)."""
    order = np.argsort(leaves, kind="stable")
    ids, starts = np.unique(leaves[order], return_index=True)
    points = x[order]
    lows, highs = np.minimum.reduceat(points, starts), np.maximum.reduceat(points, starts)
    return {int(i): (lo, hi) for i, lo, hi in zip(ids, lows, highs, strict=True)}


def _shared_gain(
    node: dict[str, Any], ranges: Ranges, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Add the gain of every split below ``node`` (a tree of ``Booster.dump_model``) to ``out``
    ``[D]``, shared among the features that split the node's training points into the same two
    groups; returns the node's per-feature minimum and maximum."""
    if "split_feature" not in node:  # a leaf (a tree that never split has no leaf_index)
        return ranges[node.get("leaf_index", 0)]
    left_low, left_high = _shared_gain(node["left_child"], ranges, out)
    right_low, right_high = _shared_gain(node["right_child"], ranges, out)
    # a threshold on a feature separates the same two groups, in one direction or the other
    same = (left_high < right_low) | (right_high < left_low)
    same[node["split_feature"]] = True
    out[same] += node["split_gain"] / same.sum()
    return np.minimum(left_low, right_low), np.maximum(left_high, right_high)


def boosted_trees(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    n_estimators: int,
    learning_rate: float = LEARNING_RATE,
    max_depth: int = MAX_DEPTH,
    max_bin: int | None = None,
    seed: int = 0,
) -> BoostedFit:
    """Fit a gradient-boosted classifier of ``y_train`` (at least 2 classes) on ``x_train``
    as scikit-learn's ``GradientBoostingClassifier(n_estimators, learning_rate, max_depth)``
    would; ``max_bin=None`` bins every distinct value apart (as exact as LightGBM gets)."""
    import lightgbm  # here, not at the top: every `repvae` command imports this module's names and
    # LightGBM's own import took 0.9 s here (python -X importtime), for DCI alone

    classes, y = np.unique(y_train, return_inverse=True)
    if classes.size < 2:
        raise ValueError("boosted_trees needs at least 2 classes in y_train")
    # scikit-learn's trees split float32 features; so do these, for the same candidate splits
    x_train = np.asarray(x_train, dtype=np.float32)
    x_test = np.asarray(x_test, dtype=np.float32)
    raw0, target, step = _start(y)
    n_trees = target.shape[1]  # per stage
    n_leaves = 2**max_depth
    params: dict[str, Any] = {
        "objective": "none",  # gradients and hessians come from fobj below
        "num_class": n_trees,
        "learning_rate": learning_rate,
        "max_depth": max_depth,
        "num_leaves": n_leaves,  # best-first growth to a full depth-max_depth tree
        "min_data_in_leaf": 1,  # scikit-learn's min_samples_leaf
        "min_sum_hessian_in_leaf": 0.0,
        "lambda_l2": 0.0,
        "max_bin": max_bin or max(2, x_train.shape[0]),
        "min_data_in_bin": 1,
        "feature_pre_filter": False,
        "num_threads": 1,  # DCI runs one classifier per core
        "deterministic": True,
        "seed": seed,
        "verbose": -1,
    }
    booster = lightgbm.Booster(params=params, train_set=lightgbm.Dataset(x_train, params=params))
    raw = np.tile(raw0, (x_train.shape[0], 1))
    raw_test = np.tile(raw0, (x_test.shape[0], 1))
    unit_hessian = np.ones_like(raw) if n_trees > 1 else np.ones(x_train.shape[0])
    first_leaf = np.arange(n_trees) * n_leaves
    importance = np.zeros(x_train.shape[1])
    split_possible = True
    for _ in range(n_estimators):
        p = _probabilities(raw)
        residual = target - p
        gradient = -residual if n_trees > 1 else -residual[:, 0]
        leaves = np.zeros(raw.shape, dtype=np.int64)
        leaves_test = np.zeros(raw_test.shape, dtype=np.int64)
        if split_possible:
            stage = booster.current_iteration()
            booster.update(fobj=_fixed(gradient, unit_hessian))
            # LightGBM drops a stage in which no tree split; every later one would not split
            # either, and each of their trees is a single leaf holding every point.
            split_possible = booster.current_iteration() > stage
            if split_possible:
                leaves[:] = _leaves(booster, x_train, stage).reshape(raw.shape)
                leaves_test[:] = _leaves(booster, x_test, stage).reshape(raw_test.shape)
                trees = booster.dump_model(start_iteration=stage, num_iteration=1)["tree_info"]
                for t, tree in enumerate(trees):
                    ranges = _leaf_ranges(x_train, leaves[:, t])
                    _shared_gain(tree["tree_structure"], ranges, importance)
        # One Newton step per leaf: step * sum(residual) / sum(hessian), 0 where the hessian
        # vanishes (scikit-learn's _update_terminal_regions and _safe_divide).
        key = (first_leaf + leaves).ravel()
        size = n_trees * n_leaves
        numerator = np.bincount(key, weights=residual.ravel(), minlength=size)
        denominator = np.bincount(key, weights=(p * (1 - p)).ravel(), minlength=size)
        count = np.maximum(np.bincount(key, minlength=size), 1)
        value = np.divide(
            step * numerator,
            denominator,
            out=np.zeros(size),
            where=np.abs(denominator / count) >= 1e-150,
        ).reshape(n_trees, n_leaves)
        trees = np.arange(n_trees)
        raw += learning_rate * value[trees, leaves]
        raw_test += learning_rate * value[trees, leaves_test]
    total = importance.sum()
    return BoostedFit(
        importance=importance / total if total > 0 else importance,
        train_accuracy=float(np.mean(classes[_predict(raw)] == y_train)),
        test_accuracy=float(np.mean(classes[_predict(raw_test)] == y_test)),
    )
