"""Label efficiency on problems with known answers, and a sampler that is exactly balanced."""

import json

import numpy as np
import pytest

from repvae.data.splits import balanced_subset
from repvae.evaluate import label_efficiency as le
from repvae.evaluate.label_efficiency import label_efficiency


def blobs(n: int, *, seed: int, sep: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Three balanced Gaussian blobs (unit noise) ``sep`` apart along the axes: separable."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 3)
    return (sep * np.eye(4)[y] + rng.normal(size=(n, 4))).astype(np.float32), y


@pytest.mark.parametrize("n", [3, 30, 99, 300])
def test_balanced_subset_has_n_over_c_points_per_class(n: int) -> None:
    labels = np.repeat([4, 7, 9], [200, 150, 400])  # unequal classes, non-contiguous names
    idx = balanced_subset(labels, n, np.random.default_rng(0))
    assert len(np.unique(idx)) == len(idx) == n
    np.testing.assert_array_equal(np.unique(labels[idx], return_counts=True)[1], [n // 3] * 3)


def test_balanced_subset_spreads_the_remainder_over_distinct_classes() -> None:
    labels = np.arange(300) % 3
    for seed in range(10):
        idx = balanced_subset(labels, 32, np.random.default_rng(seed))  # 10 each + 2 extra
        assert sorted(np.bincount(labels[idx])) == [10, 11, 11]


def test_balanced_subset_takes_all_of_a_small_class() -> None:
    labels = np.repeat([0, 1, 2], [100, 100, 5])
    for seed in range(10):
        counts = np.bincount(labels[balanced_subset(labels, 30, np.random.default_rng(seed))])
        np.testing.assert_array_equal(counts, [10, 10, 5])  # no redistribution of the shortfall


def test_balanced_subset_is_seeded_and_random() -> None:
    labels = np.arange(1000) % 10
    a = balanced_subset(labels, 100, np.random.default_rng(0))
    np.testing.assert_array_equal(a, balanced_subset(labels, 100, np.random.default_rng(0)))
    assert not np.array_equal(a, balanced_subset(labels, 100, np.random.default_rng(1)))


@pytest.mark.parametrize("probe", ["logistic", "knn"])
def test_separable_blobs_are_classified_perfectly_at_every_size(probe: str) -> None:
    x, y = blobs(600, seed=0)
    tx, ty = blobs(300, seed=1)
    report = label_efficiency(x, y, tx, ty, sizes=(30, 300, None), draws=3, probe=probe)
    assert [r["size"] for r in report["sizes"]] == [30, 300, "all"]
    assert [r["n_used"] for r in report["sizes"]] == [[30] * 3, [300] * 3, [600]]
    for row in report["sizes"]:
        assert row["mean"] >= 0.99 and len(row["accuracies"]) == len(row["n_used"])
    assert report["statistical_efficiency"] is None  # neither 100 nor 10,000 was run
    assert json.loads(json.dumps(report)) == report


def test_noise_labels_give_chance_accuracy() -> None:
    rng = np.random.default_rng(0)
    x, tx = rng.normal(size=(900, 8)), rng.normal(size=(900, 8))
    y, ty = rng.integers(0, 3, 900), rng.integers(0, 3, 900)
    report = label_efficiency(x, y, tx, ty, sizes=(30, 300), draws=5)
    for row in report["sizes"]:
        assert abs(row["mean"] - 1 / 3) < 0.05


def test_results_depend_only_on_the_seed() -> None:
    rng = np.random.default_rng(0)
    x, tx = rng.normal(size=(300, 4)), rng.normal(size=(300, 4))
    y, ty = rng.integers(0, 3, 300), rng.integers(0, 3, 300)

    def run(seed: int) -> list[list[float]]:
        report = label_efficiency(x, y, tx, ty, sizes=(30,), draws=4, seed=seed)
        return [row["accuracies"] for row in report["sizes"]]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_statistical_efficiency_is_acc_100_over_acc_10000(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake probe whose accuracy is a known function of the number of labels it gets."""
    calls: list[int] = []

    def fake_probe(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> float:
        calls.append(len(y))
        return {10: 0.2, 100: 0.45, 10000: 0.9, 12000: 0.95}[len(y)]

    monkeypatch.setitem(le._PROBES, "logistic", fake_probe)
    x, y = np.zeros((12000, 2)), np.arange(12000) % 10
    report = label_efficiency(x, y, x[:5], y[:5], sizes=(10, 100, 10000, 20000, None), draws=2)
    assert calls == [10, 10, 100, 100, 10000, 10000, 12000]
    assert report["statistical_efficiency"] == pytest.approx(0.45 / 0.9)
    assert [r["mean"] for r in report["sizes"]] == [0.2, 0.45, 0.9, 0.95]
    assert report["sizes"][0]["std"] == 0.0
    assert report["notes"] == ["size 20000 skipped: only 12000 training points"]
    assert report["protocol"] == {
        "probe": "logistic",
        "draws": 2,
        "seed": 0,
        "class_balanced": True,
        "n_train": 12000,
        "n_test": 5,
        "n_classes": 10,
    }
    missing = label_efficiency(x, y, x[:5], y[:5], sizes=(100, None), draws=1)
    assert missing["statistical_efficiency"] is None


def test_small_sizes_are_skipped_or_noted() -> None:
    x, y = blobs(60, seed=0)
    report = label_efficiency(x, y, x, y, sizes=(2, 12), draws=1, probe="knn")
    assert [r["size"] for r in report["sizes"]] == [12]
    assert report["notes"] == [
        "size 2 skipped: fewer labels than the 3 classes",
        "size 12: kNN with k = 12 (fewer than 20 labels)",
    ]
    with pytest.raises(ValueError, match="unknown probe"):
        label_efficiency(x, y, x, y, probe="svm")
