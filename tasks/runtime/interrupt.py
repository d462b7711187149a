"""A Ctrl-C that is not lost: the first SIGINT is remembered as well as raised.

Python raises KeyboardInterrupt in the main thread wherever it happens to be. Inside library code that catches
BaseException around its own waits (a Prefect API call made from a progress callback, say), it can be swallowed,
and the run then carries on as if nothing happened. `install()` (done by the `afford` entry point) keeps a flag
beside the usual KeyboardInterrupt, and long loops call `check()` between units of work (each instruction key,
each stage), so a swallowed interrupt still stops the run at the next one.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

_INTERRUPTED = threading.Event()


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    _INTERRUPTED.set()
    raise KeyboardInterrupt


def install() -> None:
    """Handle SIGINT with `_on_sigint` (main thread only: Python runs signal handlers there)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)


def check() -> None:
    """Raise KeyboardInterrupt when a Ctrl-C arrived earlier in this process."""
    if _INTERRUPTED.is_set():
        raise KeyboardInterrupt("interrupted earlier (Ctrl-C)")


def reset() -> None:
    """Forget an earlier Ctrl-C (tests; a long-lived process that handled it)."""
    _INTERRUPTED.clear()
