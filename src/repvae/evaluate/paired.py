"""Paired comparison of two classifiers scored on the same test images.

Two probe accuracies measured on the same images are strongly correlated: most images are easy,
or hard, for both. Treating them as independent binomials (one standard error each) wastes that
pairing and can hide a real difference of half a point on 10,000 images. McNemar's test uses only
the discordant images, those one classifier gets right and the other wrong: under "equally
accurate" each discordant image is a fair coin, so the exact test is a two-sided binomial test of
the split (scipy's ``binomtest``). The interval is the Wald interval of a paired difference of
proportions (Agresti, Categorical Data Analysis, section 10.1).

Across seeds (one score per seed and setting), ``paired_over_seeds`` gives the paired t
interval of the mean difference, and ``equivalence_over_seeds`` asks the question a parity claim
asks ("B is within a margin of A"). A difference test cannot answer it: failing to find a
difference is not evidence of its absence. The two one-sided tests (TOST, Schuirmann 1987) can:
the means are equivalent at level alpha when both "difference <= -margin" and "difference >=
+margin" are rejected at alpha, which is the same as the 1 - 2 alpha t interval lying inside
the margins (statsmodels' ``ttost_paired`` is the same test; statsmodels is not a dependency).
"""

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import binomtest, norm, ttest_1samp, ttest_rel


def paired_test(
    pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray, *, confidence: float = 0.95
) -> dict:
    """Accuracies of A and B on the same images, their difference (A − B) with a confidence
    interval, the 2×2 agreement counts, and McNemar's exact two-sided p-value. JSON-ready."""
    pred_a, pred_b, labels = (np.asarray(a).ravel() for a in (pred_a, pred_b, labels))
    if not len(labels) or not len(pred_a) == len(pred_b) == len(labels):
        raise ValueError(
            f"need one prediction of each classifier per label, got {len(pred_a)}, "
            f"{len(pred_b)} predictions for {len(labels)} labels"
        )
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    right_a, right_b = pred_a == labels, pred_b == labels
    n = len(labels)
    only_a = int(np.sum(right_a & ~right_b))
    only_b = int(np.sum(~right_a & right_b))
    difference = (only_a - only_b) / n
    std_error = math.sqrt(max(only_a + only_b - (only_a - only_b) ** 2 / n, 0.0)) / n
    z = float(norm.ppf(0.5 + confidence / 2))
    discordant = only_a + only_b
    p_value = binomtest(only_a, discordant, 0.5).pvalue if discordant else 1.0
    return {
        "n": n,
        "accuracy_a": float(right_a.mean()),
        "accuracy_b": float(right_b.mean()),
        "difference": difference,
        "std_error": std_error,
        "confidence": confidence,
        "interval": [difference - z * std_error, difference + z * std_error],
        "both_right": int(np.sum(right_a & right_b)),
        "only_a_right": only_a,
        "only_b_right": only_b,
        "both_wrong": int(np.sum(~right_a & ~right_b)),
        "mcnemar_exact_p": float(p_value),
    }


def paired_over_seeds(
    scores_a: Sequence[float], scores_b: Sequence[float], *, confidence: float = 0.95
) -> dict:
    """The difference A − B of two settings scored once per seed, paired by seed: its mean,
    sample standard deviation and the t interval of the mean (scipy's paired t test). Pairing
    removes what a seed does to both (the same initialisation and data order); what is left
    is the setting's effect and the run-to-run chaos, which only more seeds narrow."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"need two or more paired scores, got {len(a)} and {len(b)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    differences = a - b
    if np.all(differences == differences[0]):  # no spread: the t interval is a point
        low = high = float(differences[0])
    else:
        interval = ttest_rel(a, b).confidence_interval(confidence)
        low, high = float(interval.low), float(interval.high)
    return {
        "n": len(a),
        "difference": float(differences.mean()),
        "std": float(differences.std(ddof=1)),
        "confidence": confidence,
        "interval": [low, high],
    }


def equivalence_over_seeds(
    scores_a: Sequence[float], scores_b: Sequence[float], margin: float, *, alpha: float = 0.05
) -> dict:
    """Whether A − B, paired by seed, lies within ``±margin`` (TOST at level ``alpha``): the
    mean difference, its 1 − 2·alpha t interval, each one-sided test's p-value and the verdict.
    Fewer seeds widen the interval, so a small study says "not shown", never "equivalent"."""
    if margin <= 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    if not 0.0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    paired = paired_over_seeds(scores_a, scores_b, confidence=1 - 2 * alpha)
    differences = np.subtract(scores_a, scores_b, dtype=float)
    if paired["std"] == 0.0:  # no spread: each one-sided test is certain
        p_above = 0.0 if differences[0] > -margin else 1.0
        p_below = 0.0 if differences[0] < margin else 1.0
    else:
        p_above = float(ttest_1samp(differences, -margin, alternative="greater").pvalue)
        p_below = float(ttest_1samp(differences, margin, alternative="less").pvalue)
    p_value = max(p_above, p_below)
    return {
        **paired,
        "margin": margin,
        "alpha": alpha,
        "p_above_lower_margin": p_above,
        "p_below_upper_margin": p_below,
        "p_value": p_value,
        "equivalent": p_value < alpha,
    }
