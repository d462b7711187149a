"""The annotate flow: ingest -> self-training with review -> instructions -> affordance maps -> `annotated`.

Each stage is a sub-flow (visible as such in the Prefect UI, with its own artifacts). Datasets are the folders
`affordpose`, `oakink`, `grab`, `ho3d` under `datasets_root` (any subset; AffordPose is the labelled one the
models learn from). Tables go to `<data_root>/tables`; the final `annotated` table joins, per sample_id, the
sample, its affordance (own or self-training's), its instruction and its affordance map, with the lineage of
each.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from flows.affordance import affordance
from flows.instruct import instruct
from flows.self_training import self_training
from models.preset_choices import AFFORDANCE_PRESETS, CLASSIFIER_PRESETS, AffordancePreset, ClassifierPreset
from schemas.annotated import AnnotatedRow
from schemas.data_root import DataRoot
from schemas.manifest import Lineage
from schemas.rows import Reject
from schemas.settings import AffordSettings
from tasks.affordance.config import MapTrainConfig
from tasks.affordance.data import NoMapItems
from tasks.ingest.formats import FORMATS, get_format, labelled_format
from tasks.ingest.ingest_task import ingest_counts, ingest_datasets, plan_ingest_task
from tasks.ingest.pipeline import IngestCounts
from tasks.instruct.warm_endpoint import warm_endpoint
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.pseudo_label.stage import NoLabelledSamples
from tasks.report.figures import ingest_figures
from tasks.report.render import render_annotated, render_ingest
from tasks.report.run_files import write_stage
from tasks.runtime.chunked import publish_chunks, read_outputs, run_chunks
from tasks.runtime.provenance import provenance
from tasks.runtime.stage_clock import StageClock
from tasks.runtime.task_runners import make_task_runner
from tasks.runtime.threads import apply_torch_threads
from tasks.store.annotated_join import (
    JOIN_STAGE,
    STAGE_VERSION,
    JoinCounts,
    SideTables,
    join_chunk,
    plan_join_chunks,
    side_shards,
    total_counts,
)
from tasks.store.chunks import ChunkStore
from tasks.store.published_event import EVENT, emit_published
from tasks.store.write import TableWriter


@flow(name="ingest-all")
def ingest_all(formats: list[str], datasets_root: str, data_root: str, mano_root: str, num_points: int,
               seed: int) -> list[IngestCounts]:
    """Every dataset folder in chunks of source files, one task per chunk on the flow's task runner (threads, or
    Dask), each table published once (tasks/ingest/ingest_chunks.py)."""
    datasets, layout = Path(datasets_root), DataRoot(data_root)
    scale = AffordSettings().chunk_shards
    planned = [plan_ingest_task.submit(fmt, datasets / fmt, layout.table(fmt), Path(mano_root), num_points, seed,
                                       scale) for fmt in formats]
    deltas = ingest_datasets([future.result() for future in planned])
    return [ingest_counts(delta, layout.table(fmt)) for fmt, delta in zip(formats, deltas, strict=True)]


@task(name="join-chunk", cache_policy=NONE, retries=1, retry_delay_seconds=1)
def join_chunk_task(chunk, store_root: str, **kwargs) -> dict:
    """One chunk of samples joined with their side rows (tasks/store/annotated_join.py)."""
    return join_chunk(chunk, store_root, **kwargs)


@flow(name="join-annotated")
def join_annotated(data_root: str, formats: list[str], shards_per_chunk: int | None = None) -> JoinCounts:
    """The annotated table from every samples table and the side tables, one task per chunk of sample shards
    on the flow's task runner; published once (a new version replaces the last run's whole)."""
    layout = DataRoot(data_root)
    tables = SideTables(labels=layout.affordance_labels, instructions=layout.instructions,
                        maps=layout.affordance_maps, fits=layout.mano_fits)
    chunks, keyed = plan_join_chunks([layout.table(fmt) for fmt in formats], tables,
                                     shards_per_chunk or AffordSettings().chunk_shards)
    store = ChunkStore(layout.chunks, JOIN_STAGE)
    run = run_chunks(join_chunk_task, chunks, store, per_chunk=lambda c: {"shards": side_shards(c, keyed)},
                     tables=tables)
    lineage = Lineage(stage="annotate", stage_version=STAGE_VERSION, params={"tables": formats})
    publish_chunks(layout.annotated, AnnotatedRow, chunks, store, "rows", lineage, mode="overwrite")
    with TableWriter(layout.rejects, Reject, lineage=lineage) as writer:
        rejects = read_outputs(chunks, store, "rejects")
        if rejects is not None:
            writer.write_arrow(rejects)
    return total_counts(run.metas)


@flow(name="annotate", log_prints=True)
def annotate(datasets_root: str, mano_root: str, data_root: str = "afford-data", num_points: int = 2048,
             seed: int = 0, reviewer: Literal["web", "simulated"] = "web", review_url: str = "http://127.0.0.1:8765",
             simulated_error_rate: float = 0.02, truth_root: str | None = None, epochs: int = TrainConfig.epochs,
             max_cycles: int = 5, queue_size: int = 100, review_overlap: float = 0.0,
             instructions: Literal["auto", "openai", "template"] = "auto",
             affordance_steps: int = MapTrainConfig.steps,
             affordance_preset: AffordancePreset = AFFORDANCE_PRESETS.default,
             classifier_preset: ClassifierPreset = CLASSIFIER_PRESETS.default, command: str = "annotate flow") -> str:
    """Annotate every dataset folder under `datasets_root` end to end and write `<data_root>/tables/annotated`.
    `reviewer`: "web" pauses each self-training cycle for people (`afford review serve`); "simulated" answers
    from the synthetic ground truth under `truth_root` (demo, tests). Every stage's figures go to
    `<data_root>/reports/` (`afford report` renders them), headed by `command`, the seed and the code version."""
    layout, datasets = DataRoot(data_root), Path(datasets_root)
    root = layout.path
    formats = [fmt for fmt in FORMATS if (datasets / fmt).is_dir()]
    if not formats:
        raise ValueError(f"datasets_root {datasets}: no dataset folder ({', '.join(FORMATS)}) inside")
    settings = AffordSettings()
    apply_torch_threads(settings)
    runner = make_task_runner(settings)
    # The embedded LLM (converted once, then served) starts now, beside ingest and self-training, so the instruct
    # stage does not wait for it (tasks/instruct/warm_endpoint.py); a demo that warmed it already keeps it.
    with warm_endpoint(root, AffordSettings(data_root=str(root)), instructions):
        run = provenance(command, seed)
        shutil.rmtree(layout.reports, ignore_errors=True)  # the last run's figures must not mix with this run's
        write_stage(layout.reports, "run", run | {"finished": False})
        clock = StageClock(layout.reports)
        clock.start("ingest")
        counts = ingest_all.with_options(task_runner=runner)(formats, str(datasets), str(root), mano_root, num_points,
                                                            seed)
        labelled = labelled_format()
        targets = [str(layout.table(fmt)) for fmt in formats if not get_format(fmt).labelled]
        ingest = ingest_figures(counts)
        write_stage(layout.reports, "ingest", ingest)
        parts = [render_ingest(ingest) + f"\n\nTables in `{layout.tables.absolute()}`."]
        clock.done("ingest")
        clock.start("self_training")
        try:
            parts.append(self_training.with_options(task_runner=runner)(
                data_root=str(root), labelled_table=str(layout.table(labelled)), target_tables=targets,
                mano_root=mano_root, epochs=epochs, seed=seed, reviewer=reviewer, review_url=review_url,
                truth_root=truth_root, simulated_error_rate=simulated_error_rate, max_cycles=max_cycles,
                queue_size=queue_size, classifier_preset=classifier_preset, review_overlap=review_overlap))
        except NoLabelledSamples as exc:  # e.g. every AffordPose input was rejected: nothing to learn from
            write_stage(layout.reports, "self_training", skipped=str(exc))
            parts.append(f"## Self-training skipped\n\n{exc}")
        clock.done("self_training")
        labels_table = layout.affordance_labels
        clock.start("instruct")
        parts.append(instruct(tables=[str(layout.table(fmt)) for fmt in formats], out_table=str(layout.instructions),
                              labels_table=str(labels_table) if (labels_table / "manifest.json").is_file() else None,
                              generator=instructions, data_root=str(root), seed=seed,
                              reports_dir=str(layout.reports)))
        clock.done("instruct")
        clock.start("affordance")
        try:
            parts.append(affordance.with_options(task_runner=runner)(
                labelled_table=str(layout.table(labelled)), target_tables=targets, out_dir=str(layout.affordance),
                instructions_table=str(layout.instructions), preset=affordance_preset, steps=affordance_steps,
                seed=seed, current_record=str(layout.current("affordance")), reports_dir=str(layout.reports)))
        except NoMapItems as exc:  # as above: no AffordPose row with part labels to learn from
            write_stage(layout.reports, "affordance", skipped=str(exc))
            parts.append(f"## Affordance maps skipped\n\n{exc}")
        clock.done("affordance")
        clock.start("join")
        joined = join_annotated.with_options(task_runner=runner)(str(root), formats)
        write_stage(layout.reports, "annotated", asdict(joined))
        parts.append(f"{render_annotated(asdict(joined))} Table `{layout.annotated.absolute()}`.")
        clock.done("join")
        write_stage(layout.reports, "run", run | {"finished": True})
        # Last: what a deployment triggered by it (prefect.yaml's train-grasp trigger) trains on.
        published = emit_published(layout.annotated, root)
        print(f"published {layout.annotated} as event {EVENT} ({published})")
        markdown = "\n\n".join(parts)
        create_markdown_artifact(markdown=markdown, key="annotate-summary", description="Every stage of the run")
        return markdown
