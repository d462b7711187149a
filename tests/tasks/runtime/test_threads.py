"""AFFORD_TORCH_THREADS sets torch's intra-op threads; unset leaves torch's default."""

from __future__ import annotations

import pytest
import torch

from schemas.settings import AffordSettings
from tasks.runtime.threads import apply_torch_threads


@pytest.fixture(autouse=True)
def _restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_setting_sets_the_thread_count(monkeypatch, capsys):
    monkeypatch.setenv("AFFORD_TORCH_THREADS", "1")
    assert apply_torch_threads(AffordSettings()) == 1 == torch.get_num_threads()
    assert "1 intra-op threads" in capsys.readouterr().out


def test_unset_leaves_torch_default(monkeypatch):
    monkeypatch.delenv("AFFORD_TORCH_THREADS", raising=False)
    before = torch.get_num_threads()
    assert apply_torch_threads(AffordSettings()) == before


def test_a_bad_value_names_the_setting(monkeypatch):
    monkeypatch.setenv("AFFORD_TORCH_THREADS", "0")
    with pytest.raises(ValueError, match="torch_threads"):
        AffordSettings()
