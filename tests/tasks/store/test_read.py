"""Bad input on the read side: each error names the file (and field)."""

import json

import pyarrow as pa
import pytest

from schemas.rows import Reject, Sample
from tasks.store import layout
from tasks.store.errors import (
    ChecksumError,
    ManifestError,
    MissingShardError,
    NotATableError,
    RowValidationError,
    SchemaVersionError,
    ShardReadError,
)
from tasks.store.read import open_table, read_manifest
from tasks.store.write import write_table
from tests.factories import make_table


@pytest.fixture
def table_path(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=8, rows_per_shard=4)
    return path


def _first_shard(path):
    table = open_table(path)
    shard = table.manifest.shards[0]
    target = table.shard_path(shard)
    # Break the hard link so the damage stays in the current version only.
    data = target.read_bytes()
    target.unlink()
    target.write_bytes(data)
    return target


def _drain(table):
    for _ in table.iter_batches():
        pass


def test_truncated_shard_is_named(table_path):
    shard = _first_shard(table_path)
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ChecksumError, match="truncated") as info:
        _drain(open_table(table_path, Sample))
    assert info.value.path == shard
    with pytest.raises(ChecksumError):  # size is checked even without the sha256
        _drain(open_table(table_path, Sample, verify=False))


def test_truncated_shard_with_matching_size_in_manifest_is_a_parquet_error(table_path):
    shard = _first_shard(table_path)
    shard.write_bytes(shard.read_bytes()[:200])
    manifest_path = table_path / layout.MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["shards"][0]["bytes"] = 200
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ShardReadError) as info:
        _drain(open_table(table_path, Sample, verify=False))
    assert info.value.path == shard


def test_sha256_mismatch_is_named(table_path):
    shard = _first_shard(table_path)
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="sha256") as info:
        open_table(table_path, Sample).read()
    assert info.value.path == shard


def test_missing_shard_is_named(table_path):
    shard = _first_shard(table_path)
    shard.unlink()
    with pytest.raises(MissingShardError, match=r"listed in .*manifest\.json but missing") as info:
        open_table(table_path, Sample).read()
    assert info.value.path == shard


def test_schema_version_mismatch_names_the_manifest(table_path, monkeypatch):
    written = Sample.SCHEMA_VERSION
    monkeypatch.setattr(Sample, "SCHEMA_VERSION", written + 1)
    with pytest.raises(SchemaVersionError, match=f"schema_version is {written}, this code reads Sample version "
                                                 f"{written + 1}") as info:
        open_table(table_path, Sample)
    assert info.value.path.name == "manifest.json"


def test_reading_as_another_row_model_is_refused(table_path):
    with pytest.raises(SchemaVersionError, match=r"row_model is schemas\.rows\.Sample"):
        open_table(table_path, Reject)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda text: text[: len(text) // 2], "not valid JSON"),
    (lambda text: text.replace('"num_rows": 8', '"num_rows": 9'), "num_rows is 9 but the shards hold 8"),
    (lambda text: text.replace(f'"schema_version": {Sample.SCHEMA_VERSION}', '"schema_version": "one"'),
     "field schema_version"),
])
def test_broken_manifest_is_named(table_path, edit, message):
    manifest_path = table_path / layout.MANIFEST_NAME
    manifest_path.write_text(edit(manifest_path.read_text()))
    with pytest.raises(ManifestError, match=message) as info:
        open_table(table_path)
    assert info.value.path == manifest_path.resolve()


@pytest.mark.parametrize(("deleted", "message"), [
    ([99], "deleted row index out of range"), ([1, 0], "must be sorted and unique"), ([0, 0], "sorted and unique")])
def test_a_hand_edited_deletion_list_is_refused_naming_the_shard(table_path, deleted, message):
    manifest_path = table_path / layout.MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    manifest["shards"][0]["deleted"] = deleted
    manifest["num_rows"] -= len(deleted)  # the totals agree: only the list itself is wrong
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=message) as info:
        open_table(table_path)
    assert manifest["shards"][0]["name"] in str(info.value)


def test_not_a_table(tmp_path):
    with pytest.raises(NotATableError, match=r"no manifest\.json"):
        read_manifest(tmp_path)


def test_row_failing_validation_on_read_names_shard_row_and_field(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=3)
    data = open_table(path, Sample).read()
    poses = data.column("hand_pose").combine_chunks()
    values = poses.values.to_numpy(zero_copy_only=False).copy()
    values[48 + 5] = float("nan")  # row 1
    broken = data.set_column(data.schema.get_field_index("hand_pose"), "hand_pose",
                             pa.FixedSizeListArray.from_arrays(pa.array(values), 48))
    write_table(tables_dir / "broken", broken, Sample)  # the Arrow path is not validated
    with pytest.raises(RowValidationError, match="row 1") as info:
        list(open_table(tables_dir / "broken", Sample).iter_rows())
    assert info.value.field == "hand_pose" and info.value.path.suffix == ".parquet"


def test_reader_pins_the_version_it_opened(table_path):
    table = open_table(table_path, Sample)
    make_table(table_path, n=2, seed=5, mode="overwrite")
    assert table.read().num_rows == 8 and open_table(table_path).num_rows == 2


def _edit_manifest(table_path, change):
    manifest_path = table_path / layout.MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    change(manifest)
    manifest_path.unlink()  # the manifest is a hard link only within its own version: no other version changes
    manifest_path.write_text(json.dumps(manifest))
    return manifest_path


def test_a_manifest_edited_to_drop_a_shard_is_caught(table_path):
    def drop_last(manifest):
        gone = manifest["shards"].pop()
        manifest["num_rows"] -= gone["rows"]

    manifest_path = _edit_manifest(table_path, drop_last)
    with pytest.raises(ManifestError, match=r"does not list 1 shard\(s\) present") as info:
        open_table(table_path)
    assert info.value.path == manifest_path.resolve()


def test_a_manifest_edited_to_move_rows_between_shards_is_caught(table_path):
    def move_a_row(manifest):
        manifest["shards"][0]["rows"] += 1
        manifest["shards"][1]["rows"] -= 1  # num_rows still adds up

    _edit_manifest(table_path, move_a_row)
    table = open_table(table_path)
    with pytest.raises(ManifestError, match=r"holds 4 rows, .*manifest\.json says 5"):
        _drain(table)
