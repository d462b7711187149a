import pytest
from pydantic import ValidationError

from schemas.settings import AffordSettings


def test_every_setting_has_a_description():
    for name, info in AffordSettings.model_fields.items():
        assert info.description, f"AffordSettings.{name} has no description"


def test_settings_read_the_afford_prefix(monkeypatch, tmp_path):
    monkeypatch.setenv("AFFORD_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("AFFORD_ROWS_PER_SHARD", "7")
    monkeypatch.setenv("AFFORD_LLM_API_KEY", "sk-secret")
    settings = AffordSettings()
    assert settings.data_root == tmp_path and settings.rows_per_shard == 7
    assert "sk-secret" not in repr(settings)


@pytest.mark.parametrize(("name", "value"), [
    ("AFFORD_ROWS_PER_SHARD", "0"),
    ("AFFORD_DEVICE", "tpu"),
    ("AFFORD_LLM_BASE_URL", "not a url"),
    ("AFFORD_LLM_TIMEOUT_S", "-1"),
    ("AFFORD_LLM_MAX_CONCURRENCY", "100000"),
])
def test_out_of_bounds_settings_name_the_field(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        AffordSettings()
    assert name.removeprefix("AFFORD_").lower() in str(info.value)
