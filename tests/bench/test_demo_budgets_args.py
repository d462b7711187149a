"""bench_demo_budgets' COUNT:LR[:PRESET] settings: a bad one is refused naming the option and the value."""

import pytest

from bench.bench_demo_budgets import _pairs, _settings
from models.preset_choices import CLASSIFIER_PRESETS


def test_settings_parse_with_and_without_a_preset():
    assert _settings(["50:0.002", "35:0.003:cpu-wide"], "classifier", CLASSIFIER_PRESETS) == [
        (50, 0.002, None), (35, 0.003, "cpu-wide")]
    assert _pairs(["450:0.0025"], "maps") == [(450, 0.0025)]


@pytest.mark.parametrize(("values", "presets", "message"), [
    (["50"], CLASSIFIER_PRESETS, r"--classifier '50': expected COUNT:LR\[:PRESET\]"),
    (["50:0.002:huge"], CLASSIFIER_PRESETS, r"--classifier '50:0.002:huge'.*'huge' is not registered"),
    (["450:0.002:cpu"], None, r"--maps '450:0.002:cpu': expected COUNT:LR, e.g."),
])
def test_a_bad_setting_is_refused_by_option_and_value(values, presets, message):
    with pytest.raises(SystemExit, match=message):
        _settings(values, "maps" if presets is None else "classifier", presets)
