"""Chunked stages: content keys, atomic chunk commits, publishing by hard link, and the runner's failure, resume and
progress behaviour on Prefect's thread pool."""

import os

import numpy as np
import pyarrow.parquet as pq
import pytest
from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.task_runners import ThreadPoolTaskRunner

from schemas.manifest import Lineage
from schemas.rows import Reject, Sample
from tasks.runtime.chunked import ChunkFailed, publish_chunks, read_outputs, run_chunks
from tasks.store.chunks import ChunkStore, plan_chunks, rows_digest
from tasks.store.errors import SchemaMismatchError
from tasks.store.read import open_table
from tasks.store.side_rows import KeyedShards, side_rows
from tasks.store.write import TableWriter, write_table
from tests.factories import sample_dicts

LINEAGE = Lineage(stage="test", stage_version="1")


def _samples(path, n=20, rows_per_shard=3, **overrides):
    write_table(path, sample_dicts(n, **overrides), Sample, rows_per_shard=rows_per_shard)
    return path


def test_plan_cuts_shards_into_chunks_with_stable_content_keys(tmp_path):
    table = _samples(tmp_path / "samples")  # 20 rows in shards of 3: 7 shards
    chunks = plan_chunks("stage", [table], 2, {"v": 1})
    assert [len(c.shards) for c in chunks] == [2, 2, 2, 1] and [c.total for c in chunks] == [4] * 4
    assert sum(c.rows for c in chunks) == 20 and len({c.key for c in chunks}) == 4
    ids = [i for c in chunks for i in c.sample_ids]
    assert ids == open_table(table).read(["sample_id"]).column(0).to_pylist()
    assert [c.key for c in plan_chunks("stage", [table], 2, {"v": 1})] == [c.key for c in chunks]
    assert not {c.key for c in plan_chunks("stage", [table], 2, {"v": 2})} & {c.key for c in chunks}
    # A side row that belongs to one chunk's samples re-keys that chunk only.
    touched = chunks[1].sample_ids[0]
    side = plan_chunks("stage", [table], 2, {"v": 1},
                       side_key=lambda sample_ids: rows_digest("changed" if i == touched else i for i in sample_ids))
    plain = plan_chunks("stage", [table], 2, {"v": 1}, side_key=lambda sample_ids: rows_digest(sample_ids))
    assert [a.key == b.key for a, b in zip(side, plain, strict=True)] == [True, False, True, True]
    with pytest.raises(ValueError, match="shards_per_chunk must be >= 1, got 0"):
        plan_chunks("stage", [table], 0, {})


def test_a_changed_input_shard_re_keys_only_its_chunk(tmp_path):
    table = _samples(tmp_path / "samples", n=12, rows_per_shard=3)
    before = plan_chunks("stage", [table], 1, {})
    changed = sample_dicts(1, start=4, seed=9)  # row 4 sits in the second shard; upsert rewrites that shard
    write_table(table, changed, Sample, rows_per_shard=3)
    after = plan_chunks("stage", [table], 1, {})
    assert len({c.key for c in before} & {c.key for c in after}) == len(before) - 1


def test_a_shard_with_rows_deleted_in_place_re_keys_its_chunk_and_leaves_them_out(tmp_path):
    table = _samples(tmp_path / "samples", n=12, rows_per_shard=4)
    before = plan_chunks("stage", [table], 1, {})
    changed = sample_dicts(1, start=5, seed=9)  # 1 of 4 rows: the second shard is kept, row 1 listed deleted
    write_table(table, changed, Sample, rows_per_shard=4)
    [masked] = [s for s in open_table(table).manifest.shards if s.deleted]
    after = plan_chunks("stage", [table], 1, {})
    assert len({c.key for c in before} & {c.key for c in after}) == len(before) - 1
    [chunk] = [c for c in after if masked in c.shards]
    assert chunk.rows == 3 and changed[0]["sample_id"] not in chunk.sample_ids
    assert sum(c.rows for c in after) == 12 and sorted(i for c in after for i in c.sample_ids) == sorted(
        open_table(table).keys())


def test_publish_from_chunks_hard_links_and_equals_a_direct_write(tmp_path):
    table = _samples(tmp_path / "samples")
    chunks = plan_chunks("copy", [table], 3, {})
    store = ChunkStore(tmp_path / "chunks", "copy")
    for chunk in chunks:
        rows = list(open_table(chunk.table, Sample).iter_rows(shards=chunk.shards))
        store.commit(chunk.key, {"rows": (rows, Sample), "rejects": ([], Reject)}, {"chunk": chunk.index})
    manifest = publish_chunks(tmp_path / "copied", Sample, chunks, store, "rows", LINEAGE)
    assert manifest.num_rows == 20 and len(manifest.shards) == len(chunks)
    copied = open_table(tmp_path / "copied", Sample)
    assert copied.read().equals(open_table(table, Sample).read())
    first = copied.shard_path(manifest.shards[0])
    assert os.stat(first).st_ino == os.stat(store.output(chunks[0].key, "rows")).st_ino  # no second copy
    assert read_outputs(chunks, store, "rejects") is None


