"""The text bar and time-left estimate every waiting stage prints (classifier epochs, map steps, LLM keys)."""

import pytest

from tasks.runtime.progress_line import bar, time_left


@pytest.mark.parametrize(("done", "total", "width", "expected"), [
    (0, 10, 10, "[----------]"),
    (3, 10, 10, "[###-------]"),
    (10, 10, 4, "[####]"),
    (12, 10, 4, "[####]"),  # past the end stays full rather than overflowing the brackets
    (0, 0, 3, "[###]"),  # nothing to do is done
])
def test_bar_fills_in_proportion(done, total, width, expected):
    assert bar(done, total, width) == expected


def test_bar_refuses_bad_arguments_by_name():
    with pytest.raises(ValueError, match="width"):
        bar(1, 2, 0)
    with pytest.raises(ValueError, match="done and total"):
        bar(-1, 2)


def test_time_left_extrapolates_the_pace_so_far():
    # 30 s for 10 of 40 keys: 3 s each, 30 left -> 90 s
    assert time_left(30.0, 10, 40) == "1m30s left"
    assert time_left(5.0, 40, 40) == "0m00s left"
    assert time_left(0.0, 0, 40) == "time left unknown"
