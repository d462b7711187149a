"""bench_demo_budgets' COUNT:LR[:PRESET] settings: a bad one is refused naming the option and the value."""

import pytest

from bench.bench_demo_budgets import _settings
from models.preset_choices import AFFORDANCE_PRESETS, CLASSIFIER_PRESETS


def test_settings_parse_with_and_without_a_preset():
    assert _settings(["50:0.002", "35:0.003:cpu-wide"], "classifier", CLASSIFIER_PRESETS) == [
        (50, 0.002, None), (35, 0.003, "cpu-wide")]
    assert _settings(["450:0.0025", "450:0.0025:cpu-large-patch"], "maps", AFFORDANCE_PRESETS) == [
        (450, 0.0025, None), (450, 0.0025, "cpu-large-patch")]


@pytest.mark.parametrize(("values", "presets", "message"), [
    (["50"], CLASSIFIER_PRESETS, r"--classifier '50': expected COUNT:LR\[:PRESET\]"),
    (["50:0.002:huge"], CLASSIFIER_PRESETS, r"--classifier '50:0.002:huge'.*'huge' is not registered"),
    (["450:0.002:huge"], AFFORDANCE_PRESETS, r"--maps '450:0.002:huge'.*'huge' is not registered"),
    (["450"], AFFORDANCE_PRESETS, r"--maps '450': expected COUNT:LR\[:PRESET\]"),
])
def test_a_bad_setting_is_refused_by_option_and_value(values, presets, message):
    with pytest.raises(SystemExit, match=message):
        _settings(values, "maps" if presets is AFFORDANCE_PRESETS else "classifier", presets)
