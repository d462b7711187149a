"""The "3-sigma" filter: which pseudo-labels are confident enough to accept, by two precise rules, and how well
each rule did.

The paper keeps predictions "within the 99.73 % band of the classifier's output distribution" without saying
which distribution. Two readings are implemented, both with a configurable k (3 by default):

(a) ``class_conditional`` — the distribution is that of the classifier's confidence on held-out labelled
    samples it got right, one per predicted class. Sample i with predicted class c = argmax_j p_ij and
    confidence s_i = max_j p_ij is accepted when

        s_i >= mu_c - k * sigma_c

    i.e. it is no less confident than the lower k-sigma edge of the confidences of correct predictions of c.
(b) ``logit_zscore`` — the distribution is that of sample i's own C logits. With t = argmax_j l_ij and
    the other C - 1 logits O_i = {l_ij : j != t}, sample i is accepted when its top logit stands out:

        z_i = (l_it - mean(O_i)) / std(O_i) >= k,   std with ddof = 0.

Only the lower edge is a test: a prediction more confident than usual is never rejected for it. Note that k
works in opposite directions: in (a) it widens the band, so a larger k accepts MORE samples (a superset); in
(b) it raises the bar, so a larger k accepts FEWER (a subset). Ties in argmax go to the lowest class index
(numpy's argmax). `apply_rule` runs either rule by name and returns the score and threshold per sample, so the
label table can store why each sample was accepted; `evaluate_rule` measures a rule against ground truth and
`choose_default` picks the rule to ship.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from schemas.affordance import AFFORDANCES, NUM_AFFORDANCES

DEFAULT_K = 3.0  # 3 sigma: the 99.73 % two-sided band of a normal distribution
# A class's own mu and sigma need this many correct held-out predictions; fewer use the pooled statistics.
# Why 10: the relative standard error of a sample std is about 1 / sqrt(2 (n - 1)): 71 % at n = 2 (a lever
# class fitted from 2 samples had sigma 0.0036 and threshold 0.979), 24 % at n = 10. A 3-sigma edge moves by
# 3 x that error in sigma units, so below ~10 samples the per-class edge is mostly noise.
MIN_CLASS_SAMPLES = 10
TIE_BREAK_RULE = "class_conditional"  # preferred by choose_default when acceptance rates tie
PROB_SUM_TOLERANCE = 1e-3  # rows of probs must sum to 1 within this: catches logits passed as probs


@dataclass(frozen=True)
class ClassStats:
    """Confidence statistics of correct held-out predictions, per predicted class (C classes).

    mean, std: (C,) float64, the values the rule uses (after fallback; never NaN). count: (C,) int64 correct
    held-out samples of each class. fallback: (C,) bool, True where count < min_count and the pooled values were used.
    pooled_mean, pooled_std: the statistics over all correct samples of every class. k: the default k.
    """

    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    fallback: np.ndarray
    pooled_mean: float
    pooled_std: float
    k: float = DEFAULT_K

    @property
    def num_classes(self) -> int:
        return len(self.mean)

    def threshold(self, k: float | None = None) -> np.ndarray:
        """(C,) float64 confidence thresholds mu_c - k * sigma_c (k defaults to self.k)."""
        k = _check_k(self.k if k is None else k)
        return self.mean - k * self.std


@dataclass(frozen=True)
class AcceptResult:
    """Per-sample outcome of a rule. All arrays are (N,): accepted bool, predicted int64, confidence float64
    (max softmax probability), score float64 (the statistic the rule thresholds), threshold float64.
    accepted == (score >= threshold) element-wise, except that logit_zscore also rejects all-equal logits."""

    rule: str
    k: float
    accepted: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    score: np.ndarray
    threshold: np.ndarray


@dataclass(frozen=True)
class ClassRow:
    """One predicted class: n predictions of it, how many were accepted, and how many accepted ones are right.
    acceptance_rate = accepted / n (None when n = 0); precision = correct / accepted (None when accepted = 0)."""

    class_index: int
    name: str
    n: int
    accepted: int
    correct: int
    acceptance_rate: float | None
    precision: float | None


@dataclass(frozen=True)
class RuleReport:
    """How a rule did on N samples with known truth.

    acceptance_rate = accepted / n; precision = (accepted and right) / accepted, None when nothing is
    accepted (never NaN); accuracy = right / n over all predictions, the precision with no filter at all.
    per_class: one ClassRow per PREDICTED class.
    """

    n: int
    accepted: int
    correct: int
    acceptance_rate: float
    precision: float | None
    accuracy: float
    per_class: list[ClassRow]
    rule: str | None = None
    k: float | None = None


@dataclass(frozen=True)
class DefaultChoice:
    """The rule `choose_default` picked, whether it met the precision bar, and why, in words."""

    rule: str
    meets_min_precision: bool
    reason: str


# ---------------------------------------------------------------------------------------------- checks


def _check_k(k: float) -> float:
    if not np.isfinite(k) or k < 0:
        raise ValueError(f"k must be a finite number >= 0, got {k!r}")
    return float(k)


def _check_matrix(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] < 2:
        raise ValueError(f"{name} must be (N, C) with N >= 1 and C >= 2, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contain NaN or inf")
    return values


def _check_probs(probs: np.ndarray) -> np.ndarray:
    probs = _check_matrix(probs, "probs")
    if (probs < 0).any() or (probs > 1).any():
        raise ValueError(f"probs must lie in [0, 1], got range [{probs.min()}, {probs.max()}]")
    worst = np.abs(probs.sum(axis=1) - 1.0).max()
    if worst > PROB_SUM_TOLERANCE:
        raise ValueError(f"probs rows must sum to 1 (softmax output, not logits); worst row is off by {worst:.3g}")
    return probs


def _check_labels(labels: np.ndarray, n: int, num_classes: int, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {labels.shape}")
    if n and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be integers, got dtype {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]")
    return labels.astype(np.int64)


# ------------------------------------------------------------------------------------ (a) class-conditional


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax: logits (N, C) -> probs (N, C) float64, p_ij = exp(l_ij - max_j l_ij) / sum_j (...)."""
    logits = _check_matrix(logits, "logits")
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # subtracting the max cannot overflow
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_class_stats(probs: np.ndarray, labels: np.ndarray, k: float = DEFAULT_K,
                    min_count: int = MIN_CLASS_SAMPLES) -> ClassStats:
    """Confidence statistics of correct predictions on held-out labelled samples, per predicted class.

    probs: (N, C) softmax probabilities; labels: (N,) true class indices. With c_i = argmax_j p_ij,
    s_i = max_j p_ij and R_c = {i : c_i = c and c_i = labels_i} (correct predictions of class c):

        mu_c    = (1 / |R_c|) sum_{i in R_c} s_i
        sigma_c = sqrt( (1 / (|R_c| - 1)) sum_{i in R_c} (s_i - mu_c)^2 )        (sample std, ddof = 1)

    ddof = 1 because the held-out confidences are a sample of the classifier's distribution, and it is the
    unbiased variance estimate. A class with |R_c| < min_count (MIN_CLASS_SAMPLES = 10 by default, at least 2)
    uses the pooled statistics over R = union_c R_c, computed by the same formulas (so a class that is never
    predicted correctly falls back too). Raises ValueError when |R| < 2: nothing to fit.
    """
    if min_count < 2:
        raise ValueError(f"min_count must be >= 2 (a sample std needs two values), got {min_count}")
    probs = _check_probs(probs)
    num_classes = probs.shape[1]
    labels = _check_labels(labels, len(probs), num_classes, "labels")
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    right = predicted == labels
    if right.sum() < 2:
        raise ValueError(f"need at least 2 correct held-out predictions to fit, got {int(right.sum())}")
    pooled_mean, pooled_std = float(confidence[right].mean()), float(confidence[right].std(ddof=1))
    count = np.bincount(predicted[right], minlength=num_classes).astype(np.int64)
    mean, std = np.full(num_classes, pooled_mean), np.full(num_classes, pooled_std)
    for c in np.flatnonzero(count >= min_count):
        values = confidence[right & (predicted == c)]
        mean[c], std[c] = values.mean(), values.std(ddof=1)
    return ClassStats(mean, std, count, count < min_count, pooled_mean, pooled_std, _check_k(k))


