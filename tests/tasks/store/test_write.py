import os
import threading

import numpy as np
import pyarrow.parquet as pq
import pytest

from schemas.manifest import Lineage
from schemas.rows import Reject, Sample
from tasks.store import layout
from tasks.store.errors import DuplicateKeyError, RowValidationError, SchemaMismatchError
from tasks.store.read import open_table
from tasks.store.write import TableWriter, write_table
from tasks.synth.toy_samples import corrupt
from tests.factories import make_table, sample_dicts


def _rows(path):
    return {r.sample_id: r for r in open_table(path, Sample).iter_rows()}


def test_round_trip_keeps_every_value(tables_dir):
    path = tables_dir / "samples"
    written = sample_dicts(10)
    manifest = write_table(path, written, Sample, rows_per_shard=4)
    assert manifest.num_rows == 10 and [s.rows for s in manifest.shards] == [4, 4, 2]
    read = _rows(path)
    for row in written:
        got = read[row["sample_id"]]
        np.testing.assert_array_equal(got.object_points, row["object_points"])
        np.testing.assert_array_equal(got.hand_pose, row["hand_pose"])
        np.testing.assert_array_equal(got.object_point_labels, row["object_point_labels"])
        assert got.affordance == row["affordance"] and got.split == row["split"]


def test_shards_are_zstd_parquet_listed_with_sha256(tables_dir):
    path = tables_dir / "samples"
    manifest = make_table(path, n=6, rows_per_shard=3)
    table = open_table(path, Sample)
    for shard in manifest.shards:
        file = table.shard_path(shard)
        assert file.stat().st_size == shard.bytes and len(shard.sha256) == 64
        assert pq.ParquetFile(file).metadata.row_group(0).column(0).compression == "ZSTD"
    assert (path / layout.MANIFEST_NAME).is_file()
    assert sorted(p.name for p in (path / layout.DATA_DIR).iterdir()) == sorted(s.name for s in manifest.shards)


def test_writing_the_same_rows_again_does_not_duplicate(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=10)
    make_table(path, n=10)
    table = open_table(path, Sample)
    assert table.num_rows == 10 and len(set(table.keys())) == 10 and table.version == 2


def test_upsert_replaces_changed_rows_and_keeps_the_rest(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=10, rows_per_shard=4)
    changed = sample_dicts(3, start=8, seed=0, intent="hold")  # ids 8, 9 replace; id 10 is new
    write_table(path, changed, Sample, rows_per_shard=4)
    rows = _rows(path)
    assert len(rows) == 11
    assert [rows[r["sample_id"]].intent for r in changed] == ["hold"] * 3
    assert sum(r.intent == "hold" for r in rows.values()) == 3


def test_untouched_shards_are_carried_as_hard_links(tables_dir):
    path = tables_dir / "samples"
    first = make_table(path, n=12, rows_per_shard=4)
    old = {s.name: (open_table(path).shard_path(s)).stat().st_ino for s in first.shards}
    events = []
    write_table(path, sample_dicts(1, start=0, intent="use"), Sample, rows_per_shard=4, progress=events.append)
    kinds = [e.kind for e in events]
    # 1 row of a 4-row shard replaced (25 % <= REWRITE_SHARE): that file is kept with the row listed as deleted
    assert kinds.count("carry") == 2 and kinds.count("mask") == 1 and kinds.count("rewrite") == 0
    assert kinds[-2:] == ["manifest", "publish"]
    table = open_table(path, Sample)
    carried = [s for s in table.manifest.shards if s.name in old]
    assert len(carried) == 3 and [s.deleted for s in carried] == [[0], [], []]
    assert all(table.shard_path(s).stat().st_ino == old[s.name] for s in carried)
    assert table.num_rows == 12 and _rows(path)[sample_dicts(1)[0]["sample_id"]].intent == "use"


