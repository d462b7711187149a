"""bench_sampling's settings: GUIDANCE,DDIM_STEPS with guidance >= 0 and steps in [1, 1000]; bad entries refused by
name; the built-in list holds the `small` preset's own setting (a missing checkpoint: test_missing_checkpoint.py)."""

import pytest

from bench.bench_sampling import SETTINGS, parse_setting
from tasks.grasp.config import preset_config


def test_a_setting_is_guidance_and_steps():
    assert parse_setting("2.5,30") == (2.5, 30)
    for bad in ("2", "a,20", "2,b", "-1,20", "2,0", "2,1001", "1,2,3"):
        with pytest.raises(ValueError, match=f"--setting '{bad}'"):
            parse_setting(bad)


def test_the_built_in_list_holds_the_small_presets_own_setting():
    train = preset_config("small")
    assert (train.guidance, train.ddim_steps) in SETTINGS
    assert len(set(SETTINGS)) == len(SETTINGS)

