"""Two data roots compared as a determinism check does: shard bytes first, rows without wall-clock columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas.rows import Reject
from tasks.store.compare import shards_differing, table_differences
from tasks.store.write import write_table
from tests.factories import make_table


def _rejects(when: datetime, reason: str = "field x: bad") -> list[Reject]:
    return [Reject(sample_id=f"grab-{i:016x}", stage_version="1", stage="ingest", source=f"f{i}.npz",
                   reason=reason, dataset="grab", created_at=when) for i in range(3)]


def test_equal_rows_written_at_other_times_agree_though_the_shards_differ(tmp_path):
    now = datetime.now(UTC)
    for name, when in (("a", now), ("b", now + timedelta(seconds=5))):
        make_table(tmp_path / name / "samples", n=6)
        write_table(tmp_path / name / "rejects", list(reversed(_rejects(when))) if name == "b" else _rejects(when),
                    Reject)
    assert shards_differing(tmp_path / "a", tmp_path / "b") == ["rejects"]
    assert table_differences(tmp_path / "a", tmp_path / "b") == []


def test_a_changed_row_and_a_missing_table_are_named(tmp_path):
    now = datetime.now(UTC)
    make_table(tmp_path / "a" / "samples", n=6)
    make_table(tmp_path / "b" / "samples", n=6, seed=1)
    write_table(tmp_path / "a" / "rejects", _rejects(now), Reject)
    assert table_differences(tmp_path / "a", tmp_path / "b") == [
        f"rejects: only in {tmp_path / 'a'}", "samples: rows differ (beyond created_at, decided_at)"]
