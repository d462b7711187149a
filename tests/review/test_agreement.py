"""Reviewer agreement: Cohen's kappa against a hand computation and scikit-learn, majorities, disputes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from review.agreement import agreement_with_majority, cohen_kappa, disputed, majority, pair_kappas


def test_kappa_of_a_hand_computed_example():
    # 6 items; the reviewers differ on the second only. p_o = 5/6. Frequencies: a says accept 4/6, reject 2/6;
    # b says accept 3/6, reject 3/6. p_e = 4/6 * 3/6 + 2/6 * 3/6 = 1/2. kappa = (5/6 - 1/2) / (1 - 1/2) = 2/3.
    a = ["accept", "accept", "reject", "reject", "accept", "accept"]
    b = ["accept", "reject", "reject", "reject", "accept", "accept"]
    assert cohen_kappa(a, b) == pytest.approx(2 / 3)
    assert cohen_kappa(a, a) == pytest.approx(1.0)


def test_kappa_equals_scikit_learn_on_random_labels():
    rng = np.random.default_rng(0)
    classes = ["accept", "reject", "twist", "pull", "press"]
    for _ in range(50):
        n = int(rng.integers(2, 40))
        a = list(rng.choice(classes, n, p=[0.6, 0.1, 0.1, 0.1, 0.1]))
        b = [x if rng.random() < 0.7 else str(rng.choice(classes)) for x in a]
        ours, theirs = cohen_kappa(a, b), cohen_kappa_score(a, b)
        if math.isnan(theirs):
            assert ours is None
        else:
            assert ours == pytest.approx(theirs, abs=1e-12)


@pytest.mark.filterwarnings("ignore::UserWarning")  # scikit-learn warns that its kappa is undefined here
def test_kappa_is_undefined_when_both_always_give_one_label():
    assert cohen_kappa(["accept"] * 4, ["accept"] * 4) is None
    assert math.isnan(cohen_kappa_score(["accept"] * 4, ["accept"] * 4))
    with pytest.raises(ValueError, match="differ in length"):
        cohen_kappa(["accept"], ["accept", "reject"])


def test_majorities_disputes_and_agreement_per_reviewer():
    labels = {
        "i1": {"ann": "accept", "bob": "accept", "cat": "reject"},  # majority accept: cat disagrees
        "i2": {"ann": "accept", "bob": "reject"},  # disputed: no label from more than half
        "i3": {"ann": "twist", "bob": "twist"},
        "i4": {"ann": "accept"},  # one reviewer: not overlap
    }
    assert majority(labels["i1"]) == "accept" and majority(labels["i2"]) is None
    assert disputed(labels) == ["i2"]
    rows = {r.reviewer: (r.items, r.agreed) for r in agreement_with_majority(labels)}
    assert rows == {"ann": (2, 2), "bob": (2, 2), "cat": (1, 0)}
    kappas = {p.reviewers: (p.items, p.kappa) for p in pair_kappas(labels)}
    # ann and cat share one item and differ on it: p_o = 0, p_e = 0, kappa 0
    assert kappas[("ann", "bob")][0] == 3 and kappas[("ann", "cat")] == (1, 0.0)
    expected = cohen_kappa_score(["accept", "accept", "twist"], ["accept", "reject", "twist"])
    assert kappas[("ann", "bob")][1] == pytest.approx(expected)
