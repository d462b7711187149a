"""Row models <-> Arrow record batches. Array fields move as whole numpy buffers, not per element."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from schemas.arrays import ArraySpec
from schemas.arrow_schema import array_specs, arrow_schema
from schemas.rows import Row


def rows_to_batch(rows: Sequence[Row], model: type[Row]) -> pa.RecordBatch:
    """Validated rows -> one record batch with the model's derived schema."""
    schema = arrow_schema(model)
    specs = array_specs(model)
    columns = []
    for field in schema:
        values = [getattr(row, field.name) for row in rows]
        if field.name in specs:
            columns.append(arrays_to_arrow(values, specs[field.name]))
        else:
            columns.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def arrays_to_arrow(values: Sequence[np.ndarray | None], spec: ArraySpec) -> pa.Array:
    """Same-spec numpy arrays (or None) -> one Arrow array, built from a single concatenated buffer."""
    present = [v for v in values if v is not None]
    flat = np.concatenate([v.reshape(-1) for v in present]) if present else np.zeros(0, spec.dtype)
    arrow: pa.Array = pa.array(flat.astype(spec.dtype, copy=False))
    for size in reversed(spec.fixed_shape):
        arrow = pa.FixedSizeListArray.from_arrays(arrow, size)
    mask = pa.array([v is None for v in values]) if len(present) != len(values) else None
    if spec.variable:
        lengths = np.array([0 if v is None else len(v) for v in values], dtype=np.int32)
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
        return pa.ListArray.from_arrays(offsets, arrow, mask=mask)
    if mask is None:
        return arrow
    # Fixed-shape column with nulls: give null rows a zero placeholder so the child array lines up.
    filled = [np.zeros(spec.fixed_shape, spec.dtype) if v is None else v for v in values]
    return pa.FixedSizeListArray.from_arrays(_fsl_values(arrays_to_arrow(filled, spec)),
                                             spec.fixed_shape[0], mask=mask)


def arrow_to_arrays(column: pa.Array | pa.ChunkedArray, spec: ArraySpec) -> list[np.ndarray | None]:
    """One Arrow column of an array field -> a numpy array (or None) per row."""
    if isinstance(column, pa.ChunkedArray):
        return [a for chunk in column.chunks for a in arrow_to_arrays(chunk, spec)]
    nulls = column.is_null().to_numpy(zero_copy_only=False)
    if spec.variable:
        offsets = column.offsets.to_numpy()
        values = _leaf_values(column.values, spec)
        rows = [values[offsets[i]:offsets[i + 1]] for i in range(len(column))]
    else:
        rows = list(_leaf_values(column, spec))
    return [None if null else row for row, null in zip(rows, nulls, strict=True)]


def _fsl_values(column: pa.FixedSizeListArray) -> pa.Array:
    """Child values of a fixed-size list array, honouring its slice offset and keeping null slots
    (unlike `.flatten()`, which skips them and would misalign the rows)."""
    size = column.type.list_size
    return column.values.slice(column.offset * size, len(column) * size)


def _leaf_values(column: pa.Array, spec: ArraySpec) -> np.ndarray:
    """Unnest fixed-size lists into one (len, *fixed_shape) numpy array of the leaf buffer."""
    leaf = column
    for _ in spec.fixed_shape:
        leaf = _fsl_values(leaf)
    data = leaf.to_numpy(zero_copy_only=False).astype(spec.dtype, copy=False)
    return data.reshape(-1, *spec.fixed_shape)


def batch_to_dicts(batch: pa.RecordBatch | pa.Table, model: type[Row]) -> list[dict[str, Any]]:
    """Record batch -> plain dicts with numpy arrays for array fields (not validated)."""
    specs = array_specs(model)
    columns: dict[str, list[Any]] = {}
    for name in batch.schema.names:
        column = batch.column(name)
        columns[name] = arrow_to_arrays(column, specs[name]) if name in specs else column.to_pylist()
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
