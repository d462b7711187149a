"""release_freed_memory: freed heap pages go back to the system between stages (glibc's malloc_trim)."""

from __future__ import annotations

import platform
import threading

import numpy as np
import pytest

from tasks.runtime.memory import release_freed_memory


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_pages_a_worker_thread_freed_go_back_to_the_system():
    kept: list[np.ndarray] = []

    def stage() -> None:  # a chunk task on a worker thread: many small buffers, most freed at its end
        buffers = [np.ones(64) for _ in range(300_000)]
        kept.extend(buffers[::50])  # a few survive, scattered through the heap: nothing trims by itself

    thread = threading.Thread(target=stage)
    thread.start()
    thread.join()
    before = _rss_mib()
    assert release_freed_memory() is True
    assert before - _rss_mib() > 20, "at least 20 MiB of the ~170 MiB freed should go back"
    assert len(kept) == 6000 and all(float(k.sum()) == 64.0 for k in kept[:10])  # what was kept is intact
