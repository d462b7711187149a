"""bench_tta_weights' settings: three weights >= 0 given as HAND,MAP,PENETRATION; bad entries refused by name; the
built-in list starts from the objective without the hand-centric term (the old baseline)."""

import pytest

from bench.bench_tta_weights import SETTINGS, parse_setting


def test_a_setting_is_three_weights():
    assert parse_setting("1,0.1,0.3") == ("hand 1, map 0.1, penetration 0.3", (1.0, 0.1, 0.3))
    for bad in ("1,2", "a,b,c", "1,-1,0"):
        with pytest.raises(ValueError, match=f"--weights '{bad}'"):
            parse_setting(bad)


def test_the_built_in_list_holds_the_old_objective():
    assert next(iter(SETTINGS.values())) == (0.0, 0.1, 0.1)
    assert all(len(w) == 3 and min(w) >= 0 for w in SETTINGS.values())

