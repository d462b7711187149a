"""kill -9 of a whole `afford annotate` run at a seeded random moment, then a re-run to the end: the tables must
end as an uninterrupted run's (no row lost, none duplicated, none changed beyond the wall-clock columns).

The run is killed as a process group (the CLI, its Prefect server, the simulated reviewer's web app), as a
crash or an OOM kill of the machine's job would. Used by tests/faults/test_kill_annotate.py (a few trials) and
bench/bench_faults.py (the full count).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tasks.store.compare import row_changes

ROOT = Path(__file__).resolve().parents[2]
# A reduced annotate: every stage at small sizes, template instructions, the simulated reviewer.
ANNOTATE_OPTIONS = ["--reviewer", "simulated", "--instructions", "template", "--affordance-preset", "tiny",
                    "--affordance-steps", "20", "--epochs", "2", "--max-cycles", "2", "--queue-size", "12",
                    "--num-points", "256", "--seed", "0"]
RUN_TIMEOUT_S = 900


@dataclass
class Trial:
    """One trial: when the run was killed (seconds after start), whether it had already finished, and how the
    re-run's tables differ from the reference ({table: (lost rows, extra rows)}; empty when they agree)."""

    index: int
    kill_after_s: float
    finished_before_kill: bool
    rerun_rc: int
    changes: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return sum(lost for lost, _ in self.changes.values())

    @property
    def extra(self) -> int:
        return sum(extra for _, extra in self.changes.values())


def _command(datasets: Path, data_root: Path, **settings: str) -> tuple[list[str], dict[str, str]]:
    """The annotate command line and its environment: this one without AFFORD_/PREFECT_ settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AFFORD_", "PREFECT_"))} | settings
    env |= {"PYTHONPATH": str(ROOT), "COLUMNS": "200", "PREFECT_HOME": str(data_root.parent / ".prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}
    return ([sys.executable, "-m", "cli.main", "annotate", "--datasets-root", str(datasets), "--data-root",
             str(data_root), *ANNOTATE_OPTIONS], env)


def run_annotate(datasets: Path, data_root: Path, log: Path, **settings: str) -> tuple[int, float]:
    """Run annotate to the end (with AFFORD_ `settings`); (exit code, seconds)."""
    command, env = _command(datasets, data_root, **settings)
    start = time.perf_counter()
    with open(log, "ab") as out:
        rc = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT_S,
                            start_new_session=True, cwd=data_root.parent).returncode
    return rc, time.perf_counter() - start


def kill_after(datasets: Path, data_root: Path, seconds: float, log: Path) -> bool:
    """Start annotate, SIGKILL its whole process group after `seconds`; True when it had finished by then."""
    command, env = _command(datasets, data_root)
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=data_root.parent)
        try:
            process.wait(timeout=seconds)
            return True
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            _reap_group(process.pid)
            return False


def kill_when(datasets: Path, data_root: Path, ready: Callable[[], bool], log: Path, timeout_s: float = RUN_TIMEOUT_S,
              **settings: str) -> bool:
    """Start annotate, SIGKILL its whole process group as soon as `ready()` (polled every 20 ms) says so; True when
    it was killed, False when it finished first."""
    command, env = _command(datasets, data_root, **settings)
    deadline = time.monotonic() + timeout_s
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=data_root.parent)
        while process.poll() is None and time.monotonic() < deadline:
            if ready():
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                _reap_group(process.pid)
                return True
            time.sleep(0.02)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            raise TimeoutError(f"annotate ran past {timeout_s:.0f} s without the kill moment arriving; see {log}")
        return False


def _reap_group(pgid: int) -> None:
    """Wait until no process of the killed group is left (a child may outlive its parent by a moment)."""
    for _ in range(100):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def run_trials(datasets: Path, work: Path, trials: int, seed: int = 0) -> tuple[float, list[Trial]]:
    """The reference run, then `trials` kill-and-rerun trials with kill moments drawn uniformly from the
    reference run's duration (seeded). Returns (reference seconds, trials)."""
    reference = work / "reference" / "data"
    reference.parent.mkdir(parents=True, exist_ok=True)
    rc, seconds = run_annotate(datasets, reference, reference.parent / "log.txt")
    if rc != 0:
        raise RuntimeError(f"the uninterrupted reference run failed (exit {rc}); see {reference.parent / 'log.txt'}")
    draws = random.Random(seed)
    results = []
    for index in range(trials):
        folder = work / f"trial{index:02d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        moment = draws.uniform(0.05, 0.95) * seconds
        finished = kill_after(datasets, folder / "data", moment, folder / "log.txt")
        rerun_rc, _ = run_annotate(datasets, folder / "data", folder / "log.txt")
        changes = row_changes(reference / "tables", folder / "data" / "tables") if rerun_rc == 0 else {"*": (-1, -1)}
        results.append(Trial(index, round(moment, 1), finished, rerun_rc, changes))
        shutil.rmtree(folder / ".prefect", ignore_errors=True)
    return seconds, results
