"""Disentanglement metrics against known answers: ideal, rotated, uninformative, duplicated and
constant codes of independent synthetic factors, and MIG/Modularity computed by hand."""

import contextlib
import functools
import json
import math
import os
import warnings

import lightgbm
import numpy as np
import pytest

from repvae.evaluate.disentanglement import (
    beta_vae_score,
    dci,
    dci_completeness,
    dci_disentanglement,
    disentanglement_report,
    factor_vae_score,
    mig,
    modularity,
    sap,
)

SIZES = (3, 4, 5, 6, 8)  # values per factor
N, N_TRAIN = 2000, 1400  # points; the first N_TRAIN train DCI and SAP, the rest test them
CLASSIFIER_POINTS = 500  # BetaVAE / FactorVAE classifier points, train and test each
N_ESTIMATORS = 5


def make_factors(n: int = N, seed: int = 0) -> np.ndarray:
    """Independent factors, each uniform over its values."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(size, size=n) for size in SIZES], axis=1)


FACTORS = make_factors()
F = len(SIZES)


def make_codes(kind: str, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ideal = FACTORS.astype(np.float64)
    if kind == "identity":
        return ideal + 1e-3 * rng.normal(size=ideal.shape)
    if kind == "rotation":
        rotation, _ = np.linalg.qr(rng.normal(size=(F, F)))
        return (ideal - ideal.mean(axis=0)) / ideal.std(axis=0) @ rotation
    if kind == "noise":
        return rng.normal(size=ideal.shape)
    if kind == "duplicated":  # factor k in dims 2k and 2k+1
        return np.repeat(ideal, 2, axis=1) + 1e-3 * rng.normal(size=(N, 2 * F))
    if kind == "constant":
        return np.full((N, F), 0.7)
    raise ValueError(kind)


@functools.cache
def scores(kind: str) -> dict:
    """All six metrics of one kind of code; any RuntimeWarning (NaN, division by 0) fails."""
    codes, tr, te = make_codes(kind), slice(None, N_TRAIN), slice(N_TRAIN, None)
    points = {"n_train": CLASSIFIER_POINTS, "n_test": CLASSIFIER_POINTS}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return {
            "beta_vae": beta_vae_score(codes, FACTORS, **points),
            "factor_vae": factor_vae_score(codes, FACTORS, **points),
            "mig": mig(codes, FACTORS),
            "dci": dci(codes[tr], FACTORS[tr], codes[te], FACTORS[te], n_estimators=N_ESTIMATORS),
            "sap": sap(codes[tr], FACTORS[tr], codes[te], FACTORS[te]),
            "modularity": modularity(codes, FACTORS),
        }


def majority_accuracy() -> float:
    """Chance level of DCI informativeness: always predict each factor's commonest train value."""
    train, test = FACTORS[:N_TRAIN], FACTORS[N_TRAIN:]
    return float(
        np.mean([np.mean(test[:, k] == np.bincount(train[:, k]).argmax()) for k in range(F)])
    )


def test_ideal_codes_score_near_one():
    s = scores("identity")
    assert s["beta_vae"].eval_accuracy > 0.95
    assert s["factor_vae"].eval_accuracy > 0.95
    assert s["factor_vae"].num_active_dims == F
    assert s["mig"].score > 0.9
    assert s["dci"].disentanglement > 0.9
    assert s["dci"].completeness > 0.9
    assert s["dci"].informativeness_test > 0.95
    assert s["modularity"].score > 0.9
    # A single-dimension linear SVM cannot carve out the middle values of a many-valued factor,
    # so SAP stays well below 1 even here; but each factor's best dimension is its own.
    assert s["sap"].score > 0.3
    np.testing.assert_array_equal(s["sap"].score_matrix.argmax(axis=0), np.arange(F))


def test_rotation_entangles_without_losing_information():
    ideal, rotated = scores("identity"), scores("rotation")
    assert rotated["mig"].score < 0.5 * ideal["mig"].score
    assert rotated["dci"].disentanglement < 0.5 * ideal["dci"].disentanglement
    assert rotated["dci"].completeness < 0.5 * ideal["dci"].completeness
    assert rotated["sap"].score < 0.5 * ideal["sap"].score
    # The factors are still readable from the rotated codes, far above chance.
    assert rotated["dci"].informativeness_test > majority_accuracy() + 0.2


