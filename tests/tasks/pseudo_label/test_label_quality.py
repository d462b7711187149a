"""Label quality from review decisions: the Wilson interval, the per-class breakdown and the gate."""

from __future__ import annotations

import math

import pytest

from schemas.review import ItemState, QueueItem
from tasks.pseudo_label.label_quality import Interval, label_quality, passes_gate, quality_markdown, wilson_interval

Z = 1.959963984540054


def wilson_by_quadratic(successes: int, n: int, z: float = Z) -> tuple[float, float]:
    """Independent form: the bounds are the p where the score test is at its limit, (p_hat - p)^2 = z^2 p (1-p) / n,
    i.e. the roots of (1 + z^2/n) p^2 - (2 p_hat + z^2/n) p + p_hat^2 = 0."""
    p_hat = successes / n
    a, b, c = 1 + z * z / n, -(2 * p_hat + z * z / n), p_hat * p_hat
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


@pytest.mark.parametrize(("successes", "n"), [(95, 100), (0, 10), (10, 10), (1, 1), (37, 50), (999, 1000), (3, 7)])
def test_wilson_matches_the_quadratic_form(successes, n):
    interval = wilson_interval(successes, n)
    assert interval.estimate == successes / n
    assert (interval.low, interval.high) == pytest.approx(wilson_by_quadratic(successes, n), abs=1e-12)
    assert 0.0 <= interval.low <= interval.estimate <= interval.high <= 1.0


def test_wilson_known_values():
    assert wilson_interval(95, 100) == pytest.approx((0.95, 0.8882, 0.9785), abs=2e-4)
    zero, ten = wilson_interval(0, 10), wilson_interval(10, 10)
    assert (zero.low, zero.high) == pytest.approx((0.0, 0.2775), abs=1e-4)  # high = z^2/(n + z^2)
    assert (ten.low, ten.high) == pytest.approx((0.7225, 1.0), abs=1e-4)  # all correct is not certainty
    assert zero.low == 0.0 and ten.high == 1.0  # clipped exactly, no -1e-17
    # Symmetry: the interval of failures mirrors that of successes.
    assert wilson_interval(30, 40).low == pytest.approx(1 - wilson_interval(10, 40).high)
    # z = 1 gives a narrower (68 %) interval around the same estimate.
    assert wilson_interval(95, 100, z=1.0).low > wilson_interval(95, 100).low


@pytest.mark.parametrize(("successes", "n", "message"), [(0, 0, "n must be >= 1"), (11, 10, r"\[0, n=10\], got 11"),
                                                         (-1, 10, "got -1")])
def test_wilson_rejects_bad_counts(successes, n, message):
    with pytest.raises(ValueError, match=message):
        wilson_interval(successes, n)


def states(*specs: tuple[str, str]) -> list[ItemState]:
    """(predicted, state) pairs -> item states; relabelled ones get the label 'lever'."""
    result = []
    for position, (predicted, state) in enumerate(specs):
        item = QueueItem(cycle=0, position=position, sample_id=f"grab-{position:016x}", dataset="grab",
                         object_category="mug", predicted=predicted, confidence=0.9)
        label = {"accepted": predicted, "relabelled": "lever"}.get(state)
        result.append(ItemState(item=item, state=state, label=label))
    return result


def test_report_counts_decided_items_and_breaks_down_by_predicted_class():
    report = label_quality(states(
        ("twist", "accepted"), ("press", "accepted"), ("press", "rejected"), ("press", "relabelled"),
        ("twist", "accepted"), ("press", "skipped"), ("lift", "pending"), ("no_affordance", "accepted"),
    ))
    assert (report.n, report.correct, report.skipped, report.pending) == (6, 4, 1, 1)
    assert report.accuracy == wilson_interval(4, 6)
    # AFFORDANCES order, only classes present; lift has only a pending item, so no accuracy.
    assert [(c.name, c.n, c.correct) for c in report.per_class] == [
        ("no_affordance", 1, 1), ("press", 3, 1), ("lift", 0, 0), ("twist", 2, 2)]
    assert report.per_class[1].accuracy == wilson_interval(1, 3)
    assert report.per_class[2].accuracy is None


def test_gate_tests_the_lower_bound_not_the_estimate():
    good = label_quality(states(*[("press", "accepted")] * 97, *[("press", "rejected")] * 3))
    near = label_quality(states(*[("press", "accepted")] * 92, *[("press", "relabelled")] * 8))
    assert good.accuracy.low == pytest.approx(0.9155, abs=1e-4) and passes_gate(good, 0.90)
    assert near.accuracy.estimate > 0.90 and not passes_gate(near, 0.90)  # 92 % but the lower bound is 0.85
    assert passes_gate(near, near.accuracy.low)  # the bound itself passes (>=)
    nothing = label_quality(states(("press", "pending"), ("lift", "skipped")))
    assert (nothing.n, nothing.accuracy) == (0, None) and not passes_gate(nothing, 0.0)
    with pytest.raises(ValueError, match=r"min_lower .* got 90"):
        passes_gate(good, 90)


def test_markdown_summary_and_table():
    report = label_quality(states(*[("press", "accepted")] * 9, ("press", "rejected"), ("lift", "pending")))
    text = quality_markdown(report, min_lower=0.9)
    summary, table = text.split("\n\n")
    assert "9 / 10 reviewed labels correct (90.0 %)" in summary
    low, high = wilson_interval(9, 10)[1:]
    assert f"[{100 * low:.1f}, {100 * high:.1f}] %" in summary
    assert "**fail**" in summary and "1 pending" in summary and "0 skipped" in summary
    lines = table.splitlines()
    assert lines[0] == "| predicted class | reviewed | correct | accuracy % | 95 % interval % |"
    assert lines[2].startswith("| press | 10 | 9 | 90.0 | [")
    assert lines[3] == "| lift | 0 | 0 | n/a | n/a |"
    assert "**pass**" in quality_markdown(report, min_lower=0.5)


def test_interval_is_a_named_tuple():
    assert wilson_interval(1, 2)._fields == Interval._fields == ("estimate", "low", "high")


def test_a_disputed_item_counts_neither_way_and_is_named():
    report = label_quality(states(("press", "accepted"), ("press", "disputed"), ("press", "rejected")))
    assert (report.n, report.correct, report.disputed, report.pending) == (2, 1, 1, 0)
    assert "1 disputed (reviewers disagree)" in quality_markdown(report, min_lower=0.5)
