"""The demo flow: synthesise the four datasets, run the whole annotate flow on them, report where everything went."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows.annotate import annotate
from models.mano_pickle import load_mano_pickle, mano_file
from models.preset_choices import AFFORDANCE_PRESETS, CLASSIFIER_PRESETS, AffordancePreset, ClassifierPreset
from ops.render import render_pair
from review.truth import truth_dir
from schemas.data_root import DataRoot
from schemas.hand import hand_faces_for
from schemas.rows import Sample
from tasks.affordance.config import MapTrainConfig
from tasks.ingest.formats import labelled_format
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.store.read import open_table
from tasks.synth.datasets import DATASETS, SynthSummary, synthesize_datasets
from tasks.synth.demo import break_two_inputs


@task(name="synthesise-datasets")
def synth_task(out: Path, objects_per_category: dict[str, int], grasps_per_part: dict[str, int], seed: int,
               categories: list[str] | None) -> SynthSummary:
    return synthesize_datasets(out, objects_per_category, seed, grasps_per_part, categories=categories)


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
         classifier_preset: ClassifierPreset = CLASSIFIER_PRESETS.default, command: str = "demo flow") -> str:
    """Synthesise AffordPose, OakInk-Shape, GRAB and HO-3D in their own formats (two files broken on purpose), then
    run the whole `annotate` flow on them and draw one grasp of each: ingest all four into sample tables,
    self-train the affordance classifier:
    train on AffordPose, pseudo-label the other three, review each cycle's queue through the web app with a
    simulated reviewer (answers from the synthetic ground truth, `simulated_error_rate` of them wrong), merge,
    and repeat until every target sample is labelled. AffordPose is larger (`labelled_objects_per_category` objects,
    `labelled_grasps_per_part` grasps per part) because the classifier learns from it. `categories`: a subset of
    the 13 object categories (default: all). Last, one instruction per labelled grasp. `instructions`:
    "auto" (default: AFFORD_LLM_BASE_URL when set, else the embedded SmolLM2 endpoint, started and stopped here;
    1-2 requests of about 5 s each per (object class, affordance) key on 2 CPU cores, about 30 keys with the
    default sizes, each generated once and cached), "openai" (the configured endpoint), or "template" (no model).
    Then the affordance-map model (`affordance_preset`): trained `affordance_steps` steps on AffordPose's part
    labels, evaluated on held-out objects, and run on every labelled target sample with its instruction.
    `command`: what started the run, for the report header (`afford report DATA_ROOT` renders the figures)."""
    layout = DataRoot(data_root)
    root = layout.path
    clear_synthetic_datasets(layout.datasets)
    labelled = labelled_format()
    objects = {d: objects_per_category for d in DATASETS} | {labelled: labelled_objects_per_category}
    synth = synth_task(layout.datasets, objects, {labelled: labelled_grasps_per_part}, seed, categories)
    broken = break_task(synth.root)
    # The demo's reviewer is simulated: its review store starts afresh with each demo run (a kept store would hold
    # the last run's queues, which a run with other sizes or seed would contradict).
    shutil.rmtree(layout.review, ignore_errors=True)
    report = annotate(datasets_root=str(synth.root), mano_root=str(synth.mano_root), data_root=str(root),
                      num_points=num_points, seed=seed, reviewer="simulated", truth_root=str(synth.root),
                      simulated_error_rate=simulated_error_rate, epochs=epochs, max_cycles=max_cycles,
                      queue_size=queue_size, review_overlap=review_overlap, instructions=instructions,
                      affordance_steps=affordance_steps, affordance_preset=affordance_preset,
                      classifier_preset=classifier_preset, command=command)
    renders = render_task(layout, synth.mano_root, layout.renders)
    where = "\n".join([f"Inputs broken on purpose: {', '.join(f'`{b}`' for b in broken)}.",
                       f"Datasets: `{synth.root.absolute()}` (MANO model: `{synth.mano_root.absolute()}`)",
                       "Pictures: " + ", ".join(f"`{p.absolute()}`" for p in renders)])
    markdown = f"{report}\n\n## Where\n\n{where}"
    create_markdown_artifact(markdown=markdown, key="demo-tables", description="Tables written by the demo")
    return markdown
