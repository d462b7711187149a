"""The evaluate_grasp flow: trained grasp generators (one per DAM head count) -> Table 9 + Table 5 report.

Objects come from the annotated table (test split when present) with meshes from the samples tables; each
checkpoint generates K grasps per object; every metric runs over them (penetration, contact and simulation in
a process pool); the one-pass sampler and the test-time-optimisation baseline are timed. Outputs under
`out_dir`: report.md, metrics.json, grasps.png; the report is also a Prefect markdown artifact.
"""

from __future__ import annotations

import itertools
import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from models.point_bert_checkpoint import checkpoint_sha256
from schemas.data_root import DataRoot
from tasks.grasp.data import sentence_embedder
from tasks.grasp.evaluation.evaluate import EvalReport, GeneratedGrasp, evaluate_grasps, grid_items
from tasks.grasp.evaluation.inputs import (
    EvalObjects,
    check_heads,
    generate_for_objects,
    sampler_inputs,
    select_objects,
)
from tasks.grasp.evaluation.report import SpeedRow, render_grasp_grid, render_table5
from tasks.grasp.evaluation.speed import speed_rows
from tasks.grasp.sample import load_grasp_generator
from tasks.ingest.delta import load_classifier_state
from tasks.pseudo_label.classifier_model import TrainResult, load_trained


def default_classifier(annotated_table: str | Path) -> Path | None:
    """The last self-training classifier of the data root holding `annotated_table` (<root>/tables/annotated),
    from <root>/current/classifier.json; None when there is none. ValueError when the checkpoint there is
    not the one the state recorded (sha256), as the reannotate flow checks."""
    state_file = DataRoot.of_table(annotated_table).current("classifier")
    if not state_file.is_file():
        return None
    state = load_classifier_state(state_file)
    if checkpoint_sha256(state.checkpoint) != state.checkpoint_sha256:
        raise ValueError(f"classifier {state.checkpoint}: not the checkpoint {state_file} recorded (sha256 differs)")
    return Path(state.checkpoint)


@task(name="select-eval-objects", cache_policy=NONE)
def objects_task(annotated_table: Path, samples_root: Path, per_dataset: int) -> EvalObjects:
    return select_objects(annotated_table, samples_root, per_dataset)


@task(name="generate-grasps", cache_policy=NONE)
def generate_task(checkpoint: Path, heads: int, objects: EvalObjects, k: int, seed: int,
                  device: str) -> tuple[list[GeneratedGrasp], float]:
    generator = load_grasp_generator(checkpoint, device)
    check_heads({heads: str(checkpoint)}, {heads: generator})
    start = time.perf_counter()
    grasps = generate_for_objects(generator, objects.objects, k, sentence_embedder(), seed)
    return grasps, time.perf_counter() - start


@task(name="evaluate-grasps", cache_policy=NONE)
def evaluate_task(grasps: list[GeneratedGrasp], classifier: TrainResult | None, workers: int) -> EvalReport:
    return evaluate_grasps(grasps, classifier, workers=workers)


@task(name="time-grasp-inference", cache_policy=NONE)
def speed_task(checkpoint: Path, objects: EvalObjects, batch_size: int, tto_steps: int, seed: int,
               device: str) -> list[SpeedRow]:
    generator = load_grasp_generator(checkpoint, device)
    obj = objects.objects[0]
    points, values = sampler_inputs(obj, generator.train_config.num_points, seed)
    text = np.asarray(sentence_embedder()([obj.instruction]), np.float32)[0]
    return speed_rows(generator, points, values, text, batch_size=batch_size, tto_steps=tto_steps, seed=seed)


@task(name="render-grasp-grid", cache_policy=NONE)
def grid_task(grasps: list[GeneratedGrasp], report: EvalReport, out_png: Path, objects: int, per_object: int,
              title: str) -> Path:
    chosen = grid_picks(grasps, objects)
    named = [replace(grasps[i], object_id=f"{grasps[i].dataset}/{grasps[i].object_id}") for i in chosen]
    items = [replace(item, caption=f"{item.object_id}: {item.caption}")
             for item in grid_items(named, [report.scores[i] for i in chosen])]
    return render_grasp_grid(out_png, items, per_object=per_object, title=title)


def grid_picks(grasps: list[GeneratedGrasp], objects: int) -> list[int]:
    """Indices of the grasps to draw: the largest head count's, of `objects` objects taken from the datasets in
    turn (object ids repeat across datasets, so an object is its (dataset, object_id))."""
    top = max(g.dam_heads for g in grasps)
    picked = [i for i, g in enumerate(grasps) if g.dam_heads == top]
    per_dataset: dict[str, list[tuple[str, str]]] = {}
    for key in dict.fromkeys((grasps[i].dataset, grasps[i].object_id) for i in picked):
        per_dataset.setdefault(key[0], []).append(key)
    turns = [key for row in itertools.zip_longest(*per_dataset.values()) for key in row if key is not None]
    keep = set(turns[:objects])
    return [i for i in picked if (grasps[i].dataset, grasps[i].object_id) in keep]