def test_adopt_refuses_a_file_of_another_model_naming_it(tmp_path):
    store = ChunkStore(tmp_path / "chunks", "s")
    key = "a" * 64
    store.commit(key, {"rows": ([], Reject)}, {})
    with pytest.raises(SchemaMismatchError, match=r"rows\.parquet"), TableWriter(tmp_path / "t", Sample) as writer:
        writer.adopt_shard(store.output(key, "rows"))
    assert not (tmp_path / "t").exists()  # the failed writer published nothing


def test_store_prunes_stale_chunks_and_staging_leftovers_only(tmp_path):
    store = ChunkStore(tmp_path / "chunks", "s")
    keep, stale = "b" * 64, "c" * 64
    for key in (keep, stale):
        store.commit(key, {"rows": ([], Reject)}, {"n": 1})
    leftover = store.path / f"{'d' * 64}.staging-123-abcd"
    leftover.mkdir()
    (store.path / "notes.txt").write_text("a person's file")
    removed = store.prune([keep])
    assert sorted(p.name for p in removed) == sorted([stale, leftover.name])
    assert store.committed(keep) and not store.committed(stale) and (store.path / "notes.txt").exists()
    assert store.meta(keep)["n"] == 1 and store.meta(keep)["outputs"]["rows"]["rows"] == 0
    with pytest.raises(ValueError, match="expected 64 hex digits"):
        store.committed("../x")


def test_side_rows_read_only_the_shards_holding_the_ids(tmp_path):
    table = _samples(tmp_path / "side", n=10, rows_per_shard=2)
    keyed = KeyedShards(table)
    ids = [sample_dicts(1, start=i)[0]["sample_id"] for i in (0, 5)]
    assert keyed.shards_for(ids) == (open_table(table).manifest.shards[0].name,
                                     open_table(table).manifest.shards[2].name)
    rows = side_rows(table, Sample, ids, keyed.shards_for(ids))
    assert sorted(rows) == sorted(ids)
    assert side_rows(table, Sample, ids, keyed.shards_for(ids[:1])).keys() == {ids[0]}
    assert side_rows(tmp_path / "absent", Sample, ids) == {} and KeyedShards(None).shards_for(ids) == ()


CALLS: list[int] = []


@task(cache_policy=NONE, retries=1, retry_delay_seconds=0)
def _double_task(chunk, store_root, fail_index=None, scale=1.0):
    CALLS.append(chunk.index)
    if chunk.index == fail_index:
        raise ValueError(f"bad values in chunk {chunk.index}")
    rows = list(open_table(chunk.table, Sample).iter_rows(shards=chunk.shards))
    for row in rows:
        row.object_points = (np.asarray(row.object_points) * scale).astype(np.float32)
    return ChunkStore(store_root, chunk.stage).commit(chunk.key, {"rows": (rows, Sample)},
                                                      {"rows": len(rows), "seconds": 0.0})


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def _scale_flow(table: str, store_root: str, out: str, fail_index: int | None = None) -> int:
    chunks = plan_chunks("scaled", [table], 1, {"scale": 2.0})
    store = ChunkStore(store_root, "scaled")
    run = run_chunks(_double_task, chunks, store, fail_index=fail_index, scale=2.0)
    publish_chunks(out, Sample, chunks, store, "rows", LINEAGE)
    return run.computed


@pytest.mark.server
def test_a_failing_chunk_is_retried_named_and_the_rerun_computes_only_it(prefect_harness, tmp_path, capsys):
    table = _samples(tmp_path / "samples", n=20, rows_per_shard=2, source_path="meshes/first.obj")  # 10 chunks
    CALLS.clear()
    with pytest.raises(ChunkFailed, match=r"scaled chunk 4/10 of .*samples .*first source meshes/first.obj: "
                                          r"ValueError: bad values in chunk 3 \(1 of 10 chunks failed; 9 finished"):
        _scale_flow(str(table), str(tmp_path / "chunks"), str(tmp_path / "out"), fail_index=3)
    assert sorted(CALLS) == [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9]  # the failing chunk ran twice (one retry)
    assert not (tmp_path / "out").exists()  # nothing published
    assert "scaled: chunk 9/10" in capsys.readouterr().out
    CALLS.clear()
    assert _scale_flow(str(table), str(tmp_path / "chunks"), str(tmp_path / "out")) == 1
    assert CALLS == [3]
    out = open_table(tmp_path / "out", Sample).read()
    source = open_table(table, Sample).read()
    assert out.column("sample_id").equals(source.column("sample_id"))
    np.testing.assert_array_equal(pq.read_table(open_table(tmp_path / "out").shard_paths()[3])
                                  .column("object_points").to_pylist()[0],
                                  np.asarray(source.column("object_points").to_pylist()[6]) * 2)
