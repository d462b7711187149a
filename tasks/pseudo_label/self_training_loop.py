"""The self-training loop's steps: prepare the clouds, and per cycle train -> pseudo-label -> open the review
queue -> wait for the review -> merge; then the final labels and the per-cycle report. The self_training flow
sequences these; each cycle's state lives in a `SelfTrainingRun`."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from review.agreement import agreement_report
from review.images import cycle_images_dir, render_queue_images
from review.pace import pace_markdown, reviewer_pace
from review.queue import sample_queue, table_candidates
from review.resume import review_pause_key
from review.store import ReviewStore
from schemas.affordance import affordance_index
from schemas.arrow_convert import batch_to_dicts
from schemas.data_root import DataRoot
from schemas.manifest import Lineage
from schemas.review import ItemState
from schemas.rows import AffordanceLabel, PseudoLabel, Reject, ReviewDecision
from tasks.ingest.delta import save_classifier_state
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.pseudo_label.classifier_data import Clouds
from tasks.pseudo_label.classifier_model import TrainResult
from tasks.pseudo_label.cloud_pool import (
    LABEL_STAGE,
    CloudPool,
    cloud_chunk,
    label_chunk,
    plan_cloud_chunks,
    plan_label_chunks,
)
from tasks.pseudo_label.cloud_pool import STAGE as CLOUD_STAGE
from tasks.pseudo_label.label_quality import label_quality, passes_gate, quality_markdown
from tasks.pseudo_label.report import epoch_line
from tasks.pseudo_label.self_training import (
    STAGE_VERSION,
    CycleRecord,
    decision_rows,
    low_confidence,
    merge_cycle,
)
from tasks.pseudo_label.stage import StageReport, prepare_clouds, train_and_evaluate
from tasks.report.figures import classifier_figures, self_training_figures
from tasks.report.render import render_self_training
from tasks.report.run_files import write_stage
from tasks.runtime.chunked import publish_chunks, read_outputs, run_chunks
from tasks.store.chunks import ChunkStore, InputChunk
from tasks.store.read import open_table
from tasks.store.write import TableWriter, write_table


class ReviewInput(RunInput):
    """What resumes a paused cycle. The web app sends the final item states; from the Prefect UI's form, leave
    `items` empty and the decisions are read from the review store."""

    cycle: int = Field(ge=0, description="The cycle whose review is complete.")
    items: list[ItemState] = Field(default_factory=list, description="Final item states (empty: read the store).")


@task(name="prepare-clouds", cache_policy=NONE)
def clouds_task(tables: list[Path], num_points: int) -> Clouds:
    rejects: list[Reject] = []
    parts = [prepare_clouds(table, num_points, rejects) for table in tables]
    if rejects:
        write_table(DataRoot.beside(tables[0], "rejects"), rejects, Reject)
    clouds = parts[0]
    for part in parts[1:]:
        clouds = clouds.concat(part)
    return clouds


@task(name="train-cycle", cache_policy=NONE)
def train_cycle_task(labelled: Clouds, extra: Clouds, config: TrainConfig, out_dir: Path, k: float,
                     initial: TrainResult | None) -> tuple[TrainResult, StageReport]:
    start = time.perf_counter()
    return train_and_evaluate(labelled, config, out_dir, k, extra_train=extra,
                              initial=initial.model if initial else None,
                              progress=lambda r: print(epoch_line(r, config.epochs, time.perf_counter() - start)))


@task(name="cloud-chunk", cache_policy=NONE, retries=1, retry_delay_seconds=1)
def cloud_chunk_task(chunk: InputChunk, store_root: str, num_points: int) -> dict:
    """One chunk of target samples -> committed classifier clouds (tasks/pseudo_label/cloud_pool.py)."""
    return cloud_chunk(chunk, store_root, num_points)


@task(name="label-chunk", cache_policy=NONE, retries=1, retry_delay_seconds=1)
def label_chunk_task(chunk: InputChunk, **kwargs) -> dict:
    """One chunk of the pool pseudo-labelled by the cycle's classifier (rows committed; counts returned)."""
    return label_chunk(chunk, **kwargs)


def prepare_pool(targets: list[Path], num_points: int, layout: DataRoot, shards_per_chunk: int) -> CloudPool:
    """The targets' clouds, one task per chunk (chunks committed by an earlier run with the same inputs are
    kept); their rejects go to the rejects table."""
    chunks = plan_cloud_chunks(targets, num_points, shards_per_chunk)
    store = ChunkStore(layout.chunks, CLOUD_STAGE)
    run = run_chunks(cloud_chunk_task, chunks, store, num_points=num_points)
    rejects = read_outputs(chunks, store, "rejects")
    if rejects is not None:
        write_table(DataRoot.beside(targets[0], "rejects"), rejects, Reject)
    store.prune(c.key for c in chunks)
    return CloudPool(str(layout.chunks), tuple(chunks), tuple(i for m in run.metas for i in m["sample_ids"]),
                     tuple(c for m in run.metas for c in m["categories"]))


