"""The self_training flow: cycles of train -> pseudo-label -> 3-sigma filter -> human review -> merge, until every
target sample has a label, no new label is accepted, or `max_cycles` is reached.

Each cycle's review queue goes to the review store; the flow then pauses (`pause_flow_run`, keyed by cycle) until
the web app resumes it with the decisions when the last item is decided, or someone resumes it from the Prefect
UI (the decisions are then read from the store). On timeout the cycle's labels are not merged and the run says so.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

from prefect import flow

from models.mano_pickle import load_mano_pickle, mano_file
from models.preset_choices import CLASSIFIER_PRESETS, ClassifierPreset
from review.resume import prefect_api_url
from schemas.data_root import DataRoot
from schemas.settings import AffordSettings
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.pseudo_label.self_training_loop import (
    CycleSettings,
    SelfTrainingRun,
    clouds_task,
    finish,
    prepare_pool,
    record_current_classifier,
    run_cycle,
)
from tasks.pseudo_label.stage import NoLabelledSamples


@flow(name="self_training", log_prints=True)
def self_training(data_root: str, labelled_table: str, target_tables: list[str], mano_root: str,
                  max_cycles: int = 5, queue_size: int = 100, k: float = 3.0, epochs: int = TrainConfig.epochs,
                  epochs_per_cycle: int = 15, seed: int = 0, min_lower: float = 0.90, review_timeout_s: int = 3600,
                  reviewer: Literal["web", "simulated"] = "web", review_url: str = "http://127.0.0.1:8765",
                  simulated_error_rate: float = 0.02, truth_root: str | None = None,
                  classifier_preset: ClassifierPreset = CLASSIFIER_PRESETS.default, review_overlap: float = 0.0) -> str:
    """Label every target sample: train on AffordPose (+ validated pseudo-labels), pseudo-label, review, merge.

    reviewer="web": people review at `review_url` (`afford review serve`). reviewer="simulated" (demo, tests):
    the flow starts the web app itself and a simulated reviewer answering from the synthetic ground truth under
    `truth_root` (the datasets folder `afford synth` wrote) with `simulated_error_rate` wrong answers.
    review_overlap: the share of each queue two reviewers must decide (their agreement and Cohen's kappa go to the
    cycle's review artifact; an item they disagree on waits for a third decision).
    """
    layout = DataRoot(data_root)
    settings = CycleSettings(classifier_preset, epochs, epochs_per_cycle, seed, k, queue_size, min_lower,
                             review_timeout_s, reviewer, review_url, simulated_error_rate, review_overlap)
    targets = [Path(t) for t in target_tables]
    if not targets:
        raise ValueError("target_tables: give at least one unlabelled samples table to label")
    num_points = CLASSIFIER_PRESETS.from_name(classifier_preset).num_points
    labelled = clouds_task([Path(labelled_table)], num_points)
    if not (labelled.labels >= 0).any():
        raise NoLabelledSamples(f"{labelled_table}: no labelled samples to train the classifier on")
    pool = prepare_pool(targets, num_points, layout, AffordSettings().chunk_shards)
    hand_faces = load_mano_pickle(mano_file(Path(mano_root), "right")).f
    server, truth = None, {}
    if reviewer == "simulated":
        from review.simulated import start_review_server
        from review.truth import table_truth_keys, truth_for

        if truth_root is None:
            raise ValueError("reviewer='simulated' needs truth_root: the datasets folder written by `afford synth`")
        truth = truth_for(Path(truth_root), table_truth_keys(targets))
        server, url = start_review_server(layout.review_store, layout.review_images, api_url=prefect_api_url())
        settings = replace(settings, review_url=url)
    run = SelfTrainingRun(layout, settings, labelled, pool, targets, hand_faces, truth)
    try:
        for cycle in range(max_cycles):
            if not run_cycle(run, cycle):
                break
    finally:
        if server is not None:
            from review.simulated import stop_review_server

            stop_review_server(server)
    record_current_classifier(run)
    return finish(run)