def test_deleted_rows_accumulate_until_the_shard_is_rewritten(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=8, rows_per_shard=8)
    ids = [r["sample_id"] for r in sample_dicts(8)]
    write_table(path, sample_dicts(1, start=3, intent="use"), Sample, rows_per_shard=8)  # 1/8 deleted
    with TableWriter(path, Sample, rows_per_shard=8) as writer:
        writer.delete([ids[5]])  # 2/8 = 25 %: still carried
    table = open_table(path, Sample)
    [first] = [s for s in table.manifest.shards if s.rows == 8]
    assert first.deleted == [3, 5] and table.num_rows == 7 and sorted(table.keys()) == sorted(set(ids) - {ids[5]})
    # Every read path leaves the deleted rows out, whatever the batch cut
    for batch_rows in (1, 3, 256):
        got = [k for b in table.iter_batches(["sample_id"], batch_rows=batch_rows, shards=[first])
               for k in b.column(0).to_pylist()]
        assert got == [i for n, i in enumerate(ids) if n not in (3, 5)]
    assert table.read(["sample_id"]).num_rows == 7 and len(list(table.iter_rows())) == 7
    with TableWriter(path, Sample, rows_per_shard=8) as writer:
        writer.delete([ids[0]])  # 3/8 > 25 %: rewritten without the 3 rows
    table = open_table(path, Sample)
    assert all(not s.deleted for s in table.manifest.shards) and table.num_rows == 6
    assert sorted(table.keys()) == sorted(set(ids) - {ids[0], ids[5]})
    assert _rows(path)[ids[3]].intent == "use"


def test_a_manifest_without_deletions_does_not_name_the_field(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=4, rows_per_shard=4)
    assert '"deleted"' not in (path / layout.MANIFEST_NAME).read_text()
    write_table(path, sample_dicts(1, start=0, intent="use"), Sample, rows_per_shard=4)
    [masked] = [s for s in open_table(path).manifest.shards if s.deleted]
    assert masked.content_id != masked.sha256 and masked.content_id.startswith(masked.sha256)


def test_delete_removes_rows_and_overwrite_replaces_the_table(tables_dir):
    path = tables_dir / "samples"
    rows = sample_dicts(6)
    write_table(path, rows, Sample)
    with TableWriter(path, Sample) as writer:
        writer.delete([rows[0]["sample_id"], rows[1]["sample_id"]])
    assert set(open_table(path).keys()) == {r["sample_id"] for r in rows[2:]}
    write_table(path, rows[:1], Sample, mode="overwrite")
    assert open_table(path).keys() == [rows[0]["sample_id"]]


def test_composite_keys_for_rejects(tables_dir):
    path = tables_dir / "rejects"
    sid = sample_dicts(1)[0]["sample_id"]
    rejects = [Reject(sample_id=sid, stage_version="1", stage=stage, source="a.pkl", reason="bad")
               for stage in ("ingest", "pseudo_label")]
    write_table(path, rejects, Reject)
    write_table(path, rejects[:1], Reject)
    assert sorted(open_table(path, Reject).keys()) == sorted([f"ingest\x1f{sid}", f"pseudo_label\x1f{sid}"])
    with TableWriter(path, Reject) as writer:
        writer.delete([("ingest", sid)])
    assert open_table(path).num_rows == 1
    with TableWriter(path, Reject) as writer, pytest.raises(ValueError, match="has 1 parts; the table key"):
        writer.delete([sid])


def test_invalid_row_raises_naming_table_and_field(tables_dir):
    path = tables_dir / "samples"
    rows = sample_dicts(3)
    rows[1] = corrupt(rows[1], "nan_pose")
    with pytest.raises(RowValidationError) as info:
        write_table(path, rows, Sample)
    assert info.value.field == "hand_pose" and str(path) in str(info.value)
    assert "row 1" in str(info.value) and not path.exists()


def test_invalid_rows_can_be_collected_as_rejects(tables_dir):
    path = tables_dir / "samples"
    rows = sample_dicts(6)
    rows[2] = corrupt(rows[2], "points_shape")
    rows[4] = corrupt(rows[4], "unknown_affordance") | {"sample_id": "garbage"}
    with TableWriter(path, Sample, on_invalid="collect", lineage=Lineage(stage="ingest", stage_version="3")) as w:
        w.write(rows)
    assert w.manifest.num_rows == 4 and len(w.rejects) == 2
    assert [r.field for r in w.rejects] == ["object_points", "sample_id"]
    assert "field affordance: " in w.rejects[1].reason  # every problem of the row is in the reason
    assert w.rejects[0].sample_id == rows[2]["sample_id"] and w.rejects[0].stage == "ingest"
    assert w.rejects[1].sample_id.startswith("invalid-")


def test_duplicate_key_in_one_write_is_refused(tables_dir):
    rows = sample_dicts(2)
    with pytest.raises(DuplicateKeyError, match=rows[0]["sample_id"]):
        write_table(tables_dir / "samples", [rows[0], rows[1], rows[0]], Sample)


