"""Seconds per decision per reviewer from the trail: gaps between a reviewer's own rows, breaks left out."""

from __future__ import annotations

import pytest

from review.pace import pace_markdown, reviewer_pace
from schemas.review import DecisionRecord


def _row(i: int, reviewer: str, second: float) -> DecisionRecord:
    minutes, seconds = divmod(second, 60)
    return DecisionRecord(id=i, cycle=0, sample_id=f"toy-{i:016x}", kind="accepted", label=None, reviewer=reviewer,
                          comment="", at=f"2026-01-01T10:{int(minutes):02d}:{seconds:09.6f}+00:00")


def test_gaps_per_reviewer_with_breaks_left_out():
    # ann at 0, 4, 10, 12, 1000 s: gaps 4, 6, 2 and a 988 s break. bob interleaves at 1, 3: one gap of 2 s.
    trail = [_row(1, "ann", 0), _row(2, "bob", 1), _row(3, "bob", 3), _row(4, "ann", 4), _row(5, "ann", 10),
             _row(6, "ann", 12), _row(7, "ann", 1000)]
    ann, bob = reviewer_pace(trail)
    assert (ann.reviewer, ann.decisions, ann.timed) == ("ann", 5, 3)
    assert ann.median_s == pytest.approx(4.0) and ann.p90_s == pytest.approx(5.6)  # linear between 4 and 6
    assert (bob.decisions, bob.timed, bob.median_s) == (2, 1, pytest.approx(2.0))


def test_a_single_decision_has_no_pace():
    [only] = reviewer_pace([_row(1, "cat", 5)])
    assert only.timed == 0 and only.median_s is None and only.p90_s is None


def test_the_table_says_n_a_where_there_is_no_gap():
    table = pace_markdown(reviewer_pace([_row(1, "cat", 5), _row(2, "dan", 1), _row(3, "dan", 4)]))
    assert "| cat | 1 | 0 | n/a | n/a |" in table and "| dan | 2 | 1 | 3.0 | 3.0 |" in table
