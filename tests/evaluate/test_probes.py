"""Probes must measure what they claim: values on problems with known answers, not just shapes."""

import json

import numpy as np
import pytest
import torch

from repvae.evaluate import (
    PROBES,
    ProbeResult,
    knn_probe,
    linear_probe,
    linear_unscaled_probe,
    logistic_probe,
    mlp_probe,
    run_probes,
)

PROBE_FNS = {
    "linear": linear_probe,
    "linear-unscaled": linear_unscaled_probe,
    "mlp": mlp_probe,
    "knn": knn_probe,
    "logistic": logistic_probe,
}
# the probes that fit on every draw and average at test
TRAINED = ("linear", "linear-unscaled", "mlp", "logistic")
LABEL_NAMES = np.array([2, 5, 7, 11])  # non-contiguous on purpose: probes must map labels back


def blobs(n: int, *, d: int = 8, n_classes: int = 4, sep: float = 6.0, seed: int = 0):
    """Balanced Gaussian blobs (unit noise) around centres ``sep`` apart along the axes."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % n_classes)
    x = sep * np.eye(d)[y] + rng.normal(size=(n, d))
    return x.astype(np.float32), y


def rings(n: int, *, seed: int = 0):
    """Two concentric rings (radii 1 and 1.5): easy nonlinearly, near chance for a line."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    angle = rng.uniform(0, 2 * np.pi, n)
    radius = 1.0 + 0.5 * y + rng.normal(scale=0.1, size=n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1).astype(np.float32), y


