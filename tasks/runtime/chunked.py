"""Run a chunked stage: one task per uncommitted chunk on the flow's task runner (threads, or Dask workers),
with done/total chunks and rows/s in the terminal and as a Prefect progress artifact.

    run = run_chunks(map_chunk_task, chunks, store, checkpoint=..., bank=...)
    publish_chunks(table, AffordanceMapRow, chunks, store, "rows", lineage)

Chunks committed by an earlier run with the same content key are not submitted again. A chunk task declares its
retries; a chunk that still fails stops the stage with `ChunkFailed`, naming the chunk and its first source file,
after the other chunks have finished (and committed, for the re-run to keep).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import Task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.context import FlowRunContext
from prefect.futures import as_completed

from schemas.manifest import Lineage, TableManifest
from schemas.rows import Row
from tasks.runtime.progress_line import bar, time_left
from tasks.store.chunks import ChunkStore, InputChunk
from tasks.store.read import open_table
from tasks.store.write import TableWriter


class ChunkFailed(RuntimeError):
    """A chunk failed after its retries; the chunks committed so far are kept for the re-run."""


@dataclass
class ChunkRun:
    """What one chunked stage did: chunk counts, rows, wall seconds and every chunk's meta."""

    stage: str
    chunks: int
    computed: int
    reused: int
    rows: int
    seconds: float
    metas: list[dict] = field(default_factory=list, repr=False)


def run_chunks(task: Task, chunks: Sequence[InputChunk], store: ChunkStore,
               per_chunk: Callable[[InputChunk], dict[str, Any]] | None = None, **kwargs: Any) -> ChunkRun:
    """Submit `task(chunk, store_root, **kwargs, **per_chunk(chunk))` for every chunk not committed; wait; return
    every chunk's meta (in chunk order). The task must commit its outputs with `ChunkStore.commit` and return the
    meta."""
    stage = chunks[0].stage if chunks else store.path.name
    todo = [c for c in chunks if not store.committed(c.key)]
    print(f"{stage}: {len(chunks)} chunks of {sum(c.rows for c in chunks)} rows; {len(chunks) - len(todo)} "
          f"committed by an earlier run with the same inputs, {len(todo)} to compute")
    start = time.perf_counter()
    computed = submit_chunks(task, todo, stage, lambda c: {"store_root": str(store.path.parent), **kwargs,
                                                          **(per_chunk(c) if per_chunk else {})})
    metas = {c.key: meta | {"computed_now": True} for c, meta in zip(todo, computed, strict=True)}
    for chunk in chunks:
        metas.setdefault(chunk.key, store.meta(chunk.key) | {"computed_now": False})
    return ChunkRun(stage=stage, chunks=len(chunks), computed=len(todo), reused=len(chunks) - len(todo),
                    rows=sum(c.rows for c in chunks), seconds=time.perf_counter() - start,
                    metas=[metas[c.key] for c in chunks])


def submit_chunks(task: Task, chunks: Sequence[InputChunk], stage: str,
                  arguments: Callable[[InputChunk], dict[str, Any]]) -> list[Any]:
    """Submit `task(chunk, **arguments(chunk))` for every chunk on the flow's task runner; the results in chunk
    order. Progress (done/total, rows/s) as chunks finish; `ChunkFailed` for the first failed chunk, after the
    others have finished."""
    artifact = _progress_artifact(stage)
    start = time.perf_counter()
    # By position: chunks of several tables (ingest's datasets) may share an index
    futures = {task.submit(chunk, **arguments(chunk)): (position, chunk) for position, chunk in enumerate(chunks)}
    results: dict[int, Any] = {}
    failures: list[tuple[int, InputChunk, BaseException]] = []
    done = rows = 0
    for future in as_completed(list(futures)):
        position, chunk = futures[future]
        try:
            results[position] = future.result()
        except Exception as exc:  # every failure is reported below, with its chunk
            failures.append((position, chunk, exc))
            continue
        done += 1
        rows += chunk.rows
        elapsed = time.perf_counter() - start
        print(f"{stage}: chunk {done}/{len(chunks)} {bar(done, len(chunks))} {rows / max(elapsed, 1e-9):,.0f} rows/s, "
              f"{time_left(elapsed, done, len(chunks))}")
        if artifact is not None:
            update_progress_artifact(artifact, progress=100.0 * done / len(chunks))
    if failures:
        _, chunk, exc = min(failures, key=lambda f: f[0])
        raise ChunkFailed(f"{chunk.describe()}, first source {first_source(chunk)}: {type(exc).__name__}: {exc} "
                          f"({len(failures)} of {len(chunks)} chunks failed; {done} finished"
                          f"{', committed and kept for the re-run' if done else ''})") from exc
    return [results[position] for position in range(len(chunks))]


def _progress_artifact(stage: str):
    """A progress artifact of the running flow (none outside a flow run, e.g. in a plain function call)."""
    if FlowRunContext.get() is None:
        return None
    return create_progress_artifact(progress=0.0, key=f"{stage}-chunks".replace("_", "-").lower(),
                                    description=f"{stage}: chunks committed")


def first_source(chunk: InputChunk) -> str:
    """The source file of the chunk's first row (the input table's `source_path`), or its table when it has none.
    A chunk of source files (ingest) names its first file itself."""
    if hasattr(chunk, "first_source"):
        return chunk.first_source
    try:
        table = open_table(chunk.table)
        if "source_path" in table.schema.names and chunk.shards:
            values = table.read_shard(chunk.shards[0], ["source_path"]).column(0)
            if len(values):
                return str(values[0].as_py())
    except Exception:  # naming the source is a courtesy of the error message; never mask it
        pass
    return chunk.table


def publish_chunks(path: str | Path, model: type[Row], chunks: Sequence[InputChunk], store: ChunkStore,
                   output: str, lineage: Lineage, mode: str = "upsert") -> TableManifest:
    """One new version of the table at `path` from the chunks' `output` files (hard-linked), then drop the
    stage's chunks that this plan no longer names."""
    with TableWriter(path, model, lineage=lineage, mode=mode) as writer:
        for chunk in chunks:
            info = store.meta(chunk.key)["outputs"][output]
            if info["rows"]:
                writer.adopt_shard(store.output(chunk.key, output), info["sha256"])
    store.prune(c.key for c in chunks)
    return writer.manifest


def read_outputs(chunks: Sequence[InputChunk], store: ChunkStore, output: str) -> pa.Table | None:
    """Every chunk's `output` (small outputs only: the rejects), concatenated; None when all are empty."""
    tables = [pq.read_table(store.output(c.key, output)) for c in chunks
              if store.meta(c.key)["outputs"][output]["rows"]]
    return pa.concat_tables(tables) if tables else None
