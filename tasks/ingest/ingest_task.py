"""Ingest as Prefect tasks: annotate plans every dataset, runs their chunks of source files as tasks on the
flow's runner and publishes each table once (`ingest_datasets`); re-annotation (one changed dataset) runs the
one `ingest` task, whose chunks run in that task's process."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from schemas.data_root import DataRoot
from schemas.rows import Sample
from tasks.ingest.delta import SampleDelta, ingest_delta
from tasks.ingest.ingest_chunks import STAGE, IngestPlan, SourceChunk, ingest_chunk, plan_ingest, publish_ingest
from tasks.ingest.pipeline import IngestCounts
from tasks.runtime.chunked import run_chunks
from tasks.store.chunks import ChunkStore
from tasks.store.read import open_table, table_exists


@task(name="ingest", cache_policy=NONE)  # content hashes decide what is recomputed, not Prefect's cache
def ingest_task(fmt: str, root: Path, table: Path, mano_root: Path, num_points: int, seed: int) -> SampleDelta:
    """Content-hash keyed: only samples that are new or whose source bytes changed are completed and written."""
    delta = ingest_delta(fmt, root, table, mano_root, num_points=num_points, seed=seed)
    print(delta.summary())
    return delta


def ingest_counts(delta: SampleDelta, table: Path) -> IngestCounts:
    """The run's counts for the ingest report: inputs = rows + rejects, rows as the table now holds them."""
    rows = open_table(table, Sample).manifest.num_rows if table_exists(table) else 0
    return IngestCounts(dataset=delta.dataset, inputs=delta.inputs, rows=rows, rejects=delta.rejects,
                        seconds=delta.seconds, table=table, rejects_table=DataRoot.beside(table, "rejects"))


@task(name="plan-ingest", cache_policy=NONE)
def plan_ingest_task(fmt: str, root: Path, table: Path, mano_root: Path, num_points: int, seed: int,
                     chunk_scale: int) -> IngestPlan:
    """List one dataset's source files and cut them into chunks (a walk of the dataset: a task, not flow time)."""
    return plan_ingest(fmt, root, table, mano_root, num_points=num_points, seed=seed, chunk_scale=chunk_scale)


@task(name="ingest-chunk", cache_policy=NONE, retries=1, retry_delay_seconds=1)
def ingest_chunk_task(chunk: SourceChunk, store_root: str, plan: IngestPlan) -> dict:
    """One chunk of source files -> committed sample rows and rejects."""
    return ingest_chunk(plan, chunk)


@task(name="publish-ingest", cache_policy=NONE)
def publish_ingest_task(plan: IngestPlan, metas: list[dict], seconds: float) -> SampleDelta:
    delta = publish_ingest(plan, metas, seconds)
    print(delta.summary())
    return delta


def ingest_datasets(plans: Sequence[IngestPlan]) -> list[SampleDelta]:
    """Run every plan's chunks as one chunked stage (the datasets' chunks side by side on the runner), then
    publish each dataset's table from its chunks."""
    start = time.perf_counter()
    chunks = [chunk for plan in plans for chunk in plan.chunks]
    # Each task gets its plan without the chunk list: Prefect walks a task's arguments, and every chunk's file
    # names in every task's arguments would cost more than the chunk's work on a large dataset
    light = {chunk.key: replace(plan, chunks=()) for plan in plans for chunk in plan.chunks}
    stores = {plan.store_root for plan in plans}
    if len(stores) > 1:
        raise ValueError(f"ingest plans commit chunks under different data roots: {sorted(stores)}")
    metas: dict[str, dict] = {}
    if chunks:
        run = run_chunks(ingest_chunk_task, chunks, ChunkStore(stores.pop(), STAGE),
                         per_chunk=lambda chunk: {"plan": light[chunk.key]})
        metas = dict(zip((c.key for c in chunks), run.metas, strict=True))
    seconds = time.perf_counter() - start
    futures = [publish_ingest_task.submit(plan, [metas[c.key] for c in plan.chunks], seconds) for plan in plans]
    return [future.result() for future in futures]
