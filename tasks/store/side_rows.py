"""Side tables read per chunk: the rows of some sample ids, reading only the shards that hold them.

A chunked stage joins its input chunk with rows of other tables (instructions, labels, maps) keyed by sample_id.
Holding those tables whole would grow with the dataset; scanning them whole per chunk would grow with
chunks x size. `KeyedShards` reads the key column once (tens of bytes a row) and tells, for a chunk's ids, which
shards to read and a digest of their content for the chunk's key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from schemas.arrow_convert import batch_to_dicts
from schemas.rows import Row
from tasks.store.chunks import rows_digest
from tasks.store.read import open_table, table_exists


class KeyedShards:
    """Which shard of the table at `path` holds each sample_id; an absent table holds none."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.shard_of: dict[str, str] = {}
        self.sha256: dict[str, str] = {}
        self.order: list[str] = []
        if self.path is None or not table_exists(self.path):
            return
        table = open_table(self.path, verify=False)  # key column only; the chunk tasks verify what they read
        column = table.manifest.key[0]
        for shard in table.manifest.shards:
            self.order.append(shard.name)
            self.sha256[shard.name] = shard.content_id
            for sample_id in table.read_shard(shard, [column]).column(0).to_pylist():
                self.shard_of[sample_id] = shard.name

    def shards_for(self, ids: Iterable[str]) -> tuple[str, ...]:
        """Names of the shards holding any of `ids`, in table order."""
        names = {self.shard_of[i] for i in ids if i in self.shard_of}
        return tuple(n for n in self.order if n in names)

    def digest(self, ids: Sequence[str]) -> str:
        """What the side rows of `ids` depend on: the sha256 of the shards holding them."""
        return rows_digest(self.sha256[n] for n in self.shards_for(ids))


def side_rows(path: str | Path | None, model: type[Row], ids: Iterable[str],
              shards: Sequence[str] | None = None) -> dict[str, Row]:
    """{sample_id: row} of `model` for the `ids` found in the table at `path` (reading `shards` only, when
    given); empty when the table does not exist (its stage did not run)."""
    if path is None or not table_exists(path):
        return {}
    table = open_table(path, model)
    wanted = pa.array(sorted(set(ids)), type=pa.string())
    picked = [s for s in table.manifest.shards if shards is None or s.name in set(shards)]
    out: dict[str, Row] = {}
    column = table.manifest.key[0]
    for batch in table.iter_batches(shards=picked):
        batch = batch.filter(pc.is_in(batch.column(column), value_set=wanted))
        for raw in batch_to_dicts(batch, model):
            out[raw[column]] = model.model_validate(raw)
    return out
