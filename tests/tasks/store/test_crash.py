"""A writer SIGKILLed at any point leaves the previous version readable, complete and alone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from schemas.rows import Sample
from tasks.store import layout
from tasks.store.read import open_table
from tests.factories import make_table, sample_dicts

ROOT = Path(__file__).resolve().parents[3]
OLD = 40  # version 1: ids 0..39; the killed write upserts ids 30..69
NEW_START, NEW_COUNT, ROWS_PER_SHARD = 30, 40, 4

pytestmark = pytest.mark.slow


def _spawn(table: Path, *pause: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "tests.tasks.store.crash_writer", str(table), str(NEW_START), str(NEW_COUNT),
            str(ROWS_PER_SHARD), *pause]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _kill_when_paused(proc: subprocess.Popen) -> list[str]:
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.strip() == "PAUSED":
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert "PAUSED" in lines, f"writer never reached the pause point: {lines}"
    return lines


def _expected(version: int) -> dict[str, str | None]:
    old = {r["sample_id"]: None for r in sample_dicts(OLD)}
    if version == 1:
        return old
    return old | {r["sample_id"]: "new" for r in sample_dicts(NEW_COUNT, start=NEW_START)}


def _assert_table_is(table: Path, version: int) -> None:
    """Both the project reader and a plain pyarrow.dataset over the data dir see exactly `version`."""
    want = _expected(version)
    opened = open_table(table, Sample)
    assert opened.version == version
    rows = {r.sample_id: r.intent for r in opened.iter_rows()}
    assert rows == want
    plain = ds.dataset(table / layout.DATA_DIR, format="parquet").to_table(columns=["sample_id", "intent"])
    assert dict(zip(*plain.to_pydict().values(), strict=True)) == want
    visible = sorted(p.name for p in (table / layout.DATA_DIR).iterdir())
    assert visible == sorted(s.name for s in opened.manifest.shards), "a file not in the manifest is visible"
    assert sorted(p.name for p in table.iterdir()) == [layout.DATA_DIR, layout.MANIFEST_NAME]


@pytest.fixture
def table(tables_dir: Path) -> Path:
    path = tables_dir / "samples"
    make_table(path, n=OLD, rows_per_shard=ROWS_PER_SHARD)
    return path


@pytest.mark.parametrize(("kind", "nth"), [
    ("shard", 1), ("shard", 6), ("carry", 2), ("rewrite", 1), ("drop", 1), ("manifest", 1),
])
def test_kill_before_publish_keeps_the_previous_version(table, kind, nth):
    _kill_when_paused(_spawn(table, kind, str(nth)))
    _assert_table_is(table, version=1)
    # The next writer cleans the killed one's staging directory up and commits normally.
    make_table(table, n=2, rows_per_shard=ROWS_PER_SHARD)
    assert not list(layout.versions_dir(table).glob("*staging*"))
    assert open_table(table).num_rows == OLD


def test_kill_after_publish_keeps_the_new_version(table):
    _kill_when_paused(_spawn(table, "publish", "1"))
    _assert_table_is(table, version=2)


@pytest.mark.parametrize("delay_s", [0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 2.0, 2.5])
def test_kill_at_arbitrary_moments_leaves_one_complete_version(table, delay_s):
    proc = _spawn(table)
    # The child spends ~1.5 s importing; the write itself follows. Different delays land in different phases.
    time.sleep(delay_s)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    finished = open_table(table).version
    assert finished in (1, 2)
    _assert_table_is(table, version=finished)
