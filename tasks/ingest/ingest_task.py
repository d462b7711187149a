"""The one `ingest` task that annotate (every dataset) and re-annotation (one changed dataset) both run."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NONE

from schemas.data_root import DataRoot
from schemas.rows import Sample
from tasks.ingest.delta import SampleDelta, ingest_delta
from tasks.ingest.pipeline import IngestCounts
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
