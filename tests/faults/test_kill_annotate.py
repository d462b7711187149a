"""kill -9 of a whole `afford annotate` run at seeded random moments, each followed by a re-run: the tables end
as an uninterrupted run's, with no row lost and none duplicated. `make test` runs AFFORD_FAULT_TRIALS trials
(default 2); bench/bench_faults.py runs the full count and records it in BENCHMARKS.md."""

from __future__ import annotations

import os

import pytest

from tasks.synth.datasets import synthesize_datasets
from tests.faults.annotate_kill import run_trials

pytestmark = pytest.mark.slow
TRIALS = int(os.environ.get("AFFORD_FAULT_TRIALS", "2"))


def test_annotate_killed_at_random_moments_then_rerun_loses_and_duplicates_nothing(tmp_path):
    datasets = tmp_path / "datasets"
    synthesize_datasets(datasets, objects_per_category=1, seed=0, steps=20)
    reference_s, trials = run_trials(datasets, tmp_path / "work", TRIALS, seed=1)
    assert len(trials) == TRIALS and reference_s > 0
    assert sum(not t.finished_before_kill for t in trials) >= 1, "no trial killed the run before it finished"
    for trial in trials:
        assert trial.rerun_rc == 0, f"trial {trial.index}: re-run exit {trial.rerun_rc} (see its log.txt)"
        assert trial.changes == {}, f"trial {trial.index} killed at {trial.kill_after_s} s: {trial.changes}"
