"""Row keys as strings, so single- and multi-column keys are compared the same way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

KEY_SEPARATOR = "\x1f"  # ASCII unit separator: never inside an id


def key_of(values: Sequence[object]) -> str:
    """Key string of one row from its key column values, e.g. ("ingest", "oakink-...")."""
    return KEY_SEPARATOR.join(str(v) for v in values)


def normalise_keys(keys: Iterable[str | Sequence[object]], key_columns: Sequence[str]) -> set[str]:
    """Keys given by a caller (a string for one key column, a tuple for several) -> key strings."""
    out = set()
    for key in keys:
        parts = (key,) if isinstance(key, str) else tuple(key)
        if len(parts) != len(key_columns):
            raise ValueError(f"key {key!r} has {len(parts)} parts; the table key is {tuple(key_columns)}")
        out.add(key_of(parts))
    return out


def key_array(data: pa.Table | pa.RecordBatch, key_columns: Sequence[str]) -> pa.Array:
    """One string per row: the row's key columns joined by the separator. (rows,) string."""
    columns = [pc.cast(data.column(name), pa.string()) for name in key_columns]
    joined = columns[0] if len(columns) == 1 else pc.binary_join_element_wise(*columns, KEY_SEPARATOR)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined
