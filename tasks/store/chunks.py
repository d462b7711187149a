"""Chunked stages: the input table's shards cut into chunks, each chunk's output committed on its own under a
content key, the stage's table published once from the committed chunks.

    <data_root>/chunks/<stage>/<key>/                       a committed chunk: <output>.parquet, <array>.npy, meta.json
    <data_root>/chunks/<stage>/<key>.staging-<pid>-<hex>/   a chunk at work (a killed one's is removed later)

A chunk's key hashes the stage, its version and parameters (checkpoints, settings), the sha256 of every input
shard it reads and, where a stage reads side tables, the content of the side rows that belong to the chunk's
samples. A re-run with the same inputs finds the chunk committed and does not compute it again; a changed input
gives a new key. Publishing hard-links each chunk's output file into the new table version
(`TableWriter.adopt_shard`), so a committed chunk costs no second copy of its bytes, and the table stays atomic:
until the publish, readers see the previous version whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from schemas.arrow_convert import rows_to_batch
from schemas.arrow_schema import arrow_schema
from schemas.ids import hash_bytes
from schemas.manifest import ShardInfo
from schemas.rows import Row
from tasks.store import layout
from tasks.store.read import open_table
from tasks.store.write import encode_shard

META = "meta.json"
_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_STAGING_RE = re.compile(r"^[0-9a-f]{64}\.staging-\d+-[0-9a-f]+$")


@dataclass(frozen=True)
class InputChunk:
    """Some consecutive shards of one input table (of the version read at planning time)."""

    stage: str
    index: int  # 0-based, over every table of the stage
    total: int
    table: str
    shards: tuple[ShardInfo, ...]
    key: str
    sample_ids: tuple[str, ...] = field(default=(), repr=False)  # the rows' keys, in shard order

    @property
    def rows(self) -> int:
        return sum(s.live_rows for s in self.shards)

    def describe(self) -> str:
        """'chunk 3/12 of <table> (shards v000002-000004 .. v000002-000005)', for errors and progress."""
        names = f"{self.shards[0].name} .. {self.shards[-1].name}" if self.shards else "no shards"
        return f"{self.stage} chunk {self.index + 1}/{self.total} of {self.table} ({names})"


def plan_chunks(stage: str, tables: Sequence[str | Path], shards_per_chunk: int, params: Mapping[str, object],
                side_key: Callable[[Sequence[str]], str] | None = None) -> list[InputChunk]:
    """Cut each table's shards into chunks of `shards_per_chunk`. `params`: what else decides the output (stage
    version, checkpoint sha256, settings), JSON-serialisable. `side_key(sample_ids)`: a digest of the side-table
    content that belongs to those samples (instructions, labels), so a changed side row re-keys only its chunk."""
    if shards_per_chunk < 1:
        raise ValueError(f"shards_per_chunk must be >= 1, got {shards_per_chunk}")
    base = json.dumps({"stage": stage, "params": params}, sort_keys=True, default=str)
    planned: list[tuple[str, tuple[ShardInfo, ...], tuple[str, ...]]] = []
    for path in tables:
        # Planning reads only key columns and keys chunks by the manifest's sha256; the chunk tasks verify the
        # shards they read, so hashing every input shard here as well would only double the I/O (sizes still
        # checked).
        table = open_table(path, verify=False)
        column = table.manifest.key[0]
        shards = table.manifest.shards
        for start in range(0, len(shards), shards_per_chunk):
            group = tuple(shards[start:start + shards_per_chunk])
            ids = tuple(id_ for s in group for id_ in table.read_shard(s, [column]).column(0).to_pylist())
            planned.append((str(path), group, ids))
    chunks = []
    for index, (table, group, ids) in enumerate(planned):
        digest = hashlib.sha256(base.encode())
        for shard in group:
            digest.update(shard.content_id.encode())
        if side_key is not None:
            digest.update(side_key(ids).encode())
        chunks.append(InputChunk(stage=stage, index=index, total=len(planned), table=table, shards=group,
                                 key=digest.hexdigest(), sample_ids=ids))
    return chunks


def rows_digest(values: Iterable[object]) -> str:
    """sha256 of a sequence of values (side rows of a chunk), order-sensitive."""
    digest = hashlib.sha256()
    for value in values:
        digest.update(repr(value).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


class ChunkStore:
    """The committed chunks of one stage under `<data_root>/chunks/<stage>`."""

    def __init__(self, root: str | Path, stage: str) -> None:
        if not stage or "/" in stage or stage.startswith("."):
            raise ValueError(f"stage name {stage!r}: expected a plain folder name")
        self.path = Path(root) / stage

    def chunk_dir(self, key: str) -> Path:
        if not _KEY_RE.match(key):
            raise ValueError(f"chunk key {key!r}: expected 64 hex digits")
        return self.path / key

    def committed(self, key: str) -> bool:
        return (self.chunk_dir(key) / META).is_file()

    def meta(self, key: str) -> dict:
        path = self.chunk_dir(key) / META
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: chunk {key[:12]} is not committed") from None

    def output(self, key: str, name: str) -> Path:
        return self.chunk_dir(key) / f"{name}.parquet"

    def array(self, key: str, name: str) -> np.ndarray:
        """A committed chunk's array `name` (written by `commit(arrays=...)`)."""
        return np.load(self.chunk_dir(key) / f"{name}.npy", allow_pickle=False)

    def commit(self, key: str, outputs: Mapping[str, tuple[Sequence[Row] | pa.Table, type[Row]]],
               meta: Mapping[str, object], arrays: Mapping[str, np.ndarray] | None = None) -> dict:
        """Write a chunk's outputs ({name: (rows, model)}), its arrays ({name: array}, as .npy) and its meta,
        then rename the folder into place: a chunk is committed whole or not at all. Returns the meta, with rows
        and sha256 per output."""
        with self.writing(key) as chunk:
            for name, (rows, model) in outputs.items():
                chunk.output(name, rows, model)
            for name, array in (arrays or {}).items():
                chunk.array(name, array)
            return chunk.commit(meta)

    @contextmanager
    def writing(self, key: str) -> Iterator[ChunkWriter]:
        """A chunk written output by output as its task goes (memory: one output at a time), committed by
        `ChunkWriter.commit(meta)`; leaving the block otherwise (an exception, no commit) leaves nothing behind."""
        self.path.mkdir(parents=True, exist_ok=True)
        staging = self.path / f"{key}.staging-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
        try:
            yield ChunkWriter(self, key, staging)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone once committed (renamed); removed otherwise

    def discard(self, keys: Iterable[str]) -> None:
        """Remove these committed chunks (a stage whose output is published and needs them no more)."""
        for key in keys:
            if _KEY_RE.match(key):
                shutil.rmtree(self.chunk_dir(key), ignore_errors=True)

    def prune(self, keep: Iterable[str]) -> list[Path]:
        """Remove committed chunks whose key is not in `keep` and staging leftovers; anything else is kept."""
        if not self.path.is_dir():
            return []
        keep = set(keep)
        removed = []
        for entry in self.path.iterdir():
            if (_KEY_RE.match(entry.name) and entry.name not in keep) or _STAGING_RE.match(entry.name):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
        return removed


