"""Time per decision, per reviewer, from the audit trail.

A reviewer's time on a decision is the gap since their previous row in the cycle's trail (any kind: a skip or an
undo also takes a look). The first row of a reviewer has no gap, and a gap over `BREAK_S` is a break, not a
decision's time, so both are left out. The median and p90 use numpy's default (linear) percentile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import numpy as np

from schemas.review import DecisionRecord

BREAK_S = 600.0  # ten minutes away from the page is a break


@dataclass(frozen=True)
class ReviewerPace:
    reviewer: str
    decisions: int  # rows of theirs in the trail
    timed: int  # gaps that count (not the first row, not breaks)
    median_s: float | None
    p90_s: float | None


def reviewer_pace(trail: Sequence[DecisionRecord], break_s: float = BREAK_S) -> list[ReviewerPace]:
    """Seconds per decision per reviewer (name order)."""
    times: dict[str, list[datetime]] = {}
    for record in sorted(trail, key=lambda r: r.id):  # commit order
        times.setdefault(record.reviewer, []).append(datetime.fromisoformat(record.at))
    paces = []
    for reviewer in sorted(times):
        stamps = times[reviewer]
        gaps = np.array([(b - a).total_seconds() for a, b in pairwise(stamps)], dtype=float)
        gaps = gaps[(gaps >= 0) & (gaps <= break_s)]
        paces.append(ReviewerPace(reviewer, len(stamps), len(gaps),
                                  float(np.median(gaps)) if len(gaps) else None,
                                  float(np.percentile(gaps, 90)) if len(gaps) else None))
    return paces


def pace_markdown(paces: Sequence[ReviewerPace]) -> str:
    """A Markdown table: reviewer, decisions, timed gaps, median and p90 seconds per decision."""
    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.1f}"

    rows = [f"| {p.reviewer} | {p.decisions} | {p.timed} | {seconds(p.median_s)} | {seconds(p.p90_s)} |"
            for p in paces]
    return "\n".join(["| reviewer | decisions | timed | median s | p90 s |", "| --- | --- | --- | --- | --- |",
                      *rows])
