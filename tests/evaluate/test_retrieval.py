"""Retrieval metrics against their definitions and scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from repvae.evaluate.retrieval import average_precision_at_k, class_counts, retrieval_scores


def test_average_precision_over_the_whole_ranking_is_scikit_learns():
    rng = np.random.default_rng(0)
    database = rng.integers(0, 3, 40)
    scores = rng.normal(size=40)
    ranking = database[np.argsort(-scores)]
    ours = average_precision_at_k(ranking[None], np.array([1]), class_counts(database, [1]))
    assert ours[0] == pytest.approx(average_precision_score(database == 1, scores))


def test_a_perfect_top_k_scores_one_and_a_hand_case_its_value():
    neighbours = np.array([[2, 2, 2], [1, 0, 1]])
    ap = average_precision_at_k(neighbours, np.array([2, 1]), np.array([10, 2]))
    # query 2: hits at ranks 1 and 3 of 2 relevant: (1/1 + 2/3) / 2
    assert ap.tolist() == pytest.approx([1.0, (1 + 2 / 3) / 2])
    scores = retrieval_scores(neighbours, np.array([2, 1]), np.array([2] * 10 + [1, 1]))
    assert scores == {"map@3": pytest.approx((1 + 5 / 6) / 2), "nn1_accuracy": 1.0}
