import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from repvae.evaluate.paired import equivalence_over_seeds, paired_over_seeds, paired_test


def _predictions(both: int, only_a: int, only_b: int, neither: int):
    """Labels all 0; each classifier predicts 0 (right) or 1 (wrong) in the given pattern."""
    a = [0] * both + [0] * only_a + [1] * only_b + [1] * neither
    b = [0] * both + [1] * only_a + [0] * only_b + [1] * neither
    return np.array(a), np.array(b), np.zeros(len(a), dtype=int)


def _exact_two_sided(k: int, n: int) -> float:
    """Two-sided binomial(n, 1/2) p-value, summed directly from the pmf."""
    tail = sum(math.comb(n, i) for i in range(max(k, n - k), n + 1)) / 2**n
    return min(1.0, 2 * tail)


def test_counts_difference_interval_and_exact_p_value():
    a, b, y = _predictions(both=900, only_a=30, only_b=10, neither=60)
    r = paired_test(a, b, y)
    assert (r["both_right"], r["only_a_right"], r["only_b_right"], r["both_wrong"]) == (
        900,
        30,
        10,
        60,
    )
    assert r["accuracy_a"] == pytest.approx(0.93) and r["accuracy_b"] == pytest.approx(0.91)
    assert r["difference"] == pytest.approx(0.02)
    se = math.sqrt(40 - 20**2 / 1000) / 1000
    assert r["std_error"] == pytest.approx(se)
    assert r["interval"] == pytest.approx([0.02 - 1.959964 * se, 0.02 + 1.959964 * se], rel=1e-5)
    assert r["mcnemar_exact_p"] == pytest.approx(_exact_two_sided(30, 40))
    assert 0.001 < r["mcnemar_exact_p"] < 0.01


def test_identical_classifiers_do_not_differ():
    a, _, y = _predictions(both=0, only_a=70, only_b=0, neither=30)
    r = paired_test(a, a, y)
    assert r["difference"] == 0 and r["interval"] == [0, 0] and r["mcnemar_exact_p"] == 1.0


def test_pairing_detects_a_gap_that_separate_binomial_errors_miss():
    # B is right on a subset of A's right answers: a one-point gap on 10,000 images. Each
    # accuracy's own binomial standard error is ~0.5 points, so the two intervals overlap; the
    # paired test sees 100 discordant images all in A's favour.
    a, b, y = _predictions(both=3_900, only_a=100, only_b=0, neither=6_000)
    r = paired_test(a, b, y)
    separate = math.sqrt(0.4 * 0.6 / 10_000)
    assert r["difference"] == pytest.approx(0.01) and r["difference"] < 2 * separate * math.sqrt(2)
    assert r["mcnemar_exact_p"] < 1e-20
    assert r["interval"][0] > 0.008


def test_direction_is_a_minus_b():
    a, b, y = _predictions(both=50, only_a=5, only_b=20, neither=25)
    r = paired_test(a, b, y)
    assert r["difference"] == pytest.approx(-0.15) and r["interval"][1] < 0


@pytest.mark.parametrize(
    ("a", "b", "y"), [([0, 1], [0], [0, 1]), ([], [], []), ([0, 1], [0, 1], [0, 1, 1])]
)
def test_mismatched_or_empty_inputs_are_refused(a, b, y):
    with pytest.raises(ValueError, match="one prediction"):
        paired_test(np.array(a), np.array(b), np.array(y))


def test_seed_pairs_give_the_closed_form_t_interval_of_the_mean_difference():
    a = [38.59, 38.16, 39.17, 36.48, 39.02, 38.88]
    b = [38.23, 38.07, 38.43, 36.87, 39.02, 38.24]
    result = paired_over_seeds(a, b)
    d = np.subtract(a, b)
    half = 2.570581835636314 * d.std(ddof=1) / np.sqrt(6)  # t(0.975, 5 degrees of freedom)
    assert result["n"] == 6
    assert result["difference"] == pytest.approx(d.mean())
    assert result["std"] == pytest.approx(d.std(ddof=1))
    assert result["interval"] == pytest.approx([d.mean() - half, d.mean() + half])