def test_noise_scores_chance():
    s = scores("noise")
    assert s["mig"].score < 0.05
    assert abs(s["dci"].informativeness_test - majority_accuracy()) < 0.05
    assert s["dci"].disentanglement < 0.2
    assert abs(s["factor_vae"].eval_accuracy - 1 / F) < 0.1
    assert abs(s["beta_vae"].eval_accuracy - 1 / F) < 0.1
    assert s["sap"].score < 0.05


def test_duplicated_factors_close_the_mig_gap():
    s = scores("duplicated")
    assert s["mig"].score < 0.02  # both copies are equally informative: no gap
    assert s["sap"].score < 0.02
    assert s["dci"].informativeness_test > 0.95
    assert s["dci"].disentanglement > 0.9  # each dimension still serves one factor...
    assert s["dci"].completeness < 0.8  # ...but each factor is spread over two (1 - log_10 2)
    assert s["factor_vae"].num_active_dims == 2 * F


def test_constant_codes_score_zero_or_chance():
    s = scores("constant")
    fvae = s["factor_vae"]
    assert (fvae.num_active_dims, fvae.train_accuracy, fvae.eval_accuracy) == (0, 0.0, 0.0)
    assert "no active dimension" in fvae.note
    assert s["mig"].score == 0.0
    assert s["modularity"].score == 0.0
    assert s["sap"].score == 0.0
    assert s["dci"].disentanglement == 0.0
    assert s["dci"].completeness == 0.0
    assert abs(s["dci"].informativeness_test - majority_accuracy()) < 0.05
    assert abs(s["beta_vae"].eval_accuracy - 1 / F) < 0.1


def test_factor_vae_counts_active_dims():
    """Collapsed dims are pruned and counted out (disentanglement_lib reported len(mask))."""
    codes = make_codes("identity")
    codes = np.concatenate([codes, 0.01 * np.random.default_rng(2).normal(size=(N, 2))], axis=1)
    result = factor_vae_score(codes, FACTORS, n_train=CLASSIFIER_POINTS, n_test=CLASSIFIER_POINTS)
    assert result.num_active_dims == F
    np.testing.assert_array_equal(result.active_dims, np.arange(F))
    assert result.eval_accuracy > 0.95


def grid(*sizes: int, repeat: int = 4) -> np.ndarray:
    """Every combination of factor values, ``repeat`` times: factors exactly independent."""
    combos = np.stack(np.meshgrid(*map(np.arange, sizes), indexing="ij"), -1).reshape(
        -1, len(sizes)
    )
    return np.tile(combos, (repeat, 1))


