"""The evaluate_grasp flow: trained grasp generators (one per DAM head count) -> Table 9 + Table 5 report.

Objects come from the annotated table (test split when present) with meshes from the samples tables; each
checkpoint generates K grasps per object; every metric runs over them (penetration, contact and simulation in
a process pool); the one-pass sampler and the test-time-optimisation baseline are timed. Outputs under
`out_dir`: report.md, metrics.json, grasps.png (and grasps_ground_truth.png, the same objects' own grasps, with
the ground_truth baseline); the report is also a Prefect markdown artifact.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from schemas.annotated import AnnotatedRow
from tasks.grasp.data import sentence_embedder
from tasks.grasp.evaluation.baselines import BASELINES, baseline_grasps, grasp_pool
from tasks.grasp.evaluation.evaluate import EvalReport, GeneratedGrasp, evaluate_grasps, grid_items
from tasks.grasp.evaluation.inputs import (
    EvalObjects,
    check_heads,
    generate_for_objects,
    sampler_inputs,
    select_objects,
)
from tasks.grasp.evaluation.report import SpeedRow, render_grasp_grid
from tasks.grasp.evaluation.speed import speed_rows
from tasks.grasp.evaluation.summary import (
    check_evaluation_settings,
    default_classifier,
    grid_picks,
    metrics_dict,
    report_markdown,
)
from tasks.grasp.sample import Sampling, load_grasp_generator
from tasks.pseudo_label.classifier_model import TrainResult, load_trained
from tasks.store.read import open_table


@task(name="select-eval-objects", cache_policy=NONE)
def objects_task(annotated_table: Path, samples_root: Path, per_dataset: int, split: str = "auto",
                 by_affordance: bool = False) -> EvalObjects:
    return select_objects(annotated_table, samples_root, per_dataset, split, by_affordance)


@task(name="generate-grasps", cache_policy=NONE)
def generate_task(checkpoint: Path, heads: int, objects: EvalObjects, k: int, seed: int, device: str,
                  tto_steps: int = 0, sampling: Sampling = Sampling()) -> tuple[list[GeneratedGrasp], float]:
    generator = load_grasp_generator(checkpoint, device)
    check_heads({heads: str(checkpoint)}, {heads: generator})
    start = time.perf_counter()
    grasps = generate_for_objects(generator, objects.objects, k, sentence_embedder(), seed, tto_steps=tto_steps,
                                  guidance=sampling.guidance, ddim_steps=sampling.ddim_steps)
    return grasps, time.perf_counter() - start


@task(name="baseline-grasps", cache_policy=NONE)
def baseline_task(annotated_table: Path, checkpoint: Path, objects: EvalObjects, method: str, k: int, seed: int,
                  device: str) -> tuple[list[GeneratedGrasp], dict[str, str]]:
    mano = load_grasp_generator(checkpoint, device).models.mano  # the hand the model's grasps are built with
    pool = grasp_pool(open_table(annotated_table, AnnotatedRow).iter_rows())
    return baseline_grasps(objects.objects, pool, method, mano, k, seed)


@task(name="evaluate-grasps", cache_policy=NONE)
def evaluate_task(grasps: list[GeneratedGrasp], classifier: TrainResult | None, workers: int) -> EvalReport:
    return evaluate_grasps(grasps, classifier, workers=workers)


@task(name="time-grasp-inference", cache_policy=NONE)
def speed_task(checkpoint: Path, objects: EvalObjects, batch_size: int, tto_steps: int, seed: int,
               device: str, sampling: Sampling = Sampling()) -> list[SpeedRow]:
    generator = load_grasp_generator(checkpoint, device)
    obj = objects.objects[0]
    points, values = sampler_inputs(obj, generator.train_config.num_points, seed)
    text = np.asarray(sentence_embedder()([obj.instruction]), np.float32)[0]
    return speed_rows(generator, points, values, text, batch_size=batch_size, tto_steps=tto_steps, seed=seed,
                      guidance=sampling.guidance, ddim_steps=sampling.ddim_steps)


@task(name="render-grasp-grid", cache_policy=NONE)
def grid_task(grasps: list[GeneratedGrasp], report: EvalReport, out_png: Path, objects: int, per_object: int,
              title: str, method: str = "model", only: set[tuple[str, str]] | None = None) -> Path:
    chosen = grid_picks(grasps, objects, method, only)
    named = [replace(grasps[i], object_id=f"{grasps[i].dataset}/{grasps[i].object_id}") for i in chosen]
    items = [replace(item, caption=f"{item.object_id}: {item.caption}")
             for item in grid_items(named, [report.scores[i] for i in chosen])]
    return render_grasp_grid(out_png, items, per_object=per_object, title=title)


@flow(name="evaluate_grasp", log_prints=True)
def evaluate_grasp(annotated_table: str, checkpoints: dict[int, str], out_dir: str, samples_root: str | None = None,
                   objects_per_dataset: int = 4, grasps_per_object: int = 4, classifier: str | None = None,
                   workers: int = 0, seed: int = 0, speed_batch: int = 8, tto_steps: int = 100,
                   grid_objects: int = 4, device: str = "cpu", baselines: list[str] | None = None,
                   split: str = "auto", by_affordance: bool = False, guidance: float | None = None,
                   ddim_steps: int | None = None) -> str:
    """Evaluate one grasp generator per DAM head count ({heads: checkpoint}) on `annotated_table`'s objects;
    write report.md, metrics.json and grasps.png under `out_dir` and return the report.
    baselines: also evaluate, in the same Table 9, `tta` (the largest head count's grasps refined by `tto_steps`
    Adam steps of test-time optimisation) and grasps no model made (`retrieval`: training grasps of the same class
    and affordance placed on each object; `ground_truth`: the object's own grasps), `grasps_per_object` each; an
    object a baseline has no grasp for is left out of that baseline's rows, and the report says why.
    split: "test" (held-out objects only; a table without test rows is refused), "val" (the same for val: compare
    settings there, never on test), "all", or "auto" (test when the table has test rows). by_affordance: each
    object once per affordance its rows ask for. guidance / ddim_steps: the sampler's classifier-free guidance
    scale and DDIM steps for every generated grasp (default: each checkpoint's training config's)."""
    for method in baselines or []:
        if method not in BASELINES:
            raise ValueError(f"baselines: {method!r} is not one of {', '.join(BASELINES)}")
    check_evaluation_settings(checkpoints, objects_per_dataset, grasps_per_object, speed_batch, tto_steps, grid_objects,
                              guidance, ddim_steps)
    sampling = Sampling(guidance, ddim_steps)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classifier_path = Path(classifier) if classifier else default_classifier(annotated_table)
    acc_model = load_trained(classifier_path, device) if classifier_path else None
    objects = objects_task(Path(annotated_table), Path(samples_root or Path(annotated_table).parent),
                           objects_per_dataset, split, by_affordance)
    print(objects.summary())
    grasps: list[GeneratedGrasp] = []
    generation_s = 0.0
    for heads in sorted(checkpoints):
        made, seconds = generate_task(Path(checkpoints[heads]), heads, objects, grasps_per_object, seed, device,
                                      sampling=sampling)
        grasps += made
        generation_s += seconds
    left_out: dict[str, dict[str, str]] = {}
    top = max(checkpoints)
    for method in baselines or []:
        if method == "tta":  # the largest head count's grasps, refined as Table 5 times it
            made, _ = generate_task(Path(checkpoints[top]), top, objects, grasps_per_object, seed, device, tto_steps,
                                    sampling)
            left_out[method] = {}
        else:
            made, left_out[method] = baseline_task(Path(annotated_table), Path(checkpoints[top]), objects, method,
                                                   grasps_per_object, seed, device)
        grasps += made
        for obj, why in left_out[method].items():
            print(f"{method}: {obj} left out: {why}")
    report = evaluate_task(grasps, acc_model, workers)
    speed = speed_task(Path(checkpoints[max(checkpoints)]), objects, speed_batch, tto_steps, seed, device, sampling)
    png = grid_task(grasps, report, out / "grasps.png", grid_objects, 3,
                    f"{max(checkpoints)} DAM heads: requested affordance -> predicted, simulation displacement")
    metrics = metrics_dict(report, speed, objects, generation_s, classifier_path, grasps)
    metrics["baselines_left_out"] = left_out
    metrics["sampling"] = sampling.described(load_grasp_generator(Path(checkpoints[top]), "cpu").train_config)
    print(f"sampling: DDIM {metrics['sampling']['ddim_steps']} steps, guidance {metrics['sampling']['guidance']}")
    shown = {(grasps[i].dataset, grasps[i].object_id) for i in grid_picks(grasps, grid_objects)}
    if "ground_truth" in (baselines or []) and grid_picks(grasps, grid_objects, "ground_truth", shown):
        truth_png = grid_task(grasps, report, out / "grasps_ground_truth.png", grid_objects, 3,
                              "ground truth of the same objects: requested affordance -> predicted, displacement",
                              "ground_truth", shown)
        metrics["ground_truth_grid"] = str(truth_png.absolute())
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    markdown = report_markdown(report, speed, objects, metrics, classifier_path, png)
    (out / "report.md").write_text(markdown + "\n")
    create_markdown_artifact(markdown=markdown, key="grasp-evaluation", description="Grasp generator evaluation")
    return markdown