def accept_class_conditional(probs: np.ndarray, stats: ClassStats, k: float | None = None) -> np.ndarray:
    """Rule (a): probs (N, C) -> (N,) bool, accepted_i = [ s_i >= mu_c - k * sigma_c ] with c = argmax_j p_ij,
    s_i = max_j p_ij and (mu, sigma) from `fit_class_stats`. A confidence exactly at the threshold is accepted.
    k defaults to stats.k (3 unless fitted otherwise)."""
    return _class_conditional(probs, stats, k)[0]


def _class_conditional(probs: np.ndarray, stats: ClassStats, k: float | None) -> tuple[np.ndarray, ...]:
    """(accepted, predicted, confidence, threshold), each (N,)."""
    probs = _check_probs(probs)
    if probs.shape[1] != stats.num_classes:
        raise ValueError(f"probs has {probs.shape[1]} classes but stats were fitted on {stats.num_classes}")
    predicted, confidence = probs.argmax(axis=1), probs.max(axis=1)
    threshold = stats.threshold(k)[predicted]
    return confidence >= threshold, predicted, confidence, threshold


# -------------------------------------------------------------------------------------- (b) logit z-score


def logit_zscore(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample z-score of the top logit against the other logits: logits (N, C) -> (z, predicted, flat).

    With t = argmax_j l_ij and O_i = {l_ij : j != t}, m_i = mean(O_i), sd_i = sqrt(mean((O_i - m_i)^2)):

        z_i = (l_it - m_i) / sd_i                       when O_i is not constant
        z_i = +inf   if l_it > m_i,   z_i = 0   if l_it = m_i        when O_i is constant (sd_i := 0)

    ddof = 0 because O_i is the whole set of other logits, not a sample. "Constant" is tested exactly
    (max O_i == min O_i) rather than sd_i == 0, which rounding can miss. flat (N,) bool marks all-equal
    logits (no winner at all). z: (N,) float64 never NaN; predicted: (N,) int64 = t.
    """
    logits = _check_matrix(logits, "logits")
    predicted = logits.argmax(axis=1)
    top = logits[np.arange(len(logits)), predicted]
    others = np.where(np.eye(logits.shape[1], dtype=bool)[predicted], np.nan, logits)  # (N, C), top masked
    mean, sd = np.nanmean(others, axis=1), np.nanstd(others, axis=1)
    constant = np.nanmax(others, axis=1) == np.nanmin(others, axis=1)
    flat = constant & (top == np.nanmax(others, axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(constant, np.where(flat, 0.0, np.inf), (top - mean) / np.where(constant, 1.0, sd))
    return z, predicted.astype(np.int64), flat


def accept_logit_zscore(logits: np.ndarray, k: float = DEFAULT_K) -> np.ndarray:
    """Rule (b): logits (N, C) -> (N,) bool, accepted_i = [ z_i >= k ] and not [all logits of i equal],
    with z_i from `logit_zscore`. So a top logit above a constant rest is accepted for any k (z = +inf),
    all-equal logits are rejected for any k (even k = 0), and z exactly equal to k is accepted."""
    z, _, flat = logit_zscore(logits)
    return (z >= _check_k(k)) & ~flat


# ------------------------------------------------------------------------------------------- entry point


def _class_conditional_result(logits: np.ndarray, stats: ClassStats | None, k: float) -> AcceptResult:
    if stats is None:
        raise ValueError("stats must be given for rule 'class_conditional' (fit them with fit_class_stats)")
    accepted, predicted, confidence, threshold = _class_conditional(softmax(logits), stats, k)
    return AcceptResult("class_conditional", k, accepted, predicted, confidence, confidence.copy(), threshold)


def _logit_zscore_result(logits: np.ndarray, stats: ClassStats | None, k: float) -> AcceptResult:
    z, predicted, flat = logit_zscore(logits)
    accepted = (z >= k) & ~flat
    confidence = softmax(logits).max(axis=1)
    return AcceptResult("logit_zscore", k, accepted, predicted, confidence, z, np.full(len(z), k))


# name -> (logits (N, C), stats or None, k) -> AcceptResult
RULES: dict[str, Callable[[np.ndarray, ClassStats | None, float], AcceptResult]] = {
    "class_conditional": _class_conditional_result,
    "logit_zscore": _logit_zscore_result,
}


def apply_rule(name: str, logits: np.ndarray, stats: ClassStats | None = None, k: float = DEFAULT_K) -> AcceptResult:
    """Run rule `name` on logits (N, C). stats is required by class_conditional, ignored by logit_zscore.
    score/threshold per sample: class_conditional -> s_i and mu_c - k sigma_c; logit_zscore -> z_i and k."""
    if name not in RULES:
        raise ValueError(f"unknown rule name {name!r}; valid names: {', '.join(sorted(RULES))}")
    return RULES[name](logits, stats, _check_k(k))


# ----------------------------------------------------------------------------------------- measurement


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None  # None, not NaN: "undefined" must stay visible


def _class_names(num_classes: int) -> list[str]:
    # The affordance names when the class count matches them; plain indices for other classifiers.
    return list(AFFORDANCES) if num_classes == NUM_AFFORDANCES else [f"class_{c}" for c in range(num_classes)]


def evaluate_rule(accepted: np.ndarray, predicted: np.ndarray, truth: np.ndarray, num_classes: int = NUM_AFFORDANCES,
                  *, rule: str | None = None, k: float | None = None) -> RuleReport:
    """Measure a rule: accepted (N,) bool, predicted (N,) and truth (N,) class indices -> RuleReport.

    With A = {i : accepted_i} and R = {i : predicted_i = truth_i}:
        acceptance_rate = |A| / N,  precision = |A ∩ R| / |A| (None when A is empty),  accuracy = |R| / N.
    Per PREDICTED class c, with P_c = {i : predicted_i = c}: n = |P_c|, accepted = |P_c ∩ A|,
    acceptance_rate = |P_c ∩ A| / |P_c|, precision = |P_c ∩ A ∩ R| / |P_c ∩ A| (None on an empty denominator).
    Predicted class, not true class, because at labelling time only the prediction is known: the per-class
    rows say how far to trust an accepted label of c. rule and k are only recorded for tables.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    accepted = np.asarray(accepted)
    if accepted.ndim != 1 or len(accepted) == 0 or accepted.dtype != bool:
        raise ValueError(f"accepted must be a non-empty (N,) bool array, got shape {accepted.shape} {accepted.dtype}")
    predicted = _check_labels(predicted, len(accepted), num_classes, "predicted")
    truth = _check_labels(truth, len(accepted), num_classes, "truth")
    right = predicted == truth
    n_pred = np.bincount(predicted, minlength=num_classes)
    n_acc = np.bincount(predicted[accepted], minlength=num_classes)
    n_ok = np.bincount(predicted[accepted & right], minlength=num_classes)
    rows = [ClassRow(c, name, int(n_pred[c]), int(n_acc[c]), int(n_ok[c]), _rate(int(n_acc[c]), int(n_pred[c])),
                     _rate(int(n_ok[c]), int(n_acc[c]))) for c, name in enumerate(_class_names(num_classes))]
    total_acc, total_ok = int(accepted.sum()), int((accepted & right).sum())
    return RuleReport(len(accepted), total_acc, total_ok, total_acc / len(accepted), _rate(total_ok, total_acc),
                      float(right.mean()), rows, rule, None if k is None else float(k))


def choose_default(reports: dict[str, RuleReport], min_precision: float = 0.97) -> DefaultChoice:
    """The rule to ship: among rules with precision >= min_precision, the highest acceptance rate.

    Ties in acceptance rate go to class_conditional, then to the alphabetically first name. A rule that
    accepted nothing (precision None) is never eligible. When no rule meets the bar, the one with the highest
    precision is returned with meets_min_precision = False (same tie-breaks), so the caller can decide
    whether to ship it; when no rule accepted anything, ValueError.
    """
    if not reports:
        raise ValueError("reports must name at least one rule, got none")
    if not 0.0 <= min_precision <= 1.0:
        raise ValueError(f"min_precision must lie in [0, 1], got {min_precision}")
    measured = {name: r for name, r in reports.items() if r.precision is not None}
    if not measured:
        raise ValueError(f"no rule accepted any sample: {', '.join(sorted(reports))}")
    eligible = {name: r for name, r in measured.items() if r.precision >= min_precision}
    if eligible:
        best = _best(eligible, lambda r: r.acceptance_rate)
        r = eligible[best]
        return DefaultChoice(best, True, f"{best}: highest acceptance rate ({r.acceptance_rate:.2%}) among rules "
                             f"with precision >= {min_precision:.2%} ({', '.join(sorted(eligible))}); "
                             f"its precision is {r.precision:.2%}")
    best = _best(measured, lambda r: r.precision)
    return DefaultChoice(best, False, f"{best}: no rule reached precision {min_precision:.2%}; it has the highest "
                         f"precision ({measured[best].precision:.2%}) of {', '.join(sorted(measured))}")


def _best(reports: dict[str, RuleReport], key: Callable[[RuleReport], float]) -> str:
    # max by key; ties -> TIE_BREAK_RULE, then alphabetical (sorted keys make the order deterministic)
    return min(sorted(reports), key=lambda name: (-key(reports[name]), name != TIE_BREAK_RULE))