@pytest.mark.parametrize(
    ("code_of", "sizes", "per_factor"),
    [
        # dim 0 = factor 0, dim 1 constant: factor 0 fully captured by one dimension, factor 1
        # by none.
        (lambda f: np.stack([f[:, 0], np.zeros(len(f))], 1), (2, 3), [1.0, 0.0]),
        # dim 0 = factor 0 (MI log 4), dim 1 = factor 0 // 2 (MI log 2): gap (log 4 - log 2) /
        # log 4 = 1/2.
        (lambda f: np.stack([f[:, 0], f[:, 0] // 2], 1), (4, 3), [0.5, 0.0]),
    ],
)
def test_mig_by_hand(code_of, sizes, per_factor):
    factors = grid(*sizes)
    result = mig(code_of(factors).astype(float), factors)
    np.testing.assert_allclose(result.per_factor, per_factor, atol=1e-12)
    assert result.score == pytest.approx(np.mean(per_factor))
    np.testing.assert_allclose(result.factor_entropy, [math.log(s) for s in sizes])


def test_modularity_by_hand():
    factors = grid(2, 3)
    # dim 0 informs about factor 0 only (modularity 1), dim 1 about nothing (0 by convention).
    codes = np.stack([factors[:, 0], np.zeros(len(factors))], 1).astype(float)
    np.testing.assert_allclose(modularity(codes, factors).per_code, [1.0, 0.0], atol=1e-12)
    # dim 0 informs equally about both factors (MI log 2 each): 1 - 1 / (1 * (F - 1)) = 0.
    factors = grid(2, 2)
    codes = np.stack([2 * factors[:, 0] + factors[:, 1], factors[:, 0]], 1).astype(float)
    assert modularity(codes, factors).per_code[0] == pytest.approx(0.0, abs=1e-12)


def report_without_timing(**kwargs) -> dict:
    report = disentanglement_report(make_codes("identity")[:600], FACTORS[:600], **kwargs)
    del report["seconds"]
    return report


def test_report_is_json_ready_deterministic_and_records_settings():
    report = report_without_timing(fast=True, seed=3)
    assert json.loads(json.dumps(report)) == report
    assert report == report_without_timing(fast=True, seed=3)
    assert report["fast"] is True and "fast=True" in report["note"]
    # fast caps the points at 2000/1000; 600 points are then split in the same 2:1 ratio.
    assert (report["n_train"], report["n_test"]) == (400, 200)
    assert "400/200 split instead of 2000/1000" in report["note"]
    assert report["beta_vae"]["settings"] == {"n_train": 2000, "n_test": 1000, "batch_size": 64}
    assert report["factor_vae"]["num_active_dims"] == F
    assert report["dci"]["settings"] == {"n_estimators": 10, "backend": "lightgbm"}
    assert report["mig"]["score"] > 0.9
    assert report["beta_vae"]["eval_accuracy"] > 0.95


def test_the_report_records_which_backend_grew_dcis_trees():
    report = report_without_timing(fast=True, dci_backend="sklearn")
    assert report["dci"]["settings"] == {"n_estimators": 10, "backend": "sklearn"}
    assert report["dci"]["informativeness_test"] > 0.95


def test_results_are_deterministic_for_a_seed():
    codes = make_codes("rotation")
    first = beta_vae_score(codes, FACTORS, n_train=200, n_test=200, seed=0)
    assert first == beta_vae_score(codes, FACTORS, n_train=200, n_test=200, seed=0)
    assert first != beta_vae_score(codes, FACTORS, n_train=200, n_test=200, seed=1)
    votes = {"n_train": 200, "n_test": 200}
    first = factor_vae_score(codes, FACTORS, **votes, seed=0)
    again = factor_vae_score(codes, FACTORS, **votes, seed=0)
    assert (first.train_accuracy, first.eval_accuracy) == (
        again.train_accuracy,
        again.eval_accuracy,
    )


CODES = make_codes("identity")
NAN_CODES = CODES.copy()
NAN_CODES[5, 2] = np.nan


@pytest.mark.parametrize(
    ("codes", "factors", "match"),
    [
        (CODES[:, 0], FACTORS, "non-empty"),
        (CODES, FACTORS[:, 0], r"\[N, F\]"),
        (CODES, FACTORS.astype(float), "integer"),
        (CODES[:-1], FACTORS, "rows"),
        (CODES[:, :1], FACTORS, "at least 2 dimensions"),
        (CODES, FACTORS[:, :1], "at least 2 factors"),
        (CODES, np.column_stack([FACTORS, np.zeros(N, int)]), "single value"),
        (NAN_CODES, FACTORS, "NaN"),
    ],
)
def test_bad_input_raises(codes, factors, match):
    for metric in (beta_vae_score, factor_vae_score, mig, modularity, disentanglement_report):
        with pytest.raises(ValueError, match=match):
            metric(codes, factors)
    for metric in (dci, sap):
        with pytest.raises(ValueError, match=match):
            metric(codes, factors, CODES, FACTORS)


def test_train_and_test_widths_must_match():
    for metric in (dci, sap):
        with pytest.raises(ValueError, match="differ in width"):
            metric(CODES, FACTORS, CODES[:, :3], FACTORS)


def _child_processes() -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = open(f"/proc/{entry}/stat").read()  # noqa: SIM115
            if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid():
                children.add(int(entry))
    return children


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the process table in /proc")
def test_dci_leaves_no_worker_processes_behind():
    """joblib's default worker processes outlived the call and kept a finished study's worker
    process from exiting; DCI's per-factor classifiers run in threads instead."""
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, 3, 400), rng.integers(0, 4, 400)], axis=1)
    codes = factors + rng.normal(0, 0.1, factors.shape)
    before = _child_processes()
    dci(codes[:300], factors[:300], codes[300:], factors[300:], n_estimators=5)
    assert _child_processes() - before == set()