def label_cycle(run: SelfTrainingRun, result: TrainResult, report: StageReport, cycle: int) -> tuple[int, int]:
    """Pseudo-label every pool sample not merged yet, one task per cloud chunk; each chunk commits its rows and
    the cycle's labels are published into the labels table from those files. Returns (labelled, accepted)."""
    s = run.settings
    chunks = plan_label_chunks(run.pool, report.checkpoint_sha256, report.rule, report.measurement.stats, s.k, cycle,
                               run.merged)
    store = ChunkStore(run.layout.chunks, LABEL_STAGE)
    clouds_keys = {chunk.index: chunk.key for chunk in run.pool.chunks}
    done = run_chunks(label_chunk_task, chunks, store, per_chunk=lambda chunk: {
        "clouds_key": clouds_keys[chunk.index],
        "skip": frozenset(i for i in chunk.sample_ids if i in run.merged)},  # only this chunk's merged ids travel
        checkpoint=str(result.checkpoint), checkpoint_sha256=result.checkpoint_sha256, rule=report.rule,
        stats=report.measurement.stats, k=s.k, cycle=cycle)
    lineage = Lineage(stage="self_training", stage_version=STAGE_VERSION, checkpoint_sha256=report.checkpoint_sha256,
                      params={"rule": report.rule, "k": s.k, "cycle": cycle}, seed=s.seed)
    publish_chunks(run.layout.labels, PseudoLabel, chunks, store, "rows", lineage)
    return sum(m["labelled"] for m in done.metas), sum(m["accepted"] for m in done.metas)


def cycle_labels(table: Path, cycle: int, labelled: Collection[str], batch_rows: int = 1024
                 ) -> Iterator[list[PseudoLabel]]:
    """This run's labels of `cycle`, a batch at a time: the rows of `cycle` whose sample the cycle labelled. The
    table keeps every cycle's rows, of earlier runs too; a row (cycle, id) for an id this cycle did not label
    (merged earlier in this run, or gone from the pool) is an earlier run's, and is left out. Filtered in Arrow,
    validated only when kept."""
    wanted = pa.array(sorted(labelled), type=pa.string())
    batch: list[PseudoLabel] = []
    for data in open_table(table, PseudoLabel).iter_batches(batch_rows=4096):
        data = data.filter(pc.and_(pc.equal(data.column("cycle"), cycle),
                                   pc.is_in(data.column("sample_id"), value_set=wanted)))
        for raw in batch_to_dicts(data, PseudoLabel):
            batch.append(PseudoLabel.model_validate(raw))
            if len(batch) >= batch_rows:
                yield batch
                batch = []
    if batch:
        yield batch


def merge_into_table(run: SelfTrainingRun, cycle: int, labelled: Collection[str], states: list[ItemState],
                     gate_passed: bool) -> int:
    """Merge the cycle's labels (merge_cycle, batch by batch) into the run's merged-labels table; remember each
    merged sample's class by id. `labelled`: the ids the cycle labelled. Returns how many joined."""
    count = 0
    # The run's first merge starts the table afresh: labels merged by an earlier run are not this run's
    mode = "upsert" if run.merged else "overwrite"
    with TableWriter(run.layout.merged_labels, AffordanceLabel, mode=mode, lineage=Lineage(
            stage="self_training", stage_version=STAGE_VERSION, params={"cycle": cycle})) as writer:
        for batch in cycle_labels(run.layout.labels, cycle, labelled):
            new = merge_cycle(batch, states, gate_passed)
            writer.write(new)
            run.merged |= {label.sample_id: affordance_index(label.affordance) for label in new}
            count += len(new)
    return count


@task(name="open-review-queue", cache_policy=NONE)
def queue_task(store_path: Path, images_dir: Path, labels_table: Path, labelled: Collection[str],
               categories: dict[str, str], cycle: int, size: int, seed: int, sample_tables: list[Path],
               hand_faces: np.ndarray, overlap: float = 0.0) -> int:
    items = sample_queue(table_candidates(labels_table, cycle, labelled), categories, cycle, size=size, seed=seed,
                         overlap=overlap)
    render_queue_images(items, sample_tables, hand_faces, cycle_images_dir(images_dir, cycle))
    ReviewStore(store_path).create_queue(cycle, items, flow_run_id=str(flow_run.id))
    return len(items)


def _simulated_review(base_url: str, cycle: int, truth: dict[str, str], error_rate: float,
                      seed: int) -> threading.Thread:
    from review.simulated import review_until_complete

    # As many simulated reviewers as the queue needs: one, a second for the overlap share, more for disputes
    thread = threading.Thread(target=review_until_complete, args=(base_url, cycle, truth),
                              kwargs={"error_rate": error_rate, "seed": seed}, daemon=True)
    thread.start()
    return thread