class ChunkWriter:
    """The staging folder of one chunk (ChunkStore.writing)."""

    def __init__(self, store: ChunkStore, key: str, staging: Path) -> None:
        self.store, self.key, self.staging = store, key, staging
        self.files: dict[str, dict] = {}

    def output(self, name: str, rows: Sequence[Row] | pa.Table, model: type[Row]) -> None:
        data = rows if isinstance(rows, pa.Table) else _as_table(rows, model)
        payload = encode_shard(data, model)
        layout.atomic_write_bytes(self.staging / f"{name}.parquet", payload)
        self.files[name] = {"rows": data.num_rows, "sha256": hash_bytes(payload), "bytes": len(payload)}

    def array(self, name: str, array: np.ndarray) -> None:
        with open(self.staging / f"{name}.npy", "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())

    def commit(self, meta: Mapping[str, object]) -> dict:
        """Write the meta and rename the folder into place; the meta, with rows and sha256 per output."""
        # Which process computed it: on a Dask cluster, the worker (host and pid) that ran the chunk.
        record = {"key": self.key, **meta, "worker": f"{socket.gethostname()}:{os.getpid()}", "outputs": self.files}
        layout.atomic_write_bytes(self.staging / META, json.dumps(record, indent=1, default=str).encode())
        layout.fsync_dir(self.staging)
        final = self.store.chunk_dir(self.key)
        if final.exists():  # another worker committed the same inputs first: its chunk is as good
            return self.store.meta(self.key)
        os.replace(self.staging, final)
        layout.fsync_dir(self.store.path)
        return record


def _as_table(rows: Sequence[Row], model: type[Row]) -> pa.Table:
    if not rows:
        return arrow_schema(model).empty_table()
    return pa.Table.from_batches([rows_to_batch(list(rows), model)], schema=arrow_schema(model))