def noisy_draws(n: int, k: int, *, seed: int = 0):
    """[N, K, 4] draws: class means ±0.5 per coordinate, each draw drowned in noise of std 2.

    One draw is right about 69% of the time at best; the mean of 16 draws about 98%.
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    mean = np.where(y[:, None] == 1, 0.5, -0.5) * np.ones((1, 4))
    x = mean[:, None, :] + rng.normal(scale=2.0, size=(n, k, 4))
    return x.astype(np.float32), y


@pytest.mark.parametrize("probe", PROBES)
def test_separable_blobs_are_classified_perfectly(probe: str) -> None:
    x, y = blobs(400, seed=0)
    tx, ty = blobs(200, seed=1)
    acc = PROBE_FNS[probe](x, LABEL_NAMES[y], tx, LABEL_NAMES[ty])
    assert acc >= 0.99


@pytest.mark.parametrize("probe", PROBES)
def test_pure_noise_gives_chance(probe: str) -> None:
    rng = np.random.default_rng(0)
    x, tx = rng.normal(size=(600, 16)), rng.normal(size=(1000, 16))
    y, ty = rng.integers(0, 4, 600), rng.integers(0, 4, 1000)
    acc = PROBE_FNS[probe](x, y, tx, ty)
    assert abs(acc - 0.25) < 0.07  # 5 standard errors of a 1000-image test set


def test_mlp_solves_what_a_line_cannot() -> None:
    x, y = rings(800, seed=0)
    tx, ty = rings(400, seed=1)
    linear = linear_probe(x, y, tx, ty)
    mlp = mlp_probe(x, y, tx, ty, batch_size=64, lr=1e-2)
    assert linear < 0.7
    assert mlp > 0.9


@pytest.mark.parametrize("probe", PROBES)
def test_averaging_over_draws_beats_a_single_draw(probe: str) -> None:
    x, y = noisy_draws(200, 16, seed=0)
    tx, ty = noisy_draws(300, 16, seed=1)
    single = PROBE_FNS[probe](x[:, :1], y, tx[:, :1], ty)
    averaged = PROBE_FNS[probe](x, y, tx, ty)
    assert single < 0.8
    assert averaged > 0.9


@pytest.mark.parametrize("probe", TRAINED)
def test_train_on_single_draws_test_on_many(probe: str) -> None:
    """The ``samples:K`` layout: [N, D] training draws, [N, K, D] test draws."""
    x, y = noisy_draws(1000, 1, seed=0)
    tx, ty = noisy_draws(300, 16, seed=1)
    assert PROBE_FNS[probe](x[:, 0], y, tx, ty) > 0.9


def test_one_draw_equals_plain_vectors() -> None:
    x, y = noisy_draws(200, 1, seed=0)
    tx, ty = noisy_draws(200, 1, seed=1)
    assert linear_probe(x, y, tx, ty) == linear_probe(x[:, 0], y, tx[:, 0], ty)


def knn_reference(train_x, train_y, test_x, k: int, temperature: float) -> np.ndarray:
    """Brute-force weighted cosine kNN, one test point at a time."""
    a = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    b = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    classes = np.unique(train_y)
    preds = []
    for sims in b.astype(np.float64) @ a.T.astype(np.float64):
        votes = dict.fromkeys(classes, 0.0)
        for j in np.argsort(-sims)[:k]:
            votes[train_y[j]] += np.exp(sims[j] / temperature)
        preds.append(max(votes, key=votes.get))
    return np.array(preds)


@pytest.mark.parametrize(("k", "temperature"), [(1, 0.07), (5, 0.07), (5, 1.0), (500, 0.5)])
def test_knn_matches_brute_force(k: int, temperature: float) -> None:
    x, y = blobs(60, d=5, n_classes=3, sep=1.0, seed=0)
    tx, ty = blobs(40, d=5, n_classes=3, sep=1.0, seed=1)
    y, ty = LABEL_NAMES[y], LABEL_NAMES[ty]
    expected = knn_reference(x, y, tx, k, temperature)
    assert 0.3 < np.mean(expected == ty) < 1.0  # a case where mistakes are possible
    # Scoring against the reference's predictions: 1.0 iff every prediction agrees.
    assert knn_probe(x, y, tx, expected, k=k, temperature=temperature) == 1.0
    acc = knn_probe(x, y, tx, ty, k=k, temperature=temperature)
    assert acc == pytest.approx(np.mean(expected == ty))


def test_knn_compares_means_of_draws() -> None:
    x, y = noisy_draws(100, 8, seed=0)
    tx, ty = noisy_draws(50, 8, seed=1)
    assert knn_probe(x, y, tx, ty, k=5) == knn_probe(x.mean(1), y, tx.mean(1), ty, k=5)


def test_mlp_is_reproducible_and_leaves_global_state_alone() -> None:
    x, y = blobs(300, sep=1.5, seed=0)
    tx, ty = blobs(300, sep=1.5, seed=1)
    state, threads = torch.get_rng_state(), torch.get_num_threads()
    first = mlp_probe(x, y, tx, ty, seed=3, max_epochs=20)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.get_num_threads() == threads
    assert mlp_probe(x, y, tx, ty, seed=3, max_epochs=20) == first


def test_tensors_and_arrays_give_the_same_result() -> None:
    x, y = blobs(200, sep=1.5, seed=0)
    tx, ty = blobs(100, sep=1.5, seed=1)
    as_tensors = [torch.from_numpy(a) for a in (x, y, tx, ty)]
    assert linear_probe(*as_tensors) == linear_probe(x, y, tx, ty)
    assert knn_probe(*as_tensors) == knn_probe(x, y, tx, ty)


def test_split_protocol_reports_sizes() -> None:
    x, y = blobs(120, seed=0)
    tx, ty = blobs(80, seed=1)
    results = run_probes(x, y, tx, ty, probes=("linear", "knn"))
    assert [r.probe for r in results] == ["linear", "knn"]
    for r in results:
        assert r.protocol == "split"
        assert (r.n_train, r.n_test) == (120, 80)
        assert r.folds == (r.accuracy,)
        assert r.std == 0.0
        assert r.seconds > 0


def test_cv_protocol_statistics() -> None:
    x, y = blobs(200, sep=1.5, seed=0)
    tx, ty = blobs(50, sep=1.5, seed=1)
    results = run_probes(x, y, tx, ty, probes=("linear", "knn", "logistic"), protocol="cv")
    for r in results:
        assert r.protocol == "cv5"
        assert len(r.folds) == 5
        assert len(set(r.folds)) > 1  # the folds really differ
        assert r.accuracy == pytest.approx(np.mean(r.folds))
        assert r.std == pytest.approx(np.std(r.folds))
        assert (r.n_train, r.n_test) == (200, 50)


def test_cv_is_deterministic_and_fold_count_follows_the_protocol() -> None:
    x, y = blobs(90, sep=1.5, seed=0)
    tx, ty = blobs(30, sep=1.5, seed=1)

    def run(seed: int) -> list[dict]:
        results = run_probes(x, y, tx, ty, probes=PROBES, protocol="cv3", seed=seed, max_epochs=10)
        return [{**r.as_dict(), "seconds": None} for r in results]

    first = run(seed=0)
    assert run(seed=0) == first
    assert all(r["protocol"] == "cv3" and len(r["folds"]) == 3 for r in first)
    assert (first[0]["n_train"], first[0]["n_test"]) == (80, 40)


def test_linear_unscaled_reads_the_features_as_they_are() -> None:
    # the class signal sits in a dimension spread 1e-3 wide, beside unit noise: standardised it
    # is easy; unscaled, C = 1 cannot afford the weight it needs (~1e3)
    rng = np.random.default_rng(0)
    y = np.arange(400) % 2
    x = np.stack([1e-3 * (2 * y - 1 + 0.3 * rng.normal(size=400)), rng.normal(size=400)], 1)
    x, tx, y, ty = x[:200], x[200:], y[:200], y[200:]
    assert linear_probe(x, y, tx, ty) > 0.95
    assert linear_unscaled_probe(x, y, tx, ty) < 0.7
    [result] = run_probes(x, y, tx, ty, probes=("linear-unscaled",))
    assert result.accuracy == linear_unscaled_probe(x, y, tx, ty)


def test_options_reach_the_probes_that_take_them() -> None:
    x, y = blobs(100, sep=1.0, seed=0)
    tx, ty = blobs(100, sep=1.0, seed=1)
    [knn, linear] = run_probes(x, y, tx, ty, probes=("knn", "linear"), k=1, C=0.001)
    assert knn.accuracy == knn_probe(x, y, tx, ty, k=1)
    assert linear.accuracy == linear_probe(x, y, tx, ty, C=0.001)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"probes": ("linear", "svm")}, ValueError),
        ({"protocol": "holdout"}, ValueError),
        ({"protocol": "cv1"}, ValueError),
        ({"probes": ("linear",), "hidden": 10}, TypeError),
    ],
)
def test_bad_arguments_are_rejected(kwargs: dict, error: type[Exception]) -> None:
    x, y = blobs(40, seed=0)
    with pytest.raises(error):
        run_probes(x, y, x, y, **kwargs)


def test_result_is_json_ready() -> None:
    result = ProbeResult("knn", "cv5", 0.5, 0.1, (0.4, 0.6), 8, 2, 0.01)
    assert json.loads(json.dumps(result.as_dict()))["folds"] == [0.4, 0.6]
