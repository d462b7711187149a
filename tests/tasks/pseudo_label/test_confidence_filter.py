import math
import statistics

import numpy as np
import pytest

from tasks.pseudo_label.confidence_filter import (
    AFFORDANCES,
    MIN_CLASS_SAMPLES,
    RULES,
    ClassStats,
    RuleReport,
    accept_class_conditional,
    accept_logit_zscore,
    apply_rule,
    choose_default,
    evaluate_rule,
    fit_class_stats,
    logit_zscore,
    softmax,
)

C = 9


def random_logits(seed: int, n: int = 300, scale: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=scale, size=(n, C))


def noisy_truth(seed: int, predicted: np.ndarray, right_share: float = 0.8) -> np.ndarray:
    """Truth equal to the prediction for ~right_share of samples, random otherwise."""
    rng = np.random.default_rng(seed + 1000)
    return np.where(rng.random(len(predicted)) < right_share, predicted, rng.integers(0, C, len(predicted)))


# ------------------------------------------------------------------------------------------ naive loops


def naive_fit(probs: np.ndarray, labels: np.ndarray) -> tuple[list[float], list[float], list[int]]:
    per_class: list[list[float]] = [[] for _ in range(probs.shape[1])]
    pooled = []
    for row, label in zip(probs.tolist(), labels.tolist(), strict=True):
        c = row.index(max(row))
        if c == label:
            per_class[c].append(max(row))
            pooled.append(max(row))
    mean, std = [], []
    for values in per_class:
        used = values if len(values) >= 2 else pooled
        mean.append(statistics.fmean(used))
        std.append(statistics.stdev(used))
    return mean, std, [len(v) for v in per_class]


def naive_class_conditional(probs: np.ndarray, mean: list[float], std: list[float], k: float) -> list[bool]:
    out = []
    for row in probs.tolist():
        c = row.index(max(row))
        out.append(max(row) >= mean[c] - k * std[c])
    return out


def naive_zscore(logits: np.ndarray, k: float) -> tuple[list[float], list[bool]]:
    scores, accepted = [], []
    for row in logits.tolist():
        t = row.index(max(row))
        others = row[:t] + row[t + 1:]
        constant = max(others) == min(others)
        if constant:
            z = 0.0 if row[t] == others[0] else math.inf
        else:
            z = (row[t] - statistics.fmean(others)) / statistics.pstdev(others)
        scores.append(z)
        accepted.append(z >= k and not (max(others) == min(others) == row[t]))
    return scores, accepted


def naive_report(accepted, predicted, truth, num_classes):
    rows = []
    for c in range(num_classes):
        n = acc = ok = 0
        for a, p, t in zip(accepted.tolist(), predicted.tolist(), truth.tolist(), strict=True):
            if p == c:
                n += 1
                acc += a
                ok += a and p == t
        rows.append((n, acc, ok, acc / n if n else None, ok / acc if acc else None))
    total = sum(accepted.tolist())
    ok_total = sum(a and p == t for a, p, t in zip(accepted.tolist(), predicted.tolist(), truth.tolist(), strict=True))
    return total, ok_total, rows


# ------------------------------------------------------------------------------------ class-conditional


@pytest.mark.parametrize("seed", range(4))
def test_fit_class_stats_equals_naive(seed):
    logits = random_logits(seed)
    logits[:, 8] -= 20  # class 8 is (almost) never predicted: it must fall back
    probs = softmax(logits)
    labels = noisy_truth(seed, probs.argmax(1))
    stats = fit_class_stats(probs, labels, min_count=2)
    mean, std, count = naive_fit(probs, labels)
    np.testing.assert_allclose(stats.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(stats.std, std, rtol=1e-9)
    np.testing.assert_array_equal(stats.count, count)
    np.testing.assert_array_equal(stats.fallback, np.array(count) < 2)
    assert stats.fallback[8] and np.isfinite(stats.mean).all() and np.isfinite(stats.std).all()


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [0.0, 1.0, 3.0])
def test_accept_class_conditional_equals_naive(seed, k):
    probs = softmax(random_logits(seed))
    stats = fit_class_stats(probs[:150], noisy_truth(seed, probs[:150].argmax(1)))
    expected = naive_class_conditional(probs[150:], stats.mean.tolist(), stats.std.tolist(), k)
    result = accept_class_conditional(probs[150:], stats, k)
    assert result.dtype == bool and result.shape == (150,)
    np.testing.assert_array_equal(result, expected)


