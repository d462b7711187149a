"""Shards read with no project code: DuckDB, pyarrow.dataset and pandas see exactly the rows written."""

import duckdb
import numpy as np
import pandas as pd
import pyarrow.dataset as ds

from tests.factories import make_table, sample_dicts


def _written(n):
    return {r["sample_id"]: r for r in sample_dicts(n)}


def test_pyarrow_dataset_reads_the_rows_written(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=9, rows_per_shard=4)
    make_table(path, n=3, rows_per_shard=4, mode="upsert")  # a second version must not duplicate rows
    table = ds.dataset(path / "data", format="parquet").to_table()
    written = _written(9)
    assert sorted(table.column("sample_id").to_pylist()) == sorted(written)
    for record in table.to_pylist():
        want = written[record["sample_id"]]
        np.testing.assert_allclose(np.asarray(record["object_points"]), want["object_points"])
        np.testing.assert_allclose(np.asarray(record["hand_pose"]), want["hand_pose"])


def test_duckdb_reads_the_rows_written(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=7, rows_per_shard=3)
    glob = str(path / "data" / "*.parquet")
    rows = duckdb.sql(f"SELECT sample_id, hand_pose, len(object_points) AS n FROM read_parquet('{glob}')").fetchall()
    written = _written(7)
    assert sorted(r[0] for r in rows) == sorted(written)
    for sample_id, pose, n in rows:
        np.testing.assert_allclose(np.asarray(pose, np.float32), written[sample_id]["hand_pose"])
        assert n == len(written[sample_id]["object_points"])


def test_pandas_reads_the_rows_written(tables_dir):
    path = tables_dir / "samples"
    make_table(path, n=5, rows_per_shard=2)
    frame = pd.read_parquet(path / "data")
    assert sorted(frame["sample_id"]) == sorted(_written(5))
    assert frame["object_category"].notna().all()