@flow(name="evaluate_grasp", log_prints=True)
def evaluate_grasp(annotated_table: str, checkpoints: dict[int, str], out_dir: str, samples_root: str | None = None,
                   objects_per_dataset: int = 4, grasps_per_object: int = 4, classifier: str | None = None,
                   workers: int = 0, seed: int = 0, speed_batch: int = 8, tto_steps: int = 100,
                   grid_objects: int = 4, device: str = "cpu") -> str:
    """Evaluate one grasp generator per DAM head count ({heads: checkpoint}) on `annotated_table`'s objects;
    write report.md, metrics.json and grasps.png under `out_dir` and return the report."""
    _check(checkpoints, objects_per_dataset, grasps_per_object, speed_batch, tto_steps, grid_objects)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classifier_path = Path(classifier) if classifier else default_classifier(annotated_table)
    acc_model = load_trained(classifier_path, device) if classifier_path else None
    objects = objects_task(Path(annotated_table), Path(samples_root or Path(annotated_table).parent),
                           objects_per_dataset)
    print(objects.summary())
    grasps: list[GeneratedGrasp] = []
    generation_s = 0.0
    for heads in sorted(checkpoints):
        made, seconds = generate_task(Path(checkpoints[heads]), heads, objects, grasps_per_object, seed, device)
        grasps += made
        generation_s += seconds
    report = evaluate_task(grasps, acc_model, workers)
    speed = speed_task(Path(checkpoints[max(checkpoints)]), objects, speed_batch, tto_steps, seed, device)
    png = grid_task(grasps, report, out / "grasps.png", grid_objects, 3,
                    f"{max(checkpoints)} DAM heads: requested affordance -> predicted, simulation displacement")
    metrics = metrics_dict(report, speed, objects, generation_s, classifier_path)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    markdown = report_markdown(report, speed, objects, metrics, classifier_path, png)
    (out / "report.md").write_text(markdown + "\n")
    create_markdown_artifact(markdown=markdown, key="grasp-evaluation", description="Grasp generator evaluation")
    return markdown


def _check(checkpoints: dict[int, str], per_dataset: int, k: int, batch: int, tto_steps: int, grid: int) -> None:
    """ValueError naming the first bad parameter."""
    if not checkpoints:
        raise ValueError("checkpoints: give at least one {heads: checkpoint}")
    for heads, path in checkpoints.items():
        if heads not in (1, 2, 4):
            raise ValueError(f"checkpoints: heads {heads} is not 1, 2 or 4")
        if not Path(path).is_file():
            raise ValueError(f"checkpoints: {path} (heads {heads}): no such file")
    for name, value in (("objects_per_dataset", per_dataset), ("grasps_per_object", k), ("speed_batch", batch),
                        ("tto_steps", tto_steps), ("grid_objects", grid)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")


def _plain(value: object) -> object:
    """JSON value: None -> 'n/a' (never a made-up number), non-finite floats -> 'failed'."""
    if value is None:
        return "n/a"
    if isinstance(value, float) and not math.isfinite(value):
        return "failed"
    return value


def metrics_dict(report: EvalReport, speed: list[SpeedRow], objects: EvalObjects, generation_s: float,
                 classifier: Path | None) -> dict:
    """Everything the report shows, as plain JSON: one entry per Table 9 row, the speed rows, throughput."""
    total_s = generation_s + sum(report.seconds.values())
    return {
        "table9": [{k: _plain(v) for k, v in asdict(g).items()} for g in report.groups],
        "table5": [{k: _plain(v) for k, v in asdict(r).items()} for r in speed],
        "grasps": len(report.scores),
        "objects": {"split": objects.split, "evaluated": len(objects.objects), "candidates": objects.candidates,
                    "without_mesh": objects.without_mesh},
        "seconds": {"generation": round(generation_s, 3), **{k: round(v, 3) for k, v in report.seconds.items()}},
        "grasps_per_s_end_to_end": round(len(report.scores) / max(total_s, 1e-9), 3),
        "grasps_per_s_metrics": round(report.grasps_per_second, 3),
        "classifier": str(classifier) if classifier else "n/a",
    }


def report_markdown(report: EvalReport, speed: list[SpeedRow], objects: EvalObjects, metrics: dict,
                    classifier: Path | None, png: Path) -> str:
    acc = (f"ACC: affordance predicted by `{classifier}` vs the requested one." if classifier else
           "ACC: n/a (no classifier: none given and no current/classifier.json).")
    seconds = ", ".join(f"{k} {v:.1f} s" for k, v in metrics["seconds"].items())
    return "\n\n".join([
        "## Grasp generator evaluation",
        f"Objects: {objects.summary()}. {metrics['grasps']} grasps.",
        "### Table 9: metrics per dataset and DAM head count", report.markdown,
        "Penetration volume from 5 mm voxels; displacement after a short PyBullet drop (mean ± std over the "
        "simulations that ran); contact within 5 mm; entropy and cluster size from k-means (k = 20). " + acc,
        "### Table 5: inference speed (seconds per grasp)", render_table5(speed),
        f"Throughput: {metrics['grasps_per_s_end_to_end']:.2f} grasps/s end to end (generation + every metric, "
        f"simulation included); {metrics['grasps_per_s_metrics']:.2f} grasps/s for the metrics alone. "
        f"Stages: {seconds}.",
        f"Generated grasps: `{png.absolute()}`.",
    ])
