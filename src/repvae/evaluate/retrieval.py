"""Retrieval quality from ranked neighbours: mean average precision over the top k (relevant =
the query's class) and 1-NN accuracy.

AP@k of one query is the mean of precision@i over the ranks i <= k that hold a relevant item,
divided by min(k, number of relevant items in the database), so a perfect top-k scores 1 even
when the class has more than k members (the usual mAP@k of image retrieval). With k = the
database size it is the full average precision (scikit-learn's ``average_precision_score`` on
the ranking, tested).
"""

from __future__ import annotations

import numpy as np


def average_precision_at_k(
    neighbour_labels: np.ndarray, query_labels: np.ndarray, relevant: np.ndarray
) -> np.ndarray:
    """AP@k per query: ``neighbour_labels`` [Q, k] best first, ``relevant`` [Q] the number of
    database items of each query's class."""
    k = neighbour_labels.shape[1]
    hits = neighbour_labels == np.asarray(query_labels)[:, None]
    precision = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    denominator = np.minimum(np.asarray(relevant), k)
    return (precision * hits).sum(axis=1) / np.maximum(denominator, 1)


def class_counts(database_labels: np.ndarray, query_labels: np.ndarray) -> np.ndarray:
    """How many database items share each query's label."""
    values, counts = np.unique(database_labels, return_counts=True)
    lookup = dict(zip(values.tolist(), counts.tolist(), strict=True))
    return np.array([lookup.get(int(y), 0) for y in query_labels])


def retrieval_scores(
    neighbour_labels: np.ndarray, query_labels: np.ndarray, database_labels: np.ndarray
) -> dict[str, float]:
    """mAP@k and 1-NN accuracy of ranked neighbours [Q, k]."""
    relevant = class_counts(database_labels, query_labels)
    k = neighbour_labels.shape[1]
    return {
        f"map@{k}": float(average_precision_at_k(neighbour_labels, query_labels, relevant).mean()),
        "nn1_accuracy": float((neighbour_labels[:, 0] == query_labels).mean()),
    }
