"""The self_training flow: cycles of train -> pseudo-label -> 3-sigma filter -> human review -> merge, until every
target sample has a label, no new label is accepted, or `max_cycles` is reached.

Each cycle's review queue goes to the review store; the flow then pauses (`pause_flow_run`, keyed by cycle) until
the web app resumes it with the decisions when the last item is decided, or someone resumes it from the Prefect
UI (the decisions are then read from the store). On timeout the cycle's labels are not merged and the run says so.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Literal

import numpy as np
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.exceptions import FlowPauseTimeout
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from models.mano_pickle import load_mano_pickle, mano_file
from models.preset_choices import CLASSIFIER_PRESETS, ClassifierPreset
from review.images import cycle_images_dir, render_queue_images
from review.queue import sample_queue
from review.resume import prefect_api_url, review_pause_key
from review.store import ReviewStore
from schemas.affordance import affordance_index
from schemas.data_root import DataRoot
from schemas.manifest import Lineage
from schemas.review import ItemState
from schemas.rows import AffordanceLabel, PseudoLabel, Reject, ReviewDecision, Sample
from tasks.ingest.delta import save_classifier_state
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.pseudo_label.classifier_data import Clouds
from tasks.pseudo_label.classifier_model import TrainResult
from tasks.pseudo_label.label_quality import label_quality, passes_gate, quality_markdown
from tasks.pseudo_label.report import epoch_line, rule_table, summary_table
from tasks.pseudo_label.self_training import (
    STAGE_VERSION,
    CycleRecord,
    cycle_table,
    decision_rows,
    low_confidence,
    merge_cycle,
)
from tasks.pseudo_label.stage import NoLabelledSamples, StageReport, label_clouds, prepare_clouds, train_and_evaluate
from tasks.store.read import open_table
from tasks.store.write import write_table


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


@task(name="pseudo-label-cycle", cache_policy=NONE)
def label_cycle_task(result: TrainResult, report: StageReport, remaining: Clouds, k: float, cycle: int,
                     labels_table: Path) -> list[PseudoLabel]:
    labels = label_clouds(result, report, remaining, k, cycle)
    lineage = Lineage(stage="self_training", stage_version=STAGE_VERSION, checkpoint_sha256=report.checkpoint_sha256,
                      params={"rule": report.rule, "k": k, "cycle": cycle})
    write_table(labels_table, labels, PseudoLabel, lineage=lineage)
    return labels


@task(name="open-review-queue", cache_policy=NONE)
def queue_task(store_path: Path, images_dir: Path, labels: list[PseudoLabel], categories: dict[str, str],
               cycle: int, size: int, seed: int, sample_tables: list[Path], hand_faces: np.ndarray) -> int:
    items = sample_queue(labels, categories, cycle, size=size, seed=seed)
    render_queue_images(items, sample_tables, hand_faces, cycle_images_dir(images_dir, cycle))
    ReviewStore(store_path).create_queue(cycle, items, flow_run_id=str(flow_run.id))
    return len(items)


def _simulated_review(base_url: str, cycle: int, truth: dict[str, str], error_rate: float,
                      seed: int) -> threading.Thread:
    from review.simulated import review_queue_over_http

    thread = threading.Thread(target=review_queue_over_http, args=(base_url, cycle, truth),
                              kwargs={"error_rate": error_rate, "seed": seed}, daemon=True)
    thread.start()
    return thread


@flow(name="self_training", log_prints=True)
def self_training(data_root: str, labelled_table: str, target_tables: list[str], mano_root: str,
                  max_cycles: int = 5, queue_size: int = 100, k: float = 3.0, epochs: int = TrainConfig.epochs,
                  epochs_per_cycle: int = 15, seed: int = 0, min_lower: float = 0.90, review_timeout_s: int = 3600,
                  reviewer: Literal["web", "simulated"] = "web", review_url: str = "http://127.0.0.1:8765",
                  simulated_error_rate: float = 0.02, truth_root: str | None = None,
                  classifier_preset: ClassifierPreset = CLASSIFIER_PRESETS.default) -> str:
    """Label every target sample: train on AffordPose (+ validated pseudo-labels), pseudo-label, review, merge.

    reviewer="web": people review at `review_url` (`afford review serve`). reviewer="simulated" (demo, tests):
    the flow starts the web app itself and a simulated reviewer answering from the synthetic ground truth under
    `truth_root` (the datasets folder `afford synth` wrote) with `simulated_error_rate` wrong answers.
    """
    layout = DataRoot(data_root)
    root, out = layout.path, layout.self_training
    store_path, images_dir = layout.review_store, layout.review_images
    targets = [Path(t) for t in target_tables]
    if not targets:
        raise ValueError("target_tables: give at least one unlabelled samples table to label")
    num_points = CLASSIFIER_PRESETS.from_name(classifier_preset).num_points
    labelled = clouds_task([Path(labelled_table)], num_points)
    if not (labelled.labels >= 0).any():
        raise NoLabelledSamples(f"{labelled_table}: no labelled samples to train the classifier on")
    pool = clouds_task(targets, num_points)
    categories = dict(zip(pool.sample_ids, pool.categories, strict=True))
    hand_faces = load_mano_pickle(mano_file(Path(mano_root), "right")).f
    server, truth = None, {}
    if reviewer == "simulated":
        from review.simulated import start_review_server
        from review.truth import truth_for

        if truth_root is None:
            raise ValueError("reviewer='simulated' needs truth_root: the datasets folder written by `afford synth`")
        truth = truth_for(Path(truth_root), (row for t in targets for row in open_table(t, Sample).iter_rows()))
        server, review_url = start_review_server(store_path, images_dir, api_url=prefect_api_url())
    merged: dict[str, AffordanceLabel] = {}
    last_label: dict[str, PseudoLabel] = {}
    records: list[CycleRecord] = []
    previous: TrainResult | None = None
    reports: list[StageReport] = []
    try:
        for cycle in range(max_cycles):
            remaining = pool.subset(np.flatnonzero([sid not in merged for sid in pool.sample_ids]))
            if len(remaining) == 0:
                break
            extra = pool.subset(np.flatnonzero([sid in merged for sid in pool.sample_ids]))
            extra = extra.with_labels(np.array([affordance_index(merged[s].affordance) for s in extra.sample_ids],
                                               np.int64))
            config = TrainConfig(preset=classifier_preset, epochs=epochs if cycle == 0 else epochs_per_cycle,
                                 seed=seed + cycle)
            result, report = train_cycle_task(labelled, extra, config, out / f"cycle-{cycle}", k, previous)
            previous = result
            reports.append(report)
            labels = label_cycle_task(result, report, remaining, k, cycle, layout.labels)
            last_label |= {label.sample_id: label for label in labels}
            accepted = sum(label.accepted for label in labels)
            record = CycleRecord(cycle=cycle, unlabelled_before=len(remaining), accepted=accepted,
                                 acceptance_rate=accepted / len(labels), val_accuracy=report.split_accuracy["val"],
                                 test_accuracy=report.split_accuracy["test"], reviewed=0, reviewed_accuracy=None,
                                 gate_passed=None, merged=0, coverage=len(merged) / max(len(pool), 1))
            records.append(record)
            if accepted == 0:
                record.note = "no label passed the confidence rule"
                break
            size = queue_task(store_path, images_dir, labels, categories, cycle, queue_size, seed + cycle,
                              targets, hand_faces)
            print(f"cycle {cycle}: {size} labels to review at {review_url}/ (or resume this run in the Prefect UI "
                  f"once they are decided); waiting up to {review_timeout_s} s")
            store = ReviewStore(store_path)
            if store.progress(cycle).complete:  # a re-run of a cycle reviewed before: its decisions stand
                print(f"cycle {cycle}: the review store already holds a complete review of this queue; using it")
                states = store.result(cycle).items
            else:
                if reviewer == "simulated":
                    _simulated_review(review_url, cycle, truth, simulated_error_rate, seed + cycle)
                try:
                    answer = pause_flow_run(wait_for_input=ReviewInput, timeout=review_timeout_s, poll_interval=2,
                                            key=review_pause_key(cycle))
                except FlowPauseTimeout:
                    record.note = f"review timed out after {review_timeout_s} s: this cycle's labels are not merged"
                    print(f"cycle {cycle}: {record.note}")
                    break
                states = answer.items or store.result(cycle).items
            write_table(layout.review_decisions, decision_rows(states), ReviewDecision)
            quality = label_quality(states)
            record.reviewed, record.reviewed_accuracy = quality.n, quality.accuracy
            record.gate_passed = passes_gate(quality, min_lower)
            create_markdown_artifact(markdown=f"## Review of cycle {cycle}\n\n{quality_markdown(quality, min_lower)}",
                                     key=f"review-quality-cycle-{cycle}", description="Reviewed label quality")
            new = merge_cycle(labels, states, record.gate_passed)
            merged |= {label.sample_id: label for label in new}
            record.merged, record.coverage = len(new), len(merged) / max(len(pool), 1)
            if not new:
                record.note = "no label was merged (gate failed and nothing relabelled)"
                break
    finally:
        if server is not None:
            from review.simulated import stop_review_server

            stop_review_server(server)
    if previous is not None:  # what labels a sample that changes later (tasks/ingest/delta.py)
        save_classifier_state(layout.current("classifier"), previous.checkpoint, previous.checkpoint_sha256,
                              reports[-1].rule, k, len(reports) - 1, reports[-1].measurement.stats)
    return _finish(root, out, pool, merged, last_label, records, reports[0] if reports else None)


def _classifier_markdown(report: StageReport) -> str:
    """Cycle 0's classifier figures: accuracy per split, both rules on the held-out test split, the choice."""
    return "\n\n".join(["## Classifier (cycle 0, AffordPose only)", summary_table(report.split_accuracy),
                         "Confidence rules on the held-out test split (treated as unlabelled):",
                         rule_table(report.measurement.reports),
                         f"Default rule: **{report.rule}**. {report.measurement.choice.reason}",
                         f"Checkpoint `{report.checkpoint}`; plots " +
                         ", ".join(f"`{p}`" for p in report.files.values())])