def test_write_arrow_checks_columns(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=4)
    data = open_table(path, Sample).read()
    write_table(tables_dir / "copy", data, Sample)
    assert open_table(tables_dir / "copy", Sample).read().equals(data)
    with pytest.raises(SchemaMismatchError, match="hand_pose"):
        write_table(tables_dir / "bad", data.drop_columns(["hand_pose"]), Sample)


def test_exception_inside_the_block_leaves_the_previous_version(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=4)
    with pytest.raises(RuntimeError, match="boom"), TableWriter(path, Sample) as writer:
        writer.write(sample_dicts(3, start=10))
        raise RuntimeError("boom")
    assert open_table(path).num_rows == 4
    assert not list(layout.versions_dir(path).glob("*staging*"))


def test_empty_write_creates_an_empty_readable_table(tables_dir):
    path = tables_dir / "rejects"
    manifest = write_table(path, [], Reject)
    table = open_table(path, Reject)
    assert manifest.num_rows == 0 and table.read().num_rows == 0
    assert table.read().schema.names == list(Reject.model_fields)


def test_old_versions_are_garbage_collected(tables_dir):
    path = tables_dir / "samples"
    for seed in range(4):
        make_table(path, n=3, seed=seed)
    assert layout.committed_versions(path) == [3, 4]
    assert open_table(path).version == 4


def test_concurrent_writers_lose_nothing(tables_dir):
    path = tables_dir / "samples"
    errors = []

    def write(start):
        try:
            write_table(path, sample_dicts(5, start=start), Sample, rows_per_shard=2)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i * 5,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(open_table(path).keys()) == sorted(r["sample_id"] for r in sample_dicts(20))


def test_a_plain_directory_table_is_taken_over_on_write(tables_dir, tmp_path):
    path = tables_dir / "samples"
    make_table(path, n=4)
    copied = tmp_path / "copied" / "samples"
    copied.parent.mkdir()
    os.system(f"cp -rL {path} {copied}")
    assert not copied.is_symlink() and open_table(copied).num_rows == 4
    write_table(copied, sample_dicts(2, start=4), Sample)
    assert copied.is_symlink() and open_table(copied).num_rows == 6
    write_table(copied, sample_dicts(2, start=6), Sample)
    # The imported copy is not the store's own: garbage collection keeps it.
    imported = list(layout.versions_dir(copied).glob("*.imported-*"))
    assert len(imported) == 1 and open_table(imported[0]).num_rows == 4


def test_an_existing_file_is_never_replaced(tables_dir):
    path = tables_dir / "samples"
    path.write_text("precious")
    with pytest.raises(layout.NotATableError, match=r"samples: is an existing file"):
        write_table(path, sample_dicts(2), Sample)
    assert path.read_text() == "precious"
    assert not layout.versions_dir(path).exists()


def test_a_folder_that_is_not_a_table_is_refused_and_kept(tables_dir):
    path = tables_dir / "data"
    (path / "sub").mkdir(parents=True)
    for i in range(5):
        (path / "sub" / f"{i}.json").write_text(str(i))
    with pytest.raises(layout.NotATableError, match=r"existing folder with no manifest.json"):
        write_table(path, sample_dicts(2), Sample)
    assert sorted(p.name for p in (path / "sub").iterdir()) == [f"{i}.json" for i in range(5)]


def test_an_adopted_folder_survives_as_the_previous_version(tables_dir):
    path = tables_dir / "data"
    path.mkdir()
    (path / "keep.txt").write_text("mine")
    write_table(path, sample_dicts(2), Sample, adopt_plain_folder=True)
    write_table(path, sample_dicts(2, start=2), Sample)
    write_table(path, sample_dicts(2, start=4), Sample)
    assert open_table(path).num_rows == 6
    [kept] = layout.versions_dir(path).glob("*.imported-*")
    assert (kept / "keep.txt").read_text() == "mine"