def test_confidence_exactly_at_threshold_is_accepted():
    # correct confidences of class 0: 0.5, 0.75, 1.0 -> mean 0.75, sample std 0.25 (all exact in binary)
    probs = np.array([[0.5, 0.25, 0.25], [0.75, 0.125, 0.125], [1.0, 0.0, 0.0]])
    stats = fit_class_stats(probs, np.array([0, 0, 0]), min_count=2)
    assert stats.mean[0] == 0.75 and stats.std[0] == 0.25 and stats.std.dtype == np.float64
    # k = 1 -> threshold 0.5; k = 0.5 -> 0.625
    at, below = np.array([[0.5, 0.25, 0.25]]), np.array([[0.5 - 2**-20, 0.25 + 2**-21, 0.25 + 2**-21]])
    assert accept_class_conditional(at, stats, k=1.0).tolist() == [True]
    assert accept_class_conditional(below, stats, k=1.0).tolist() == [False]
    assert accept_class_conditional(np.array([[0.625, 0.375, 0.0]]), stats, k=0.5).tolist() == [True]


def test_classes_with_fewer_than_ten_correct_samples_use_the_pooled_statistics():
    # Class 0: 12 correct predictions; class 1: 3 (like the rare lever class): its own sigma would be noise.
    rng = np.random.default_rng(0)
    top = np.concatenate([rng.uniform(0.8, 1.0, 12), [0.99, 0.991, 0.992]])
    probs = np.stack([np.where(np.arange(15) < 12, top, 1 - top), np.where(np.arange(15) < 12, 1 - top, top)], 1)
    labels = (np.arange(15) >= 12).astype(int)
    stats = fit_class_stats(probs, labels)
    assert MIN_CLASS_SAMPLES == 10 and stats.count.tolist() == [12, 3] and stats.fallback.tolist() == [False, True]
    assert stats.mean[1] == stats.pooled_mean and stats.std[1] == stats.pooled_std
    assert stats.mean[0] == pytest.approx(top[:12].mean())
    with pytest.raises(ValueError, match="min_count must be >= 2"):
        fit_class_stats(probs, labels, min_count=1)


def test_class_with_one_correct_sample_uses_pooled_fallback():
    probs = np.array([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8], [0.6, 0.4]])
    labels = np.array([0, 0, 1, 1])  # class 0: two correct (0.9, 0.7); class 1: one correct (0.8); row 3 wrong
    stats = fit_class_stats(probs, labels, k=2.0, min_count=2)
    assert stats.count.tolist() == [2, 1] and stats.fallback.tolist() == [False, True]
    assert stats.pooled_mean == pytest.approx(0.8) and stats.pooled_std == pytest.approx(0.1)
    assert stats.mean[1] == stats.pooled_mean and stats.std[1] == stats.pooled_std
    np.testing.assert_allclose(stats.threshold(), [0.8 - 2 * statistics.stdev([0.9, 0.7]), 0.6])
    assert stats.k == 2.0
    # k omitted -> stats.k = 2: class-1 threshold 0.8 - 2 * 0.1 = 0.6
    assert accept_class_conditional(np.array([[0.35, 0.65], [0.45, 0.55]]), stats).tolist() == [True, False]


def test_fit_needs_two_correct_predictions_and_real_probabilities():
    with pytest.raises(ValueError, match="at least 2 correct"):
        fit_class_stats(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]))
    with pytest.raises(ValueError, match="probs rows must sum to 1"):
        fit_class_stats(np.array([[0.9, 0.9], [0.2, 0.8]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="labels must lie in"):
        fit_class_stats(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 2]))
    with pytest.raises(ValueError, match="k must be"):
        fit_class_stats(np.array([[0.9, 0.1], [0.8, 0.2]]), np.array([0, 0]), k=-1.0)


# ---------------------------------------------------------------------------------------- logit z-score


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [0.0, 2.0, 3.0])
def test_logit_zscore_equals_naive(seed, k):
    logits = random_logits(seed, n=200)
    logits[:20, 1:] = logits[:20, 1:2]  # constant rest below or above the first logit
    logits[20:25] = 1.5  # all equal
    scores, accepted = naive_zscore(logits, k)
    z, predicted, _ = logit_zscore(logits)
    np.testing.assert_allclose(z, scores, rtol=1e-10)
    np.testing.assert_array_equal(predicted, logits.argmax(1))
    np.testing.assert_array_equal(accept_logit_zscore(logits, k), accepted)


