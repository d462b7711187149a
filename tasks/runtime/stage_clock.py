"""Wall time per stage of a run: a start line and a done line with the elapsed time in the terminal, and the
seconds in the run's report (`reports/timings.json`, rendered by `afford report` as the block `demo-timings`).

    clock = StageClock(layout.reports)
    with clock.stage("ingest"):
        ...
    clock.start("instruct"); ...; clock.done("instruct")   # where a with-block would re-indent a long body

Each finished stage is written at once (merged into the file), so a run that stops half-way still shows where
its time went. The annotate flow clears `reports/` when it starts; a caller that wraps it (the demo) records its
own stages after annotate returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tasks.report.run_files import write_stage
from tasks.runtime.interrupt import check as check_interrupted
from tasks.runtime.memory import release_freed_memory

TIMINGS = "timings"


def human_seconds(seconds: float) -> str:
    """4.2 s, 75 s -> 1m15s: what a person reads at a glance."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


class StageClock:
    """Times named stages; prints `[elapsed] stage ...` lines (a flow with log_prints shows them as its log)."""

    def __init__(self, reports: Path) -> None:
        self.reports = Path(reports)
        self.started = time.perf_counter()

    def _elapsed(self) -> str:
        return human_seconds(time.perf_counter() - self.started)

    def start(self, name: str) -> None:
        check_interrupted()  # a Ctrl-C swallowed inside the last stage stops the run before the next one
        self._began = (name, time.perf_counter())
        print(f"[{self._elapsed()}] stage {name} ...")

    def done(self, name: str) -> float:
        """Record and print the stage started last; its seconds."""
        began, start = self._began
        if began != name:
            raise ValueError(f"stage {name!r} is done, but the stage started last is {began!r}")
        seconds = time.perf_counter() - start
        release_freed_memory()  # what the stage freed is not carried into the next stage's peak
        record_stage_time(self.reports, name, seconds)
        print(f"[{self._elapsed()}] stage {name} done in {human_seconds(seconds)}")
        return seconds

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.start(name)
        yield
        self.done(name)


def record_stage_time(reports: Path, name: str, seconds: float) -> None:
    """Add (or replace) one stage's seconds in `reports/timings.json`, keeping the order stages finished in."""
    path = Path(reports) / f"{TIMINGS}.json"
    stages = json.loads(path.read_text())["figures"]["stages"] if path.is_file() else []
    stages = [s for s in stages if s["stage"] != name] + [{"stage": name, "seconds": round(seconds, 1)}]
    write_stage(Path(reports), TIMINGS, {"stages": stages})