def test_a_link_to_somewhere_else_is_refused(tables_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.txt").write_text("a")
    path = tables_dir / "samples"
    path.symlink_to(elsewhere)
    with pytest.raises(layout.NotATableError, match="is a link to"):
        write_table(path, sample_dicts(2), Sample)
    assert path.resolve() == elsewhere.resolve() and (elsewhere / "a.txt").read_text() == "a"


def test_writer_must_be_used_as_a_context_manager(tables_dir):
    with pytest.raises(RuntimeError, match="context manager"):
        TableWriter(tables_dir / "x", Sample).write(sample_dicts(1))


def _write_concurrently(paths_and_starts, per_writer):
    """One thread per (path, first id): each upserts `per_writer` distinct keys, one write each."""
    errors = []

    def write(path, start):
        try:
            for i in range(start, start + per_writer):
                write_table(path, sample_dicts(1, start=i, num_points=4), Sample)
        except Exception as exc:  # surfaced by the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=args) for args in paths_and_starts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_writers_through_an_alias_and_the_table_lose_nothing(tables_dir, tmp_path):
    path = tables_dir / "samples"
    make_table(path, n=1)
    alias = tmp_path / "alias"
    alias.symlink_to(path)
    n = 100
    errors = _write_concurrently([(path, 1), (alias, 1 + n)], per_writer=n)
    assert not errors
    assert alias.is_symlink() and os.readlink(alias) == str(path)  # the alias is left as the user made it
    assert sorted(open_table(path).keys()) == sorted(r["sample_id"] for r in sample_dicts(1 + 2 * n))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".alias")] == []


def test_an_alias_inside_the_tables_folder_and_a_version_folder_write_the_table(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=2)
    (tables_dir / "also").symlink_to("samples")
    write_table(tables_dir / "also", sample_dicts(2, start=2), Sample)
    write_table(layout.resolve_version_dir(path), sample_dicts(2, start=4), Sample)
    table = open_table(path, Sample)
    assert table.num_rows == 6 and table.manifest.table == "samples"
    assert os.readlink(tables_dir / "also") == "samples"
    assert sorted(p.name for p in tables_dir.iterdir()) == [".samples.lock", ".samples.versions", "also", "samples"]


def test_a_table_reached_through_a_linked_folder_takes_the_same_lock(tables_dir, tmp_path):
    path = tables_dir / "samples"
    make_table(path, n=1)
    linked = tmp_path / "linked"
    linked.symlink_to(tables_dir)
    assert layout.lock_path(layout.table_path(linked / "samples")) == layout.lock_path(layout.table_path(path))
    assert layout.table_path(linked / "samples") == tables_dir.resolve() / "samples"
    errors = _write_concurrently([(path, 1), (linked / "samples", 41)], per_writer=40)
    assert not errors and open_table(path).num_rows == 81


def test_a_collected_reject_quoting_a_huge_bad_value_stays_bounded(tables_dir):
    path = tables_dir / "samples"
    rows = sample_dicts(2)
    rows[1] = rows[1] | {"sample_id": "\x1b]0;" + "x" * (50 * 2**20), "source_path": "grab/s1/" + "y" * 10**6}
    with TableWriter(path, Sample, on_invalid="collect") as writer:
        writer.write(rows)
    [reject] = writer.rejects
    assert len(reject.reason) <= 500 and reject.reason.startswith("row 1 (sample_id=\\x1b]0;xxx")
    assert len(reject.source) <= 500 and reject.source.startswith("grab/s1/yyy") and reject.field == "sample_id"


def test_shard_size_comes_from_the_setting_unless_given(tables_dir, monkeypatch):
    monkeypatch.setenv("AFFORD_ROWS_PER_SHARD", "2")
    manifest = write_table(tables_dir / "by_setting", sample_dicts(5), Sample)
    assert [s.rows for s in manifest.shards] == [2, 2, 1]
    manifest = write_table(tables_dir / "given", sample_dicts(5), Sample, rows_per_shard=4)
    assert [s.rows for s in manifest.shards] == [4, 1]
    monkeypatch.setenv("AFFORD_ROWS_PER_SHARD", "0")
    with pytest.raises(ValueError, match="rows_per_shard"):
        write_table(tables_dir / "bad", sample_dicts(1), Sample)


def test_a_rewrite_share_outside_0_1_is_refused_by_name(tables_dir, monkeypatch):
    with pytest.raises(ValueError, match=r"rewrite_share must be in \[0, 1\], got 1.5"):
        TableWriter(tables_dir / "samples", Sample, rewrite_share=1.5)
    monkeypatch.setenv("AFFORD_REWRITE_SHARE", "-0.1")
    with pytest.raises(ValueError, match="rewrite_share"):
        TableWriter(tables_dir / "samples", Sample)