def test_logit_zscore_hand_made_cases():
    logits = np.array([
        [3.0, 1.0, -1.0],  # others mean 0, std 1 -> z = 3 exactly
        [2.0, 2.0, 2.0],  # all equal: no winner
        [5.0, 0.0, 0.0],  # constant rest below the top: z = +inf
    ])
    z, _, flat = logit_zscore(logits)
    assert z.tolist() == [3.0, 0.0, math.inf] and flat.tolist() == [False, True, False]
    assert accept_logit_zscore(logits, 3.0).tolist() == [True, False, True]
    assert accept_logit_zscore(logits, np.nextafter(3.0, 4.0)).tolist() == [False, False, True]
    assert accept_logit_zscore(logits, 0.0).tolist() == [True, False, True]  # all-equal: rejected at k=0 too
    tenths = np.full((1, 9), 0.1)  # all equal, and 0.1 is inexact in binary: still detected as flat
    assert logit_zscore(tenths)[0].tolist() == [0.0] and accept_logit_zscore(tenths, 0.0).tolist() == [False]


@pytest.mark.parametrize(("name", "grows"), [("class_conditional", True), ("logit_zscore", False)])
def test_acceptance_is_monotone_in_k(name, grows):
    # class_conditional: a larger k widens the band mu - k sigma -> a superset is accepted;
    # logit_zscore: a larger k raises the bar z >= k -> a subset is accepted.
    logits = random_logits(7, n=400)
    stats = fit_class_stats(softmax(logits), noisy_truth(7, logits.argmax(1)))
    previous, counts = None, []
    for k in [0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0]:
        accepted = apply_rule(name, logits, stats, k).accepted
        if previous is not None:
            bigger, smaller = (accepted, previous) if grows else (previous, accepted)
            assert not (smaller & ~bigger).any(), f"k={k} broke monotonicity"
        previous = accepted
        counts.append(int(accepted.sum()))
    assert counts[0] != counts[-1]  # the sweep really moved


# ------------------------------------------------------------------------------------------ entry point


@pytest.mark.parametrize("name", sorted(RULES))
def test_apply_rule_result_is_consistent(name):
    logits = random_logits(3)
    stats = fit_class_stats(softmax(logits), noisy_truth(3, logits.argmax(1)))
    result = apply_rule(name, logits, stats, 2.0)
    assert result.rule == name and result.k == 2.0
    for array in (result.accepted, result.predicted, result.confidence, result.score, result.threshold):
        assert array.shape == (len(logits),) and not np.isnan(array).any()
    np.testing.assert_array_equal(result.accepted, result.score >= result.threshold)  # no all-equal rows here
    np.testing.assert_array_equal(result.predicted, logits.argmax(1))
    np.testing.assert_allclose(result.confidence, softmax(logits).max(1))
    expected = (accept_class_conditional(softmax(logits), stats, 2.0) if name == "class_conditional"
                else accept_logit_zscore(logits, 2.0))
    np.testing.assert_array_equal(result.accepted, expected)


def test_apply_rule_rejects_bad_arguments():
    logits = random_logits(0, n=10)
    with pytest.raises(ValueError, match=r"unknown rule name 'sigma'.*class_conditional, logit_zscore"):
        apply_rule("sigma", logits)
    with pytest.raises(ValueError, match="stats must be given"):
        apply_rule("class_conditional", logits)
    with pytest.raises(ValueError, match="k must be"):
        apply_rule("logit_zscore", logits, k=float("nan"))
    with pytest.raises(ValueError, match="logits must be"):
        apply_rule("logit_zscore", logits[:, :1])
    stats = ClassStats(np.zeros(3), np.zeros(3), np.zeros(3, np.int64), np.ones(3, bool), 0.0, 0.0)
    with pytest.raises(ValueError, match="9 classes but stats were fitted on 3"):
        apply_rule("class_conditional", logits, stats)


# ---------------------------------------------------------------------------------------- measurement


