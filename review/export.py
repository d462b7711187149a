"""The audit trail as Parquet, for analysis outside the app (pandas, DuckDB, Polars).

One row per row of the store's `decisions` table (undos included, as rows of kind 'undo' naming the row they
cancel), with the queue item's fields beside it, so a reader needs no join: who decided what on which item, what
the model had predicted and how many reviewers the item asked for. `at` stays the ISO-8601 text the store wrote
and is also given as a UTC timestamp.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from review.store import ReviewStore

MARK = b"afford.review_trail"  # schema metadata key: this file is a trail this module wrote
TRAIL_SCHEMA = pa.schema([
    ("id", pa.int64()), ("cycle", pa.int64()), ("position", pa.int64()), ("sample_id", pa.string()),
    ("dataset", pa.string()), ("object_category", pa.string()), ("predicted", pa.string()),
    ("confidence", pa.float64()), ("reviews", pa.int64()), ("kind", pa.string()), ("label", pa.string()),
    ("reviewer", pa.string()), ("comment", pa.string()), ("at", pa.string()),
    ("at_utc", pa.timestamp("us", tz="UTC")), ("undoes", pa.int64()),
], metadata={MARK: b"1"})


def trail_table(store: ReviewStore, cycles: Iterable[int] | None = None) -> pa.Table:
    """Every decision row of `cycles` (default: all), in cycle then commit order; KeyError for an unknown cycle."""
    rows: list[dict] = []
    for cycle in (store.cycles() if cycles is None else cycles):
        items = {state.item.sample_id: state.item for state in store.items(cycle)}
        for record in store.trail(cycle):
            item = items[record.sample_id]
            rows.append(record.model_dump() | {
                "position": item.position, "dataset": item.dataset, "object_category": item.object_category,
                "predicted": item.predicted, "confidence": item.confidence, "reviews": item.reviews,
                "at_utc": datetime.fromisoformat(record.at)})
    return pa.Table.from_pylist(rows, schema=TRAIL_SCHEMA)


def write_trail(store: ReviewStore, path: Path, cycles: Iterable[int] | None = None) -> int:
    """Write the trail of `cycles` to `path` (Parquet, zstd); the number of rows. An existing file is replaced
    only when it is a trail written here (its schema carries MARK), so a wrong --out cannot destroy other data."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"--out {path}: a folder; give a file name such as {path / 'trail.parquet'}")
    if path.exists() and not _is_trail(path):
        raise FileExistsError(f"--out {path}: exists and is not a review trail written by `afford review export`; "
                              f"refusing to overwrite it")
    table = trail_table(store, cycles)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return table.num_rows


def trail_parquet_bytes(store: ReviewStore, cycle: int) -> bytes:
    """The trail of one cycle as the bytes of a Parquet file (what the app serves)."""
    buffer = io.BytesIO()
    pq.write_table(trail_table(store, [cycle]), buffer, compression="zstd")
    return buffer.getvalue()


def _is_trail(path: Path) -> bool:
    try:
        metadata = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return False
    return MARK in metadata