def _finish(root: Path, out: Path, pool: Clouds, merged: dict[str, AffordanceLabel],
            last_label: dict[str, PseudoLabel], records: list[CycleRecord], first: StageReport | None) -> str:
    """Write the final labels (merged + low_confidence), the per-cycle table, and the artifacts."""
    final = list(merged.values()) + low_confidence(last_label.values(), set(merged))
    write_table(DataRoot(root).affordance_labels, final, AffordanceLabel,
                lineage=Lineage(stage="self_training", stage_version=STAGE_VERSION, params={"cycles": len(records)}))
    table = cycle_table(records)
    origins = {o: sum(label.origin == o for label in final) for o in ("validated", "relabelled", "low_confidence")}
    markdown = "\n\n".join([
        *([_classifier_markdown(first)] if first else []), "## Self-training", table,
        f"{len(final)} of {len(pool)} target samples labelled ({100 * len(final) / max(len(pool), 1):.1f} % "
        f"coverage): {origins['validated']} validated, {origins['relabelled']} relabelled by a reviewer, "
        f"{origins['low_confidence']} low_confidence (never accepted; the last model's label). Table "
        f"`{(root / 'tables' / 'affordance_labels').absolute()}`."])
    out.mkdir(parents=True, exist_ok=True)
    (out / "cycles.md").write_text(markdown)
    (out / "cycles.json").write_text(json.dumps([r.as_dict() for r in records], indent=2))
    create_markdown_artifact(markdown=markdown, key="self-training", description="Per-cycle self-training table")
    create_table_artifact(table=[r.as_dict() for r in records], key="self-training-cycles",
                          description="Coverage, acceptance, validation and reviewed accuracy per cycle")
    return markdown