@pytest.mark.parametrize("seed", range(4))
def test_evaluate_rule_equals_naive_counting(seed):
    logits = random_logits(seed)
    predicted = logits.argmax(1)
    truth = noisy_truth(seed, predicted, 0.7)
    accepted = accept_logit_zscore(logits, 2.0)
    report = evaluate_rule(accepted, predicted, truth, rule="logit_zscore", k=2.0)
    total, ok_total, rows = naive_report(accepted, predicted, truth, C)
    assert (report.n, report.accepted, report.correct) == (len(logits), total, ok_total)
    assert report.acceptance_rate == pytest.approx(total / len(logits))
    assert report.precision == pytest.approx(ok_total / total)
    assert report.accuracy == pytest.approx(float(np.mean(predicted == truth)))
    assert [r.name for r in report.per_class] == list(AFFORDANCES) and report.rule == "logit_zscore"
    for row, (n, acc, ok, rate, precision) in zip(report.per_class, rows, strict=True):
        assert (row.n, row.accepted, row.correct) == (n, acc, ok)
        assert row.acceptance_rate == pytest.approx(rate) and row.precision == pytest.approx(precision)


def test_evaluate_rule_with_nothing_accepted_has_no_nan():
    predicted, truth = np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2])
    report = evaluate_rule(np.zeros(4, bool), predicted, truth, num_classes=4)
    assert report.accepted == 0 and report.acceptance_rate == 0.0 and report.precision is None
    assert report.accuracy == 0.75
    assert [r.name for r in report.per_class] == ["class_0", "class_1", "class_2", "class_3"]
    assert [(r.n, r.acceptance_rate, r.precision) for r in report.per_class] == [
        (1, 0.0, None), (2, 0.0, None), (1, 0.0, None), (0, None, None)]


def test_evaluate_rule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="accepted must be"):
        evaluate_rule(np.array([1, 0]), np.array([0, 1]), np.array([0, 1]))
    with pytest.raises(ValueError, match="accepted must be"):
        evaluate_rule(np.zeros(0, bool), np.zeros(0, int), np.zeros(0, int))
    with pytest.raises(ValueError, match="truth must have shape"):
        evaluate_rule(np.ones(2, bool), np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="predicted must lie in"):
        evaluate_rule(np.ones(2, bool), np.array([0, 9]), np.array([0, 1]))


def report(rate: float, precision: float | None) -> RuleReport:
    return RuleReport(100, round(rate * 100), 0, rate, precision, 0.9, [])


def test_choose_default_takes_the_highest_acceptance_rate_above_the_bar():
    reports = {"class_conditional": report(0.60, 0.99), "logit_zscore": report(0.80, 0.975),
               "strict": report(0.95, 0.90)}
    choice = choose_default(reports, min_precision=0.97)
    assert choice.rule == "logit_zscore" and choice.meets_min_precision
    assert "80.00%" in choice.reason and "97.00%" in choice.reason
    assert choose_default(reports, min_precision=0.98).rule == "class_conditional"
    assert choose_default(reports, min_precision=0.5).rule == "strict"


def test_choose_default_ties_and_fallbacks():
    tie = {"logit_zscore": report(0.8, 0.99), "class_conditional": report(0.8, 0.98), "a_rule": report(0.8, 0.99)}
    assert choose_default(tie).rule == "class_conditional"
    assert choose_default({"b": report(0.8, 0.99), "a": report(0.8, 0.99)}).rule == "a"
    below = {"class_conditional": report(0.9, 0.90), "logit_zscore": report(0.5, 0.95), "none": report(0.0, None)}
    choice = choose_default(below)
    assert choice.rule == "logit_zscore" and not choice.meets_min_precision and "no rule reached" in choice.reason
    assert choose_default({"none": report(0.0, None), "cc": report(0.1, 1.0)}).rule == "cc"
    with pytest.raises(ValueError, match="no rule accepted any sample"):
        choose_default({"none": report(0.0, None)})
    with pytest.raises(ValueError, match="min_precision"):
        choose_default(below, min_precision=97.0)
    with pytest.raises(ValueError, match="reports"):
        choose_default({})


def test_choose_default_on_measured_reports():
    logits = random_logits(11, n=600)
    truth = noisy_truth(11, logits.argmax(1), 0.85)
    stats = fit_class_stats(softmax(logits[:300]), truth[:300])
    reports = {}
    for name in RULES:
        result = apply_rule(name, logits[300:], stats, 3.0)
        reports[name] = evaluate_rule(result.accepted, result.predicted, truth[300:], rule=name, k=3.0)
    choice = choose_default(reports, min_precision=0.0)
    assert choice.rule == max(sorted(reports), key=lambda n: (reports[n].acceptance_rate, n == "class_conditional"))
