"""median_seconds: one uncounted warm-up call, then the median of the timed repeats."""

from __future__ import annotations

import time

import pytest

from tasks.runtime.timing import median_seconds


def test_warm_up_is_not_counted_and_the_median_is_taken():
    delays = iter([0.2, 0.0, 0.03, 0.0])  # a slow first call, then 0, 30 ms, 0: the median is 0 s, not the mean
    calls = []

    def work() -> None:
        calls.append(1)
        time.sleep(next(delays))

    assert median_seconds(work, 3) < 0.02 and len(calls) == 4


def test_repeats_must_be_positive():
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        median_seconds(lambda: None, 0)
