"""Ingest in chunks of source files: chunked == one chunk row for row, an interrupted run keeps its committed
chunks for the re-run (and only while no file of the dataset changed), every format lists its sources."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pyarrow as pa
import pytest
from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.ingest.delta import ingest_delta
from tasks.ingest.formats import FORMATS
from tasks.ingest.ingest_chunks import STAGE, chunk_store_root, ingest_chunk, plan_ingest, publish_ingest
from tasks.ingest.ingest_task import ingest_datasets
from tasks.ingest.mano_frame import HandTemplate
from tasks.ingest.pipeline import iter_raw, load_hand
from tasks.runtime.chunked import ChunkFailed, first_source
from tasks.store.chunks import ChunkStore
from tasks.store.read import open_table
from tasks.synth.datasets import synthesize_datasets
from tests.annotate_factories import oakink_params, perturb_oakink


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("ingest-chunks")
    summary = synthesize_datasets(root / "datasets", {"affordpose": 1, "oakink": 1, "grab": 2, "ho3d": 1}, seed=3,
                                  grasps_per_part={"affordpose": 2, "oakink": 3, "grab": 2, "ho3d": 2},
                                  categories=["mug"], steps=10)
    return summary.root


def _table(path) -> pa.Table:
    return open_table(path).read()


def assert_same_rows(got: pa.Table, want: pa.Table) -> None:
    """Row for row; MANO vertices to 1 um: the layer runs on batches of whatever a chunk holds, and a float32
    matmul over another batch size may round the last bit differently (measured: <= 6e-8 m)."""
    assert got.column_names == want.column_names and got.num_rows == want.num_rows
    for name in got.column_names:
        if name == "hand_verts":
            np.testing.assert_allclose(np.array(got.column(name).to_pylist()),
                                       np.array(want.column(name).to_pylist()), rtol=0, atol=1e-6)
        else:
            assert got.column(name).equals(want.column(name)), name


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_every_format_lists_the_files_its_reader_reads(datasets, fmt):
    """`sources` + `read_paths` over all the sources reads exactly what the format's plain `read` reads."""
    chosen = FORMATS[fmt]
    assert chosen.sources is not None and chosen.read_paths is not None
    template = HandTemplate.from_mano(load_hand(datasets / "mano")[0])
    root = datasets / fmt
    paths = list(chosen.sources(root, 1))
    assert paths
    whole = [(r.sample_id, r.content_hash) for r in iter_raw(fmt, root, template)]
    by_paths = [(r.sample_id, r.content_hash) for r in chosen.read_paths(root, template, 1, paths, {})]
    halves = [(r.sample_id, r.content_hash) for part in (paths[: len(paths) // 2], paths[len(paths) // 2:])
              for r in chosen.read_paths(root, template, 1, part, {})]
    assert by_paths == whole == halves


@pytest.mark.parametrize("fmt", ["oakink", "affordpose", "ho3d", "grab"])
def test_chunked_ingest_writes_the_table_one_chunk_writes(datasets, tmp_path, fmt):
    mano = datasets / "mano"
    one = ingest_delta(fmt, datasets / fmt, tmp_path / "one" / "tables" / fmt, mano, num_points=64,
                       files_per_chunk=10_000)
    many = ingest_delta(fmt, datasets / fmt, tmp_path / "many" / "tables" / fmt, mano, num_points=64,
                        files_per_chunk=1)
    assert plan_ingest(fmt, datasets / fmt, tmp_path / "x" / "tables" / fmt, mano, files_per_chunk=1).chunks[1:]
    assert (sorted(many.changed), many.unchanged, many.rejects) == (sorted(one.changed), one.unchanged, one.rejects)
    assert_same_rows(_table(tmp_path / "many" / "tables" / fmt), _table(tmp_path / "one" / "tables" / fmt))
    # published: the chunks are dropped, the table is the record
    assert not any(ChunkStore(chunk_store_root(tmp_path / "many" / "tables" / fmt), STAGE).path.glob("*/meta.json"))


def test_an_interrupted_ingest_keeps_its_chunks_until_a_file_changes(datasets, tmp_path):
    root = tmp_path / "oakink"
    shutil.copytree(datasets / "oakink", root)
    mano, table = datasets / "mano", tmp_path / "tables" / "oakink"
    plan = plan_ingest("oakink", root, table, mano, num_points=64, files_per_chunk=1)
    assert len(plan.chunks) >= 3
    store = ChunkStore(plan.store_root, STAGE)
    done = [ingest_chunk(plan, chunk) for chunk in plan.chunks[:2]]  # then the run is killed: nothing published
    assert not table.exists()
    again = plan_ingest("oakink", root, table, mano, num_points=64, files_per_chunk=1)
    assert [c.key for c in again.chunks] == [c.key for c in plan.chunks]
    assert [store.committed(c.key) for c in again.chunks] == [True, True] + [False] * (len(plan.chunks) - 2)
    assert first_source(again.chunks[0]) == str(root / again.chunks[0].paths[0])
    metas = done + [ingest_chunk(again, chunk) for chunk in again.chunks[2:]]
    delta = publish_ingest(again, metas)
    reference = ingest_delta("oakink", root, tmp_path / "ref" / "tables" / "oakink", mano, num_points=64)
    assert sorted(delta.changed) == sorted(reference.changed)
    assert_same_rows(_table(table), _table(tmp_path / "ref" / "tables" / "oakink"))
    # Any file of the dataset edited after the interruption (here a grasp of another chunk) re-keys every chunk
    edited = plan_ingest("oakink", root, tmp_path / "t2" / "tables" / "oakink", mano, num_points=64, files_per_chunk=1)
    perturb_oakink(oakink_params(tmp_path)[-1])
    os.utime(oakink_params(tmp_path)[-1], ns=(1, 1))
    after = plan_ingest("oakink", root, tmp_path / "t2" / "tables" / "oakink", mano, num_points=64, files_per_chunk=1)
    assert not {c.key for c in after.chunks} & {c.key for c in edited.chunks}


def test_bad_chunk_sizes_are_named(datasets, tmp_path):
    with pytest.raises(ValueError, match="files_per_chunk must be >= 1, got 0"):
        plan_ingest("oakink", datasets / "oakink", tmp_path / "tables" / "oakink", datasets / "mano",
                    files_per_chunk=0)
    with pytest.raises(ValueError, match="chunk_scale must be >= 1, got 0"):
        plan_ingest("oakink", datasets / "oakink", tmp_path / "tables" / "oakink", datasets / "mano", chunk_scale=0)


def test_a_chunk_writes_shard_sized_files(datasets, tmp_path, monkeypatch):
    """A GRAB chunk is one sequence of many frames: its rows still land in shards of AFFORD_ROWS_PER_SHARD, as a
    single writer would cut them, so the chunked stages after ingest get as many chunks as before."""
    monkeypatch.setenv("AFFORD_ROWS_PER_SHARD", "2")
    table = tmp_path / "tables" / "grab"
    delta = ingest_delta("grab", datasets / "grab", table, datasets / "mano", num_points=64)
    shards = open_table(table).manifest.shards
    assert len(delta.changed) >= 3 and all(s.rows <= 2 for s in shards)
    assert sum(s.rows for s in shards) == len(delta.changed) and len(shards) >= len(delta.changed) // 2


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def _ingest_flow(plans):
    return ingest_datasets(plans)


@pytest.mark.server
def test_an_ingest_chunk_that_fails_names_its_chunk_and_first_file(prefect_harness, datasets, tmp_path):
    """Readers turn a bad file into a reject; a chunk fails only when something shared breaks (here the MANO
    folder): retried once, then the stage stops naming the chunk and its first source file, and publishes nothing."""
    table = tmp_path / "tables" / "oakink"
    plan = plan_ingest("oakink", datasets / "oakink", table, tmp_path / "no-mano", num_points=64, files_per_chunk=2)
    first = plan.chunks[0]
    with pytest.raises(ChunkFailed, match=rf"ingest chunk 1/{len(plan.chunks)} of .*oakink .*first source "
                                          rf".*{first.paths[0]}"):
        _ingest_flow([plan])
    assert not table.exists()


def test_a_table_deleted_and_written_again_is_not_read_from_an_old_cache(datasets, tmp_path):
    """Chunks of one process share the table's stored hashes, cached by version. A table deleted and ingested
    again restarts its version numbers, so the cache must not take the new v1 for the old one: a grasp that comes
    back must be written, not taken as unchanged from the old table's hashes."""
    root = tmp_path / "oakink"
    shutil.copytree(datasets / "oakink", root)
    mano, table = datasets / "mano", tmp_path / "tables" / "oakink"
    ingest_delta("oakink", root, table, mano, num_points=64)
    again = ingest_delta("oakink", root, table, mano, num_points=64)  # reads (and caches) v1's hashes
    assert again.changed == [] and table.resolve().name.endswith("1")
    shutil.rmtree(tmp_path / "tables")
    grasp = oakink_params(tmp_path)[0].parent
    aside = tmp_path / "aside"
    shutil.move(grasp, aside)
    fewer = ingest_delta("oakink", root, table, mano, num_points=64)  # a new v1 without that grasp
    shutil.move(aside, grasp)
    back = ingest_delta("oakink", root, table, mano, num_points=64)
    assert len(back.changed) == 1 and len(open_table(table).keys()) == len(fewer.changed) + 1