def _final_labels(layout: DataRoot, pool: CloudPool, merged: Collection[str], last_cycle: int | None,
                  writer: TableWriter) -> Counter[str]:
    """Stream the final labels into `writer`: the run's merged labels, then the last cycle's model label
    (low_confidence) for every pool sample not merged; the count per origin."""
    origins: Counter[str] = Counter()
    if merged:
        for batch in open_table(layout.merged_labels, AffordanceLabel).iter_batches(batch_rows=4096):
            writer.write_arrow(batch)  # rows that came out of a table: no need to validate them again
            origins.update(batch.column("origin").to_pylist())
    if last_cycle is not None:  # the last cycle labelled every pool sample not merged by then
        rest = {i for i in pool.sample_ids if i not in merged}
        for batch in cycle_labels(layout.labels, last_cycle, rest):
            rows = low_confidence(batch, set(merged))
            writer.write(rows)
            origins["low_confidence"] += len(rows)
    return origins


def _finish(root: Path, out: Path, pool: CloudPool, merged: Collection[str], records: list[CycleRecord],
            first: StageReport | None) -> str:
    """Write the final labels (merged + low_confidence), the stage's figures (reports/self_training.json), the
    per-cycle table, and the artifacts."""
    layout = DataRoot(root)
    with TableWriter(layout.affordance_labels, AffordanceLabel, lineage=Lineage(
            stage="self_training", stage_version=STAGE_VERSION, params={"cycles": len(records)})) as writer:
        origins = _final_labels(layout, pool, merged, records[-1].cycle if records else None, writer)
    classifier = None if first is None else classifier_figures(
        first.split_accuracy, first.measurement.reports, first.rule, first.measurement.choice.reason,
        first.measurement.stats, first.checkpoint_sha256)
    figures = self_training_figures(classifier, records, origins, len(pool))
    write_stage(layout.reports, "self_training", figures)
    files = (f"Checkpoint of cycle 0 `{first.checkpoint}`; plots " + ", ".join(f"`{p}`" for p in first.files.values())
             + "\n\n" if first else "")
    markdown = f"{render_self_training(figures)}\n\n{files}Table `{layout.affordance_labels.absolute()}`."
    out.mkdir(parents=True, exist_ok=True)
    (out / "cycles.md").write_text(markdown)
    (out / "cycles.json").write_text(json.dumps([r.as_dict() for r in records], indent=2))
    create_markdown_artifact(markdown=markdown, key="self-training", description="Per-cycle self-training table")
    create_table_artifact(table=[r.as_dict() for r in records], key="self-training-cycles",
                          description="Coverage, acceptance, validation and reviewed accuracy per cycle")
    return markdown


@dataclass(frozen=True)
class CycleSettings:
    """The self_training flow's knobs that every cycle reads."""

    classifier_preset: str
    epochs: int  # cycle 0
    epochs_per_cycle: int  # later cycles, warm-started from the previous model
    seed: int
    k: float
    queue_size: int
    min_lower: float
    review_timeout_s: int
    reviewer: str
    review_url: str
    simulated_error_rate: float
    review_overlap: float = 0.0  # share of each queue that two reviewers decide


@dataclass
class SelfTrainingRun:
    """What every cycle needs (the labelled set, the pool to label, where things go) and what the cycles built."""

    layout: DataRoot
    settings: CycleSettings
    labelled: Clouds
    pool: CloudPool  # the targets' clouds on disk, by chunk (ids and categories in memory)
    targets: list[Path]
    hand_faces: np.ndarray
    truth: dict[str, str] = field(default_factory=dict)  # sample_id -> true class (simulated reviewer only)
    # sample_id -> class index of every label merged so far; the rows are in layout.merged_labels, and each
    # cycle's pseudo-labels in layout.labels: per-sample state lives in tables, only ids and classes here
    merged: dict[str, int] = field(default_factory=dict)
    records: list[CycleRecord] = field(default_factory=list)
    reports: list[StageReport] = field(default_factory=list)
    previous: TrainResult | None = None

    @property
    def categories(self) -> dict[str, str]:
        return dict(zip(self.pool.sample_ids, self.pool.categories, strict=True))

    def coverage(self) -> float:
        return len(self.merged) / max(len(self.pool), 1)


