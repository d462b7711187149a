"""Keep Prefect's temporary API server out of the terminal's Ctrl-C.

A flow run with no PREFECT_API_URL starts a temporary API server as a child process
(`prefect.server.api.server.SubprocessASGIServer`). That child sits in the terminal's foreground process group, so
Ctrl-C reaches it at the same moment as the flow. It dies first. The interrupted run then records its crash
against a dead server and retries with backoff for minutes before it exits, which looks like a hang.

`detach_temporary_api()` makes that module start its children in a session of their own, so Ctrl-C reaches only
the command. The command records the crash on a live server and exits, and Prefect's exit handler (`stop`, on
atexit) then stops the server as it always does. Nothing else about the server changes.
"""

from __future__ import annotations

import subprocess
from typing import Any


class _OwnSession:
    """The `subprocess` module as the server module sees it, except that `Popen` starts a new session."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen:  # the name the server module calls
        kwargs.setdefault("start_new_session", True)
        return subprocess.Popen(*args, **kwargs)


def detach_temporary_api() -> None:
    """Start Prefect's temporary API server (from now on) in its own session; idempotent."""
    from prefect.server.api import server

    if not isinstance(server.subprocess, _OwnSession):
        server.subprocess = _OwnSession()
