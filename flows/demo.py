"""The demo flow: synthesise the four datasets, ingest them, and report where every table went."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows.affordance import affordance
from flows.instruct import instruct
from flows.self_training import self_training
from models.mano_pickle import load_mano_pickle, mano_file
from schemas.rows import Reject, Sample
from tasks.affordance_data import NoMapItems
from tasks.affordance_train import MapTrainConfig
from tasks.classifier_train import TrainConfig
from tasks.demo import break_two_inputs, check_counts
from tasks.ingest import FORMATS, IngestCounts, ingest
from tasks.pseudo_label_stage import NoLabelledSamples
from tasks.render import render_pair
from tasks.synth_datasets import DATASETS, SynthSummary, synthesize_datasets
from tasks.table_inspect import human_bytes, summarise
from tasks.table_read import open_table


@task(name="synthesise-datasets")
def synth_task(out: Path, objects_per_category: dict[str, int], grasps_per_part: dict[str, int], seed: int,
               categories: list[str] | None) -> SynthSummary:
    return synthesize_datasets(out, objects_per_category, seed, grasps_per_part, categories=categories)


@task(name="break-two-inputs")
def break_task(datasets_root: Path) -> list[str]:
    return break_two_inputs(datasets_root)


@task(name="ingest")
def ingest_task(fmt: str, root: Path, table: Path, mano_root: Path, num_points: int, seed: int) -> IngestCounts:
    return ingest(fmt, root, table, mano_root, num_points=num_points, seed=seed)


@task(name="render-first-grasps")
def render_task(tables: Path, mano_root: Path, out: Path) -> list[Path]:
    faces = load_mano_pickle(mano_file(mano_root, "right")).f
    paths = []
    for fmt in FORMATS:
        row = next(open_table(tables / fmt, Sample).iter_rows(), None)
        if row is None:  # every input of this dataset was rejected: nothing to draw
            continue
        paths.append(render_pair(out / f"{fmt}.png", row.object_vertices, row.object_faces, row.hand_verts, faces,
                                 object_vertex_labels=row.object_vertex_labels,
                                 title=f"{fmt}: {row.object_category} {row.affordance or row.intent or ''}"))
    return paths


@task(name="report-tables")
def report_task(counts: list[IngestCounts], synth: SynthSummary, renders: list[Path]) -> str:
    check_counts(counts)
    lines = ["| dataset | inputs | rows | rejects | shards | size | table |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for c in counts:
        s = summarise(open_table(c.table, Sample))
        lines.append(f"| {c.dataset} | {c.inputs} | {c.rows} | {c.rejects} | {s.num_shards} | {human_bytes(s.bytes)} "
                     f"| `{c.table.absolute()}` |")
    total = sum(c.inputs for c in counts)
    lines.append(f"\n{total} inputs = {sum(c.rows for c in counts)} rows + {sum(c.rejects for c in counts)} rejects.")
    rejects = list(open_table(counts[0].rejects_table, Reject).iter_rows())
    if rejects:
        lines.append(f"\nRejects (`{counts[0].rejects_table.absolute()}`; these inputs were broken on purpose):\n")
        lines += [f"- {r.dataset}: {r.reason}" for r in rejects]  # the reason names the file
    lines.append(f"\nDatasets: `{synth.root.absolute()}` (MANO model: `{synth.mano_root.absolute()}`)")
    lines.append("\nPictures: " + ", ".join(f"`{p.absolute()}`" for p in renders))
    report = "\n".join(lines)
    create_markdown_artifact(markdown=report, key="demo-tables", description="Tables written by the demo")
    return report


@flow(name="demo", log_prints=True)
def demo(data_root: str = "afford-data", objects_per_category: int = 1, labelled_objects_per_category: int = 4,
         labelled_grasps_per_part: int = 3, seed: int = 0, num_points: int = 2048,
         categories: list[str] | None = None, epochs: int = TrainConfig.epochs,
         simulated_error_rate: float = 0.02, max_cycles: int = 5, queue_size: int = 100,
         instructions: Literal["auto", "openai", "template"] = "auto",
         affordance_steps: int = MapTrainConfig.steps,
         affordance_preset: Literal["cpu", "paper", "tiny"] = "cpu") -> str:
    """Synthesise AffordPose, OakInk-Shape, GRAB and HO-3D in their own formats (two files broken on purpose),
    ingest all four into sample tables, draw one grasp of each, then self-train the affordance classifier:
    train on AffordPose, pseudo-label the other three, review each cycle's queue through the web app with a
    simulated reviewer (answers from the synthetic ground truth, `simulated_error_rate` of them wrong), merge,
    and repeat until every target sample is labelled. AffordPose is larger (`labelled_objects_per_category` objects,
    `labelled_grasps_per_part` grasps per part) because the classifier learns from it. `categories`: a subset of
    the 13 object categories (default: all). Last, one instruction per labelled grasp. `instructions`:
    "auto" (default: AFFORD_LLM_BASE_URL when set, else the embedded SmolLM2 endpoint, started and stopped here;
    1-2 requests of about 5 s each per (object class, affordance) key on 2 CPU cores, about 30 keys with the
    default sizes, each generated once and cached), "openai" (the configured endpoint), or "template" (no model).
    Then the affordance-map model (`affordance_preset`): trained `affordance_steps` steps on AffordPose's part
    labels, evaluated on held-out objects, and run on every labelled target sample with its instruction."""
    root = Path(data_root)
    objects = {d: objects_per_category for d in DATASETS} | {"affordpose": labelled_objects_per_category}
    synth = synth_task(root / "datasets", objects, {"affordpose": labelled_grasps_per_part}, seed, categories)
    break_task(synth.root)
    counts = [ingest_task(fmt, synth.root / fmt, root / "tables" / fmt, synth.mano_root, num_points, seed)
              for fmt in FORMATS]
    renders = render_task(root / "tables", synth.mano_root, root / "renders")
    tables = report_task(counts, synth, renders)
    # The demo's reviewer is simulated: its review store starts afresh with each demo run (a kept store would hold
    # the last run's queues, which a run with other sizes or seed would contradict).
    shutil.rmtree(root / "review", ignore_errors=True)
    try:
        labels = self_training(data_root=str(root), labelled_table=str(root / "tables" / "affordpose"),
                               target_tables=[str(root / "tables" / fmt) for fmt in FORMATS if fmt != "affordpose"],
                               mano_root=str(synth.mano_root), epochs=epochs, seed=seed, reviewer="simulated",
                               simulated_error_rate=simulated_error_rate, truth_root=str(synth.root),
                               max_cycles=max_cycles, queue_size=queue_size)
    except NoLabelledSamples as exc:  # e.g. a one-category demo whose only AffordPose file was broken on purpose
        labels = f"## Self-training skipped\n\n{exc}"
    tables_root = root / "tables"
    labels_table = tables_root / "affordance_labels"
    words = instruct(tables=[str(tables_root / fmt) for fmt in FORMATS], out_table=str(tables_root / "instructions"),
                     labels_table=str(labels_table) if (labels_table / "manifest.json").is_file() else None,
                     generator=instructions)
    try:
        maps = affordance(labelled_table=str(tables_root / "affordpose"),
                          target_tables=[str(tables_root / fmt) for fmt in FORMATS if fmt != "affordpose"],
                          out_dir=str(root / "affordance"), instructions_table=str(tables_root / "instructions"),
                          preset=affordance_preset, steps=affordance_steps, seed=seed)
    except NoMapItems as exc:  # as above: no AffordPose row left with part labels to learn from
        maps = f"## Affordance maps skipped\n\n{exc}"
    return "\n\n".join([tables, labels, words, maps])
