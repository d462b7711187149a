"""Checkpoints loaded once per worker process: the chunk tasks of a stage (threads of one process, or the tasks a
Dask worker runs) share one loaded model instead of reading it per chunk."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from tasks.runtime.threads import worker_threads

T = TypeVar("T")
_loaded: dict[str, tuple[tuple, object]] = {}  # kind -> (key, model): one model per kind at a time
_lock = threading.Lock()


def cached(kind: str, checkpoint: str, checkpoint_sha256: str, device: str, load: Callable[[], T],
           sha_of: Callable[[T], str]) -> T:
    """The model of `kind` for (checkpoint, sha256, device), loaded by `load()` the first time; ValueError naming
    the file when the file's sha256 is not the one the stage planned with (replaced while it ran)."""
    key = (checkpoint, checkpoint_sha256, device)
    with _lock:
        held = _loaded.get(kind)
        if held is None or held[0] != key:
            worker_threads()
            model = load()
            if sha_of(model) != checkpoint_sha256:
                raise ValueError(f"checkpoint {checkpoint}: sha256 {sha_of(model)[:12]} is not the planned "
                                 f"{checkpoint_sha256[:12]} (replaced while the stage ran)")
            _loaded[kind] = (key, model)  # a worker that served an older run lets that model go
        return _loaded[kind][1]
