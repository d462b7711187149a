"""The demo flow: synthesise the four datasets, run the whole annotate flow on them, report where everything went."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows.annotate import annotate
from flows.evaluate_grasp import evaluate_grasp
from flows.train_grasp import train_grasp
from models.mano_pickle import load_mano_pickle, mano_file
from models.preset_choices import AFFORDANCE_PRESETS, CLASSIFIER_PRESETS, AffordancePreset, ClassifierPreset
from ops.render import render_pair
from review.resume import prefect_api_url
from review.truth import truth_dir
from schemas.data_root import DataRoot
from schemas.hand import hand_faces_for
from schemas.rows import Sample
from schemas.settings import AffordSettings
from tasks.affordance.config import MapTrainConfig
from tasks.grasp.config import PRESETS as GRASP_PRESETS
from tasks.ingest.formats import labelled_format
from tasks.instruct.warm_endpoint import warm_endpoint
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.runtime.progress_line import bar
from tasks.runtime.stage_clock import StageClock, human_seconds, record_stage_time
from tasks.store.read import open_table
from tasks.synth.datasets import DATASETS, SynthSummary, synthesize_datasets
from tasks.synth.demo import break_two_inputs


@task(name="synthesise-datasets")
def synth_task(out: Path, objects_per_category: dict[str, int], grasps_per_part: dict[str, int], seed: int,
               categories: list[str] | None) -> SynthSummary:
    started = time.perf_counter()

    def progress(dataset: str, done: int, total: int) -> None:
        # about ten lines for the demo's largest set, one for the small ones
        if done == total or done % max(1, total // 5) == 0:
            print(f"synthesise {dataset}: {done}/{total} objects {bar(done, total)} after "
                  f"{human_seconds(time.perf_counter() - started)}")

    return synthesize_datasets(out, objects_per_category, seed, grasps_per_part, categories=categories,
                               progress=progress)


def clear_synthetic_datasets(datasets: Path) -> None:
    """A second demo on the same data root writes its synthetic datasets afresh: the folder is removed when the
    synthesiser wrote it (it holds the synthetic ground truth); any other non-empty folder is refused, by name."""
    if not datasets.exists() or not any(datasets.iterdir()):
        return
    if not truth_dir(datasets).is_dir():
        raise ValueError(f"data_root: {datasets} holds datasets the demo did not write; give the demo another "
                         f"--data-root (it writes synthetic datasets there)")
    shutil.rmtree(datasets)


@task(name="break-two-inputs")
def break_task(datasets_root: Path) -> list[str]:
    return break_two_inputs(datasets_root)


@task(name="render-first-grasps")
def render_task(layout: DataRoot, mano_root: Path, out: Path) -> list[Path]:
    faces = load_mano_pickle(mano_file(mano_root, "right")).f
    paths = []
    for fmt in DATASETS:
        row = next(open_table(layout.table(fmt), Sample).iter_rows(), None)
        if row is None:  # every input of this dataset was rejected: nothing to draw
            continue
        paths.append(render_pair(out / f"{fmt}.png", row.object_vertices, row.object_faces, row.hand_verts,
                                 hand_faces_for(row.hand_faces, faces),
                                 object_vertex_labels=row.object_vertex_labels,
                                 title=f"{fmt}: {row.object_category} {row.affordance or row.intent or ''}"))
    return paths


@flow(name="demo", log_prints=True)
def demo(data_root: str = "afford-data", objects_per_category: int = 1, labelled_objects_per_category: int = 4,
         labelled_grasps_per_part: int = 3, seed: int = 0, num_points: int = 2048,
         categories: list[str] | None = None, epochs: int = TrainConfig.epochs,
         simulated_error_rate: float = 0.02, max_cycles: int = 5, queue_size: int = 100, review_overlap: float = 0.0,
         instructions: Literal["auto", "openai", "template"] = "auto",
         affordance_steps: int = MapTrainConfig.steps,
         affordance_preset: AffordancePreset = AFFORDANCE_PRESETS.default,
         classifier_preset: ClassifierPreset = CLASSIFIER_PRESETS.default, grasp: bool = True,
         command: str = "demo flow") -> str:
    """Synthesise AffordPose, OakInk-Shape, GRAB and HO-3D in their own formats (two files broken on purpose), then
    run the whole `annotate` flow on them and draw one grasp of each: ingest all four into sample tables,
    self-train the affordance classifier:
    train on AffordPose, pseudo-label the other three, review each cycle's queue through the web app with a
    simulated reviewer (answers from the synthetic ground truth, `simulated_error_rate` of them wrong), merge,
    and repeat until every target sample is labelled. AffordPose is larger (`labelled_objects_per_category` objects,
    `labelled_grasps_per_part` grasps per part) because the classifier learns from it. `categories`: a subset of
    the 13 object categories (default: all). Last, one instruction per labelled grasp. `instructions`:
    "auto" (default: AFFORD_LLM_BASE_URL when set, else the embedded SmolLM2 endpoint, started and stopped here,
    with 16 requests in flight; 1-2 requests per (object class, affordance) key, about 30 keys with the default
    sizes, each generated once and cached), "openai" (the configured endpoint), or "template" (no model).
    Then the affordance-map model (`affordance_preset`): trained `affordance_steps` steps on AffordPose's part
    labels, evaluated on held-out objects, and run on every labelled target sample with its instruction.
    `grasp`: then train the grasp generator (preset `tiny`) on the annotated table and evaluate it (Table 9 and the
    grasp grid, `<data_root>/grasp/demo/`): the path the annotations exist to feed, run end to end.
    `command`: what started the run, for the report header (`afford report DATA_ROOT` renders the figures)."""
    layout = DataRoot(data_root)
    root = layout.path
    print(_where_to_watch(prefect_api_url()))
    clear_synthetic_datasets(layout.datasets)
    labelled = labelled_format()
    objects = {d: objects_per_category for d in DATASETS} | {labelled: labelled_objects_per_category}
    # The embedded LLM (converted once, then served) starts now, beside synthesis, not when instructions begin.
    with warm_endpoint(root, AffordSettings(data_root=str(root)), instructions):
        started = time.perf_counter()
        print("stage synthesise ...")
        synth = synth_task(layout.datasets, objects, {labelled: labelled_grasps_per_part}, seed, categories)
        broken = break_task(synth.root)
        synth_seconds = time.perf_counter() - started
        print(f"stage synthesise done in {human_seconds(synth_seconds)}")
        # The demo's reviewer is simulated: its review store starts afresh with each demo run (a kept store would
        # hold the last run's queues, which a run with other sizes or seed would contradict).
        shutil.rmtree(layout.review, ignore_errors=True)
        report = annotate(datasets_root=str(synth.root), mano_root=str(synth.mano_root), data_root=str(root),
                          num_points=num_points, seed=seed, reviewer="simulated", truth_root=str(synth.root),
                          simulated_error_rate=simulated_error_rate, epochs=epochs, max_cycles=max_cycles,
                          queue_size=queue_size, review_overlap=review_overlap, instructions=instructions,
                          affordance_steps=affordance_steps, affordance_preset=affordance_preset,
                          classifier_preset=classifier_preset, command=command)
    # annotate starts its report afresh: the synthesis time goes in after it
    record_stage_time(layout.reports, "synthesise", synth_seconds)
    clock = StageClock(layout.reports)
    with clock.stage("render"):
        renders = render_task(layout, synth.mano_root, layout.renders)
    grasp_where = ""
    if grasp:
        report, grasp_where = _grasp_generator(layout, str(synth.mano_root), seed, clock, report)
    where = "\n".join([f"Inputs broken on purpose: {', '.join(f'`{b}`' for b in broken)}.",
                       f"Datasets: `{synth.root.absolute()}` (MANO model: `{synth.mano_root.absolute()}`)",
                       "Pictures: " + ", ".join(f"`{p.absolute()}`" for p in renders)] + ([grasp_where] if grasp_where
                                                                                           else []))
    markdown = f"{report}\n\n## Where\n\n{where}"
    create_markdown_artifact(markdown=markdown, key="demo-tables", description="Tables written by the demo")
    return markdown


def _where_to_watch(api_url: str) -> str:
    """Where a person can follow the run: the UI of the configured Prefect server, or what to do for one (a plain
    run talks to a temporary API server, which serves no UI)."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return f"Prefect UI: {api_url.rstrip('/').removesuffix('/api')}/runs (this run, its stages and artifacts)"
    return (f"Prefect: a temporary API server for this run only ({api_url}), without the UI. To follow a run in "
            f"the UI, start `afford server up`, export the PREFECT_API_URL it prints, and run the demo again.")


