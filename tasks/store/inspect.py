"""Human-readable summaries of tables: for `afford inspect` and the demo's closing report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tasks.store.read import Table


@dataclass(frozen=True)
class TableSummary:
    path: Path
    version_dir: Path
    table: str
    row_model: str
    schema_version: int
    version: int
    num_rows: int
    num_shards: int
    bytes: int
    stage: str


def summarise(table: Table) -> TableSummary:
    m = table.manifest
    return TableSummary(path=table.path, version_dir=table.version_dir, table=m.table, row_model=m.row_model,
                        schema_version=m.schema_version, version=m.version, num_rows=m.num_rows,
                        num_shards=len(m.shards), bytes=sum(s.bytes for s in m.shards), stage=m.lineage.stage)


def head_rows(table: Table, n: int = 3) -> list[dict[str, str]]:
    """The first `n` rows with every value shortened to one readable cell (arrays as dtype[shape])."""
    rows: list[dict[str, str]] = []
    for batch in table.iter_batches(batch_rows=max(n, 1)):
        for record in batch.slice(0, n - len(rows)).to_pylist():
            rows.append({k: format_value(v) for k, v in record.items()})
        if len(rows) >= n:
            break
    return rows


def format_value(value: Any, width: int = 48) -> str:
    if isinstance(value, list):
        array = np.asarray(value, dtype=object)
        try:
            array = np.asarray(value, dtype=np.float64)
            shape = "x".join(str(d) for d in array.shape)
            return f"[{shape}] mean={array.mean():.4g}" if array.size else f"[{shape}]"
        except (TypeError, ValueError):
            return f"list[{len(value)}]"
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def format_schema(schema: pa.Schema) -> list[tuple[str, str, str]]:
    return [(f.name, str(f.type), "" if f.nullable else "not null") for f in schema]


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
