"""Two `afford demo` runs with one seed, one after the other into two data roots, write the same tables and the
same figures (a reduced demo: the same stages at small sizes, template instructions)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.report.render import render_run
from tasks.report.run_files import read_run
from tasks.store.compare import WALL_CLOCK_COLUMNS, shards_differing, table_differences

REDUCED_DEMO = ["demo", "--seed", "3", "--num-points", "256", "--labelled-objects-per-category", "1",
                "--labelled-grasps-per-part", "1", "--epochs", "2", "--max-cycles", "2", "--queue-size", "12",
                "--instructions", "template", "--affordance-preset", "tiny", "--affordance-steps", "20"]
# The tables with a wall-clock column (a reject's created_at, a review decision's decided_at): their shard bytes
# may differ, their rows may not.
TIMED_TABLES = {"rejects", "review"}


def _demo(root: Path, hash_seed: str) -> None:
    """`hash_seed`: PYTHONHASHSEED, different per run so that nothing may depend on the order of a set of strings."""
    afford = Path(sys.executable).with_name("afford")
    env = os.environ | {"COLUMNS": "200", "AFFORD_DATA_ROOT": str(root), "PYTHONHASHSEED": hash_seed}
    result = subprocess.run([str(afford), *REDUCED_DEMO], cwd=root.parent, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_two_demos_with_one_seed_write_identical_tables_and_figures(tmp_path):
    _demo(tmp_path / "a", "1")
    _demo(tmp_path / "b", "2")
    tables_a, tables_b = tmp_path / "a" / "tables", tmp_path / "b" / "tables"
    assert table_differences(tables_a, tables_b) == []
    assert set(shards_differing(tables_a, tables_b)) <= TIMED_TABLES, WALL_CLOCK_COLUMNS
    run_a, run_b = read_run(tmp_path / "a"), read_run(tmp_path / "b")
    # Stage wall times are the clock's, like created_at: the same stages, not the same seconds.
    timings = [run["stages"].pop("timings") for run in (run_a, run_b)]
    assert [s["stage"] for s in timings[0]["stages"]] == [s["stage"] for s in timings[1]["stages"]]
    assert run_a["stages"] == run_b["stages"]
    assert run_a["provenance"]["seed"] == 3 and run_a["provenance"]["command"].startswith("afford demo --seed 3")
    # The rendered reports differ in their header's date at most.
    body = [render_run(run).split("\n", 1)[1] for run in (run_a, run_b)]
    assert body[0] == body[1]
