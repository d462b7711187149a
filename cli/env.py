"""Environment defaults that must be in place before Prefect is imported."""

from __future__ import annotations

import os

PREFECT_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # The ephemeral API needs ~15 s to start on a 2-core machine; Prefect's default gives up sooner.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def apply_prefect_defaults() -> None:
    for name, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(name, value)
