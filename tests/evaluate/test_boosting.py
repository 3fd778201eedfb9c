"""LightGBM-grown boosted trees against scikit-learn's GradientBoostingClassifier, which they
reproduce: the same trees, Newton leaf values, impurity-based importances and predictions."""

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from repvae.evaluate.boosting import boosted_trees


def labelled_points(n_classes: int, n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noisy codes of a label in two dimensions, two noise dimensions, distinct values."""
    rng = np.random.default_rng(seed)
    y = rng.integers(n_classes, size=n)
    x = np.column_stack([y + rng.normal(0, 0.8, n), -y + rng.normal(0, 1.5, n)])
    return np.column_stack([x, rng.normal(size=(n, 2))]), y


@pytest.mark.parametrize("n_classes", [2, 5], ids=["binary", "multiclass"])
def test_trees_without_tied_splits_reproduce_sklearns_importances_and_accuracies(n_classes):
    """Depth-2 trees over 400 points leave no node so small that two splits tie (scikit-learn
    breaks ties at random, LightGBM by feature order, which is all that differs at DCI's depth
    3): the trees, importances and predictions are then scikit-learn's own."""
    x, y = labelled_points(n_classes)
    train, test = slice(None, 400), slice(400, None)
    sklearn = GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0)
    sklearn.fit(x[train], y[train])
    fit = boosted_trees(x[train], y[train], x[test], y[test], n_estimators=20, max_depth=2)
    np.testing.assert_allclose(fit.importance, sklearn.feature_importances_, atol=1e-7)
    assert fit.train_accuracy == sklearn.score(x[train], y[train])
    assert fit.test_accuracy == sklearn.score(x[test], y[test])


def test_constant_features_have_no_importance_and_predict_the_commonest_class():
    _, y = labelled_points(4)
    x = np.full((y.size, 3), 0.7)
    fit = boosted_trees(x[:400], y[:400], x[400:], y[400:], n_estimators=5)
    sklearn = GradientBoostingClassifier(n_estimators=5).fit(x[:400], y[:400])
    np.testing.assert_array_equal(fit.importance, np.zeros(3))
    assert fit.train_accuracy == sklearn.score(x[:400], y[:400])
    assert fit.test_accuracy == sklearn.score(x[400:], y[400:])


def test_a_single_class_is_refused():
    x, _ = labelled_points(2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        boosted_trees(x, np.zeros(len(x), int), x, np.zeros(len(x), int), n_estimators=5)


def test_a_split_that_two_features_make_alike_is_shared_and_an_unrelated_one_gets_nothing():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 600)
    copy = 3.0 * y + rng.normal(0, 1e-3, 600)  # a monotone copy of the class code
    mirrored = -y + rng.normal(0, 1e-3, 600)  # the same partitions, the other way round
    x = np.stack([y + rng.normal(0, 1e-3, 600), copy, mirrored, rng.normal(size=600)], 1)
    fit = boosted_trees(x[:400], y[:400], x[400:], y[400:], n_estimators=5)
    np.testing.assert_allclose(fit.importance[:3], 1 / 3, atol=1e-9)
    assert fit.importance[3] < 1e-12 and fit.test_accuracy == 1.0
