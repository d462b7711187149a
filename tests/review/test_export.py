"""The audit trail as Parquet: every row, undos included, with its item beside it; never over another file."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli.main import app
from review.export import write_trail
from review.store import ReviewStore
from schemas.review import DecisionIn, QueueItem


def _store(path: Path) -> ReviewStore:
    store = ReviewStore(path)
    for cycle in (0, 1):
        store.create_queue(cycle, [QueueItem(cycle=cycle, position=i, sample_id=f"grab-{cycle}{i:015x}",
                                             dataset="grab", object_category="mug", predicted="wrap-grasp",
                                             confidence=0.5 + i / 10, reviews=2 if i == 1 else 1)
                                   for i in range(3)])
    store.decide(0, DecisionIn(sample_id="grab-0000000000000000", decision="accepted", reviewer="ann"))
    store.decide(0, DecisionIn(sample_id="grab-0000000000000001", decision="relabelled", label="lever",
                               reviewer="bob", comment="it's the lever"))
    store.undo(0, "bob")
    store.decide(1, DecisionIn(sample_id="grab-1000000000000002", decision="skipped", reviewer="ann"))
    return store


def test_the_parquet_trail_holds_every_row_with_its_item(tmp_path):
    store = _store(tmp_path / "review.sqlite")
    assert write_trail(store, tmp_path / "trail.parquet") == 4
    rows = pq.read_table(tmp_path / "trail.parquet").to_pylist()
    assert [(r["cycle"], r["position"], r["kind"], r["reviewer"]) for r in rows] == [
        (0, 0, "accepted", "ann"), (0, 1, "relabelled", "bob"), (0, 1, "undo", "bob"), (1, 2, "skipped", "ann")]
    relabel, undo = rows[1], rows[2]
    assert (relabel["label"], relabel["comment"], relabel["reviews"], relabel["confidence"]) == (
        "lever", "it's the lever", 2, pytest.approx(0.6))
    assert undo["undoes"] == relabel["id"]
    assert rows[0]["at_utc"].isoformat() == store.trail(0)[0].at  # the same instant, typed


def test_export_refuses_to_overwrite_a_file_it_did_not_write(tmp_path):
    store = _store(tmp_path / "review.sqlite")
    other = tmp_path / "notes.parquet"
    other.write_bytes(b"PAR1 someone else's data")
    with pytest.raises(FileExistsError, match=r"notes\.parquet"):
        write_trail(store, other)
    assert other.read_bytes() == b"PAR1 someone else's data"
    write_trail(store, tmp_path / "trail.parquet", [1])
    assert write_trail(store, tmp_path / "trail.parquet", [0]) == 3  # an earlier export is replaced


def test_cli_export_one_cycle_and_unknown_cycle(tmp_path):
    _store(tmp_path / "review.sqlite")
    runner = CliRunner()
    out = tmp_path / "cycle1.parquet"
    result = runner.invoke(app, ["review", "export", "--store", str(tmp_path / "review.sqlite"), "--out", str(out),
                                 "--cycle", "1"])
    assert result.exit_code == 0, result.output
    assert "1 decision rows" in result.output and pq.read_table(out).num_rows == 1
    result = runner.invoke(app, ["review", "export", "--store", str(tmp_path / "review.sqlite"), "--out", str(out),
                                 "--cycle", "7"])
    assert result.exit_code == 1 and "cycle 7" in result.output
