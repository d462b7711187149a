"""One writer at a time per data root: the lock annotate and re-annotation hold while they write tables."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager

from schemas.data_root import DataRoot


@contextmanager
def data_root_lock(root: DataRoot) -> Iterator[None]:
    """An exclusive lock on the data root's lock file, held while tables are written (blocks until free)."""
    root.path.mkdir(parents=True, exist_ok=True)
    with open(root.lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
