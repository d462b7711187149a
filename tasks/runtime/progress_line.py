"""Text progress for stages a person waits on: a bar and the time left, the same in a terminal and Prefect's log.

    f"step 120/600 {bar(120, 600)} {time_left(34.0, 120, 600)}"
    -> "step 120/600 [####----------------] 2m16s left"
"""

from __future__ import annotations


def bar(done: int | float, total: int | float, width: int = 20) -> str:
    """`[####------]`: `done` of `total` filled, `width` characters inside the brackets (total 0 counts as done)."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    if done < 0 or total < 0:
        raise ValueError(f"done and total must be >= 0, got done={done}, total={total}")
    filled = width if total == 0 else min(width, round(width * done / total))
    return f"[{'#' * filled}{'-' * (width - filled)}]"


def time_left(elapsed_s: float, done: int | float, total: int | float) -> str:
    """"1m30s left" at the pace so far (elapsed / done per unit); "time left unknown" before the first unit."""
    if done <= 0:
        return "time left unknown"
    left = round(elapsed_s / done * max(total - done, 0))
    return f"{left // 60}m{left % 60:02d}s left"
