"""Shared fixtures. Prefect's environment is fixed here, before anything imports Prefect."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_harness():
    """A throwaway Prefect API (temporary SQLite database) for the whole session; ~20 s to start, so
    only tests that run flows ask for it."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def tables_dir(tmp_path: Path) -> Path:
    path = tmp_path / "tables"
    path.mkdir()
    return path
