"""The reannotate flow: incremental re-annotation of one dataset after its files changed.

Started by the `reannotate-on-change` deployment's trigger on a `dataset.changed` event (`afford watch`), or by
hand. It re-ingests only samples whose content hash changed, removes outputs of removed samples from every
table, and recomputes labels, instructions, affordance maps and `annotated` rows for the changed samples only,
with the models of the last full `annotate` run (see tasks/ingest/delta.py). Unchanged rows stay byte-identical;
unchanged (class, affordance) keys make no LLM call. One run at a time per data root (a file lock), so two
datasets changing together queue instead of racing on the shared tables.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from schemas.data_root import DataRoot
from schemas.manifest import Lineage
from tasks.ingest.delta import (
    STAGE_VERSION,
)
from tasks.ingest.formats import get_format
from tasks.ingest.ingest_task import ingest_task
from tasks.ingest.reannotate_steps import (
    changed_samples,
    ingested_with,
    instruct_task,
    instructed_with,
    join_task,
    label_task,
    map_task,
    reannotate_report,
)
from tasks.store.root_lock import data_root_lock


@flow(name="reannotate", log_prints=True)
def reannotate(dataset: str, datasets_root: str, data_root: str = "afford-data", mano_root: str | None = None,
               num_points: int | None = None, seed: int | None = None,
               instructions: Literal["auto", "openai", "template"] | None = None, k: int | None = None,
               event_id: str | None = None) -> str:
    """Re-annotate the samples of `dataset` (a folder under `datasets_root`) whose content changed.
    `mano_root`: the MANO model folder (default `<datasets_root>/mano`, where `afford synth` puts it).
    `num_points`, `seed`: shape the sampled object points; default: what the dataset's table was ingested with.
    `instructions`, `k`: the instruction generator and variants per key; default: what wrote the instructions
    table (so cached keys match and cost no call).
    `event_id`: the `dataset.changed` event that started the run (recorded in the report)."""
    carries_labels = get_format(dataset, "dataset").labelled  # own labels and part maps: no classifier, no map model
    root, folder = Path(data_root or "afford-data"), Path(datasets_root) / dataset
    if not folder.is_dir():
        raise ValueError(f"datasets_root: no folder {folder}")
    layout = DataRoot(root)
    start = time.perf_counter()
    lineage = Lineage(stage="reannotate", stage_version=STAGE_VERSION, params={"dataset": dataset, "event": event_id})
    with data_root_lock(layout):
        mano = Path(mano_root) if mano_root else Path(datasets_root) / "mano"
        num_points, seed = ingested_with(layout.table(dataset), num_points, seed)
        delta = ingest_task(dataset, folder, layout.table(dataset), mano, num_points, seed)
        samples = changed_samples(layout.table(dataset), set(delta.changed))
        targets = [] if carries_labels else samples
        labelled = label_task(targets, delta.removed, root, lineage) if not carries_labels else 0
        instructions, k = instructed_with(layout.instructions, instructions, k)
        instruct_lineage = lineage.model_copy(update={"params": lineage.params | {"generator": instructions, "k": k}})
        instructed = instruct_task(samples, delta.removed, root, instructions, k, instruct_lineage)
        mapped = map_task(targets, delta.removed, root, lineage) if not carries_labels else 0
        joined = join_task(samples, delta.removed, root, lineage)
    markdown = reannotate_report(layout, dataset, event_id, delta, labelled, instructed, mapped, joined,
                                 time.perf_counter() - start)
    create_markdown_artifact(markdown=markdown, key=f"reannotate-{dataset}", description="Incremental re-annotation")
    return markdown