def test_seed_pairs_that_differ_by_a_constant_have_a_point_interval():
    result = paired_over_seeds([2.0, 3.0, 5.0], [1.5, 2.5, 4.5])
    assert result["interval"] == pytest.approx([0.5, 0.5])
    assert result["std"] == 0.0


@pytest.mark.parametrize("a, b", [([1.0], [2.0]), ([1.0, 2.0], [1.0]), ([], [])])
def test_fewer_than_two_seed_pairs_are_refused(a, b):
    with pytest.raises(ValueError, match="two or more paired scores"):
        paired_over_seeds(a, b)


MLP_FP32 = [53.35, 53.52, 52.84, 52.98, 53.34, 52.17, 52.89, 54.23, 52.38, 53.21, 52.57]
MLP_BF16 = [52.77, 53.70, 52.65, 51.81, 53.14, 53.03, 52.99, 54.13, 52.82, 52.94, 52.10]


@pytest.mark.parametrize(
    ("a", "b", "margin", "p_above", "p_below"),
    [  # statsmodels 0.15.0 ttost_paired(a, b, -margin, margin), run once to pin these values
        (MLP_BF16, MLP_FP32, 0.3, 0.15552727766233296, 0.012379374168652212),
        (
            [38.59, 38.16, 39.17, 36.48, 39.02, 38.88],
            [38.23, 38.07, 38.43, 36.87, 39.02, 38.24],
            0.5,
            0.003972895095847310,
            0.09695874737297383,
        ),
    ],
)
def test_equivalence_over_seeds_matches_statsmodels_two_one_sided_tests(
    a, b, margin, p_above, p_below
):
    result = equivalence_over_seeds(a, b, margin)
    assert result["p_above_lower_margin"] == pytest.approx(p_above, rel=1e-9)
    assert result["p_below_upper_margin"] == pytest.approx(p_below, rel=1e-9)
    assert result["p_value"] == pytest.approx(max(p_above, p_below), rel=1e-9)
    assert result["equivalent"] is False and result["confidence"] == pytest.approx(0.9)


def test_a_small_difference_over_many_seeds_is_shown_equivalent_and_over_few_is_not():
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 0.5, size=200)
    a, b = 50.0 + noise, 50.05 + noise + rng.normal(0.0, 0.3, size=200)
    assert equivalence_over_seeds(a, b, 0.3)["equivalent"]
    assert not equivalence_over_seeds(a[:4], b[:4], 0.3)["equivalent"]


@given(
    st.lists(st.floats(-3, 3, allow_nan=False), min_size=3, max_size=30),
    st.floats(0.05, 2.0),
)
def test_equivalence_holds_exactly_when_the_90_percent_interval_lies_inside_the_margins(
    differences, margin
):
    differences = np.asarray(differences)
    assume(np.ptp(differences) > 1e-6)  # no spread is a case of its own, tested below
    result = equivalence_over_seeds(differences, np.zeros_like(differences), margin)
    low, high = result["interval"]
    inside = -margin < low and high < margin
    if min(abs(low + margin), abs(high - margin)) > 1e-9:  # off the boundary's rounding
        assert result["equivalent"] == inside


def test_seed_pairs_that_differ_by_a_constant_are_equivalent_only_inside_the_margin():
    assert equivalence_over_seeds([2.0, 3.0], [1.9, 2.9], 0.3)["equivalent"]
    assert not equivalence_over_seeds([2.0, 3.0], [1.5, 2.5], 0.3)["equivalent"]


@pytest.mark.parametrize(("margin", "alpha", "match"), [(0.0, 0.05, "margin"), (0.3, 0.5, "alpha")])
def test_an_equivalence_test_without_a_positive_margin_or_with_alpha_of_a_half_is_refused(
    margin, alpha, match
):
    with pytest.raises(ValueError, match=match):
        equivalence_over_seeds([1.0, 2.0], [1.0, 2.5], margin, alpha=alpha)
