"""Keep Prefect's temporary API server out of the terminal's Ctrl-C.

A flow run with no PREFECT_API_URL starts a temporary API server as a child process
(`prefect.server.api.server.SubprocessASGIServer`). A terminal's Ctrl-C goes to the whole foreground process
group, so it reaches that child at the same moment as the flow, and the child dies first. The interrupted run
then records its crash against a dead server. It retries with backoff for minutes before it exits, which looks
like a hang.

`detach_temporary_api()` makes that module start its children with SIGINT blocked. The mask is inherited
across exec, and uvicorn's handlers do not unblock it. Ctrl-C then reaches only the command, which records the
crash on a live server and exits. Prefect's exit handler (`stop`, on atexit) then stops the server with SIGTERM,
as it always does. The child stays in the command's process group on purpose: killing the group (kill -9 of a
whole run) still takes the server with it, so no orphan is left behind.
"""

from __future__ import annotations

import signal
import subprocess
from typing import Any


class _NoCtrlC:
    """The `subprocess` module as the server module sees it, except that `Popen` starts children with SIGINT
    blocked. Only the calling thread's mask changes, and only for the fork: the child inherits it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    @staticmethod
    def Popen(*args: Any, **kwargs: Any) -> subprocess.Popen:  # the name the server module calls
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            return subprocess.Popen(*args, **kwargs)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def detach_temporary_api() -> None:
    """Start Prefect's temporary API server (from now on) deaf to Ctrl-C; idempotent."""
    from prefect.server.api import server

    if not isinstance(server.subprocess, _NoCtrlC):
        server.subprocess = _NoCtrlC()
