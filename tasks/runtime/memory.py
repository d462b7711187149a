"""Give freed memory back to the system between stages.

A stage that builds many small objects (rows of a large table) frees them when it ends, but glibc keeps the freed
pages of every thread's arena for reuse, so the next stage's peak RSS carries them: at 62k samples that was
~150 MiB more than at 8k. `malloc_trim(0)` (glibc >= 2.8 walks every arena) returns the whole free pages; it is a
no-op where the C library has no such call (musl, macOS).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from functools import cache


@cache
def _malloc_trim():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None


def release_freed_memory() -> bool:
    """Collect garbage, then return free heap pages to the system; True when the C library could trim."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
