"""How good the accepted pseudo-labels are, estimated from the reviewers' decisions on the sampled queue.

An accepted item counts as a correct label; rejected and relabelled items as wrong ones. Skipped and pending
items say nothing about the label, so they are left out of n and reported beside it. With n around 100 the
estimate is uncertain by several points, so the gate tests the lower end of a Wilson score interval rather than
the point estimate: "at least 90 % correct" must hold with 95 % confidence, not just on this sample.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from schemas.affordance import AFFORDANCES
from schemas.review import ItemState
from tasks.pseudo_label.report import markdown_table

Z95 = 1.959963984540054  # standard normal quantile at 0.975: a two-sided 95 % interval
CORRECT_STATES = ("accepted",)
WRONG_STATES = ("rejected", "relabelled")


class Interval(NamedTuple):
    """A proportion and its confidence interval, all fractions in [0, 1]."""

    estimate: float
    low: float
    high: float


def wilson_interval(successes: int, n: int, z: float = Z95) -> Interval:
    """Wilson score interval of a binomial proportion. With p = successes / n:

        centre = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
        [low, high] = [centre - half, centre + half]

    Unlike the normal approximation p +- z sqrt(p (1 - p) / n), it stays inside [0, 1] and is not zero-width at
    p = 0 or 1 (10 / 10 correct gives a lower bound of 0.72, not 1). estimate = p.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1 for an interval, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie in [0, n={n}], got {successes}")
    if z <= 0:
        raise ValueError(f"z must be > 0, got {z}")
    p = successes / n
    shrink = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / shrink
    half = z / shrink * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # At p = 0 (p = 1) the low (high) bound is exactly 0 (1); rounding would give -1e-17 or 0.9999999999999999.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return Interval(p, low, high)


@dataclass(frozen=True)
class ClassQuality:
    """Quality of the labels predicted as one class; accuracy None when none of them was decided (n = 0)."""

    name: str
    n: int
    correct: int
    accuracy: Interval | None


@dataclass(frozen=True)
class QualityReport:
    """n = decided items (accepted + rejected + relabelled); accuracy None when n = 0."""

    n: int
    correct: int
    accuracy: Interval | None
    per_class: list[ClassQuality]
    skipped: int
    pending: int
    disputed: int = 0  # overlap items whose reviewers disagree: unresolved, so not counted either way


def _counts(states: Sequence[ItemState]) -> tuple[int, int]:
    """(n, correct) over the items whose decision judges the label."""
    correct = sum(state.state in CORRECT_STATES for state in states)
    return correct + sum(state.state in WRONG_STATES for state in states), correct


def _interval(correct: int, n: int) -> Interval | None:
    return wilson_interval(correct, n) if n else None


def label_quality(states: Sequence[ItemState]) -> QualityReport:
    """Accuracy of the reviewed labels overall and per predicted class (AFFORDANCES order, classes present)."""
    n, correct = _counts(states)
    per_class = []
    for name in AFFORDANCES:
        group = [state for state in states if state.item.predicted == name]
        if group:
            class_n, class_correct = _counts(group)
            per_class.append(ClassQuality(name, class_n, class_correct, _interval(class_correct, class_n)))
    return QualityReport(n=n, correct=correct, accuracy=_interval(correct, n), per_class=per_class,
                         skipped=sum(state.state == "skipped" for state in states),
                         pending=sum(state.state == "pending" for state in states),
                         disputed=sum(state.state == "disputed" for state in states))


def passes_gate(report: QualityReport, min_lower: float = 0.90) -> bool:
    """True when the lower Wilson bound of the accuracy is >= min_lower; False when nothing was decided."""
    if not 0.0 <= min_lower <= 1.0:
        raise ValueError(f"min_lower must be a fraction in [0, 1], got {min_lower}")
    return report.accuracy is not None and report.accuracy.low >= min_lower


def _percent(interval: Interval | None) -> tuple[str, str]:
    """("92.0", "[85.0, 96.0]") or ("n/a", "n/a")."""
    if interval is None:
        return "n/a", "n/a"
    return f"{100 * interval.estimate:.1f}", f"[{100 * interval.low:.1f}, {100 * interval.high:.1f}]"


def quality_markdown(report: QualityReport, min_lower: float) -> str:
    """A short summary (accuracy, 95 % Wilson interval, gate verdict, skipped/pending) and a per-class table."""
    estimate, interval = _percent(report.accuracy)
    verdict = "pass" if passes_gate(report, min_lower) else "fail"
    summary = (f"**Label quality:** {report.correct} / {report.n} reviewed labels correct ({estimate} %), "
               f"95 % Wilson interval {interval} %. Gate (lower bound >= {100 * min_lower:.1f} %): **{verdict}**. "
               f"Not counted: {report.skipped} skipped, {report.pending} pending"
               + (f", {report.disputed} disputed (reviewers disagree)." if report.disputed else "."))
    rows = [[row.name, row.n, row.correct, *_percent(row.accuracy)] for row in report.per_class]
    table = markdown_table(["predicted class", "reviewed", "correct", "accuracy %", "95 % interval %"], rows)
    return f"{summary}\n\n{table}"