# disentanglement_lib's own known answers for the two scores of an importance matrix
# (evaluation/metrics/dci_test.py: DisentanglementTest and CompletenessTest)
_DIAGONAL = np.diag(5.0 * np.ones(5))
_ONE_MINUS_LOG2 = 1.0 - np.log(2) / np.log(10)


@pytest.mark.parametrize(
    ("importance", "disentanglement", "completeness"),
    [
        (_DIAGONAL, 1.0, 1.0),
        (np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]), 1.0, 1.0),  # an empty code
        (np.zeros((10, 10)), 0.0, 0.0),
        (np.vstack([_DIAGONAL, _DIAGONAL]), 1.0, _ONE_MINUS_LOG2),  # redundant codes
        (_DIAGONAL[:2, :], 1.0, 1.0),  # missed factors: weighted by factor importance
        (np.hstack([_DIAGONAL, _DIAGONAL]), _ONE_MINUS_LOG2, 1.0),  # one code, two factors
    ],
    ids=["diagonal", "empty_codes", "zero", "redundant_codes", "missed_factors", "two_factors"],
)
def test_dci_scores_match_disentanglement_libs_known_answers(
    importance, disentanglement, completeness
):
    assert dci_disentanglement(importance) == pytest.approx(disentanglement, abs=1e-7)
    assert dci_completeness(importance) == pytest.approx(completeness, abs=1e-7)


def test_the_lightgbm_backend_scores_within_0_01_of_sklearn_where_lightgbms_objective_does_not():
    """The fast backend must keep disentanglement_lib's scores: on rotated codes (each factor
    spread over every dimension, so the importances depend on how splits are scored) it stays
    within 0.01 of scikit-learn's classifier, while LightGBM's own log-loss objective, which
    splits on Newton gain, misses by more."""
    codes, tr, te = make_codes("rotation"), slice(None, N_TRAIN), slice(N_TRAIN, None)
    args, stages = (codes[tr], FACTORS[tr], codes[te], FACTORS[te]), 30
    exact = dci(*args, n_estimators=stages, backend="sklearn")
    fast = dci(*args, n_estimators=stages, backend="lightgbm")
    scores = ("disentanglement", "completeness", "informativeness_train", "informativeness_test")
    for score in scores:
        assert abs(getattr(fast, score) - getattr(exact, score)) <= 0.01, score
    newton = np.stack(
        [
            lightgbm.LGBMClassifier(
                n_estimators=stages,
                max_depth=3,
                num_leaves=8,
                min_child_samples=1,
                reg_lambda=0.0,
                max_bin=N_TRAIN,
                min_data_in_bin=1,
                importance_type="gain",
                n_jobs=1,
                verbose=-1,
            )
            .fit(codes[tr], FACTORS[tr, k])
            .feature_importances_
            for k in range(F)
        ],
        axis=1,
    )
    assert abs(dci_disentanglement(newton) - exact.disentanglement) > 0.02
    assert abs(dci_completeness(newton) - exact.completeness) > 0.02


def test_dci_refuses_an_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        dci(CODES, FACTORS, CODES, FACTORS, backend="xgboost")


def test_the_lightgbm_backend_shares_tied_splits_as_sklearns_random_order_does():
    """Two copies of a factor split every node alike: scikit-learn picks between them at random
    and so spreads the importance; LightGBM alone would give it all to the first copy
    (completeness 1.0), so the backend shares each tied split's gain equally."""
    codes, tr, te = make_codes("duplicated"), slice(None, N_TRAIN), slice(N_TRAIN, None)
    args = (codes[tr], FACTORS[tr], codes[te], FACTORS[te])
    exact = dci(*args, n_estimators=N_ESTIMATORS, backend="sklearn")
    fast = dci(*args, n_estimators=N_ESTIMATORS, backend="lightgbm")
    assert exact.completeness < 0.8
    assert abs(fast.completeness - exact.completeness) < 0.01
    assert abs(fast.completeness - (1 - np.log10(2))) < 1e-3  # exactly half to each copy
    assert abs(fast.disentanglement - exact.disentanglement) < 0.01