def run_cycle(run: SelfTrainingRun, cycle: int) -> bool:
    """One cycle: train on the labelled set plus the labels merged so far, pseudo-label the rest, review a queue,
    merge what passes. False when the loop ends here (all labelled, nothing accepted, timed out, nothing merged)."""
    s, out = run.settings, run.layout.self_training
    labelled = frozenset(sid for sid in run.pool.sample_ids if sid not in run.merged)  # what this cycle labels
    remaining = len(labelled)
    if remaining == 0:
        return False
    extra = run.pool.load(run.merged.keys())  # the merged pseudo-labels train with the labelled set
    extra = extra.with_labels(np.array([run.merged[i] for i in extra.sample_ids], np.int64))
    config = TrainConfig(preset=s.classifier_preset, epochs=s.epochs if cycle == 0 else s.epochs_per_cycle,
                         seed=s.seed + cycle)
    result, report = train_cycle_task(run.labelled, extra, config, out / f"cycle-{cycle}", s.k, run.previous)
    run.previous = result
    run.reports.append(report)
    count, accepted = label_cycle(run, result, report, cycle)
    record = CycleRecord(cycle=cycle, unlabelled_before=remaining, accepted=accepted,
                         acceptance_rate=accepted / max(count, 1), val_accuracy=report.split_accuracy["val"],
                         test_accuracy=report.split_accuracy["test"], reviewed=0, reviewed_accuracy=None,
                         gate_passed=None, merged=0, coverage=run.coverage())
    run.records.append(record)
    if accepted == 0:
        record.note = "no label passed the confidence rule"
        return False
    states = _reviewed(run, cycle, labelled, record)
    if states is None:
        return False
    write_table(run.layout.review_decisions, decision_rows(states), ReviewDecision)
    quality = label_quality(states)
    record.reviewed, record.reviewed_accuracy = quality.n, quality.accuracy
    record.gate_passed = passes_gate(quality, s.min_lower)
    # Items two reviewers decided (an overlap share of the queue): how much the reviewers agree
    review_store = ReviewStore(run.layout.review_store)
    agreement = agreement_report(review_store.reviewer_labels(cycle))
    agreed = f"\n\n### Reviewer agreement\n\n{agreement.markdown()}" if agreement.overlapping else ""
    agreed += f"\n\n### Time per decision\n\n{pace_markdown(reviewer_pace(review_store.trail(cycle)))}"
    create_markdown_artifact(markdown=f"## Review of cycle {cycle}\n\n{quality_markdown(quality, s.min_lower)}"
                                      f"{agreed}",
                             key=f"review-quality-cycle-{cycle}", description="Reviewed label quality")
    new = merge_into_table(run, cycle, labelled, states, record.gate_passed)
    record.merged, record.coverage = new, run.coverage()
    if not new:
        record.note = "no label was merged (gate failed and nothing relabelled)"
        return False
    return True


def _reviewed(run: SelfTrainingRun, cycle: int, labelled: Collection[str],
              record: CycleRecord) -> list[ItemState] | None:
    """Open the cycle's queue and wait (paused) for its review; the final item states, or None on timeout."""
    s, store_path = run.settings, run.layout.review_store
    size = queue_task(store_path, run.layout.review_images, run.layout.labels, labelled, run.categories, cycle,
                      s.queue_size, s.seed + cycle, run.targets, run.hand_faces, s.review_overlap)
    print(f"cycle {cycle}: {size} labels to review at {s.review_url}/ (or resume this run in the Prefect UI "
          f"once they are decided); waiting up to {s.review_timeout_s} s")
    store = ReviewStore(store_path)
    if store.progress(cycle).complete:  # a re-run of a cycle reviewed before: its decisions stand
        print(f"cycle {cycle}: the review store already holds a complete review of this queue; using it")
        return store.result(cycle).items
    if s.reviewer == "simulated":
        _simulated_review(s.review_url, cycle, run.truth, s.simulated_error_rate, s.seed + cycle)
    try:
        answer = pause_flow_run(wait_for_input=ReviewInput, timeout=s.review_timeout_s, poll_interval=2,
                                key=review_pause_key(cycle))
    except FlowPauseTimeout:
        record.note = f"review timed out after {s.review_timeout_s} s: this cycle's labels are not merged"
        print(f"cycle {cycle}: {record.note}")
        return None
    return answer.items or store.result(cycle).items


def record_current_classifier(run: SelfTrainingRun) -> None:
    """The last cycle's classifier and rule as the data root's current one: what labels a sample that changes
    later (re-annotation) and what grasp evaluation measures ACC with."""
    if run.previous is not None:
        last = run.reports[-1]
        save_classifier_state(run.layout.current("classifier"), run.previous.checkpoint,
                              run.previous.checkpoint_sha256, last.rule, run.settings.k, len(run.reports) - 1,
                              last.measurement.stats)


def finish(run: SelfTrainingRun) -> str:
    """Write the final labels and the per-cycle report (see _finish)."""
    return _finish(run.layout.path, run.layout.self_training, run.pool, run.merged, run.records,
                   run.reports[0] if run.reports else None)