def _grasp_generator(layout: DataRoot, mano_root: str, seed: int, clock: StageClock, report: str) -> tuple[str, str]:
    """Train the tiny grasp generator on the annotated table, then evaluate it: (report with both summaries, a
    line saying where the grasp grid and the evaluation report are). A table without usable grasps skips it."""
    out = layout.grasp / "demo"
    shutil.rmtree(out, ignore_errors=True)  # the demo's own folder: a kept one would resume the last training
    table = str(layout.annotated)
    try:
        with clock.stage("train_grasp"):
            trained = train_grasp(annotated_table=table, out_dir=str(out / "train"), preset="tiny", seed=seed,
                                  mano_root=mano_root)
        model = out / "train" / "grasp_model.pt"
        with clock.stage("evaluate_grasp"):
            evaluated = evaluate_grasp(annotated_table=table, out_dir=str(out / "evaluation"), seed=seed,
                                       checkpoints={GRASP_PRESETS["tiny"].model.dam.heads: str(model)})
    except ValueError as exc:  # e.g. a reduced demo whose annotated table has no grasp with MANO parameters
        return f"{report}\n\n## Grasp generator skipped\n\n{exc}", ""
    evaluation = (out / "evaluation").absolute()
    where = (f"Grasp generator: grasp grid `{evaluation / 'grasps.png'}`, evaluation report "
             f"`{evaluation / 'report.md'}`, model `{model.absolute()}`")
    return f"{report}\n\n{trained}\n\n{evaluated}", where
