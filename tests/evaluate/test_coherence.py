"""Coherence against known answers: a generator that copies the right digit is fully coherent,
one that ignores its input agrees with the source class at chance."""

import numpy as np
import pytest

from repvae.data import load_dataset
from repvae.evaluate.coherence import coherence, predict, train_classifier


def test_a_perfect_generator_is_coherent_and_a_blind_one_is_at_chance():
    data = load_dataset("polydigits-2")
    train, test = data.train, data.test
    classifiers = [
        train_classifier(train.images[:, 3 * j : 3 * (j + 1)], train.labels, 10) for j in range(2)
    ]
    accuracy = [
        float((predict(net, test.images[:, 3 * j : 3 * (j + 1)]) == test.labels).float().mean())
        for j, net in enumerate(classifiers)
    ]
    assert min(accuracy) > 0.5  # chance is 0.1

    # "generate" = the real test images themselves: as coherent as the classifiers are accurate
    perfect = coherence(
        lambda x, source: x.float() / 255, test.images, classifiers, test.images, test.labels
    )
    np.testing.assert_allclose(perfect.cross, np.tile(accuracy, (2, 1)), atol=1e-6)
    assert perfect.classifier_accuracy == accuracy

    # one fixed image for every input: the source class is matched about 1 time in 10, and the
    # joint samples, all one image, agree with each other only if the classifiers do
    fixed = test.images[:1].expand(len(test.labels), -1, -1, -1)
    blind = coherence(
        lambda x, source: fixed.float() / 255, fixed, classifiers, test.images, test.labels
    )
    assert blind.cross_mean < 0.2
    votes = [
        int(predict(net, fixed[:1, 3 * j : 3 * (j + 1)])[0]) for j, net in enumerate(classifiers)
    ]
    assert blind.joint == float(votes[0] == votes[1])
    assert blind.cross_mean == pytest.approx((blind.cross[0, 1] + blind.cross[1, 0]) / 2)
