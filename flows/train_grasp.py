"""The train_grasp flow: annotated table -> grasp generator (hand AE -> latent diffusion -> DAM) -> preview.

Reads the annotated table's train rows with MANO parameters (AffordPose rows, which carry only a hand mesh, are
counted and skipped), trains the three stages on the GPU when there is one (bf16 autocast) or on the CPU, resumes
from `out_dir/checkpoints/last.pt` when it exists, and renders a few sampled grasps of one training object.
Outputs under `out_dir`: grasp_model.pt, checkpoints/last.pt, train_log.csv, loss_curves.png, samples.png,
summary.md. Multi-GPU training runs outside Prefect, under torchrun (docs/grasp/training.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NONE

from models.mano import ManoLayer
from tasks.grasp.config import PRESETS, GraspPresetName, GraspTrainConfig, preset_config
from tasks.grasp.data import GraspItems, load_grasp_items, mano_layer
from tasks.grasp.sample import GraspGenerator, load_grasp_generator, render_grasps, sample_grasps
from tasks.grasp.train import GraspTrainResult, train_grasp_model


@task(name="load-grasp-items", cache_policy=NONE)
def items_task(annotated_table: Path, mano: ManoLayer, num_points: int, seed: int) -> GraspItems:
    return load_grasp_items(annotated_table, mano, num_points=num_points, seed=seed)


@task(name="train-grasp-generator", cache_policy=NONE)
def train_task(items: GraspItems, mano: ManoLayer, config: GraspTrainConfig, out_dir: Path,
               mano_origin: str, init_from: str | None = None) -> GraspTrainResult:
    progress = create_progress_artifact(progress=0.0, key="grasp-training", description="Training steps")

    def report(record: dict[str, float]) -> None:
        print(f"step {int(record['step']):6d}/{config.total_steps} {record['stage']:<11} loss {record['loss']:.4f}")
        update_progress_artifact(progress, progress=100.0 * record["step"] / config.total_steps)

    return train_grasp_model(items, mano, config, out_dir, mano_origin=mano_origin, progress=report,
                             init_from=init_from)


@task(name="render-grasp-samples", cache_policy=NONE)
def preview_task(model_path: Path, items: GraspItems, out_png: Path, k: int, seed: int) -> Path:
    generator: GraspGenerator = load_grasp_generator(model_path, device="cpu")
    grasps = sample_grasps(generator, items.object_points[0], items.affordance_map[0],
                           items.text_embeddings[items.text_ids[0]], k, seed=seed)
    hull = _hull(items.object_points[0])
    return render_grasps(out_png, hull[0], hull[1], grasps.verts, generator.models.mano.th_faces.cpu().numpy(),
                         title=items.texts[items.text_ids[0]])


def _hull(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) of the convex hull of (N, 3) points."""
    import trimesh

    hull = trimesh.PointCloud(points).convex_hull  # the table stores points, not the mesh: draw their hull
    return hull.vertices, hull.faces


@flow(name="train_grasp", log_prints=True)
def train_grasp(annotated_table: str, out_dir: str, preset: GraspPresetName = PRESETS.default,
                steps: int | None = None, batch_size: int | None = None, dam_heads: int | None = None,
                device: str = "auto", seed: int = 0, mano_root: str | None = None, compile: bool = False,
                preview_grasps: int = 4, annotated_version: int | None = None, init_from: str | None = None) -> str:
    """Train the grasp generator on `annotated_table` (resuming a run in `out_dir`); return the summary.
    `init_from`: a checkpoint (checkpoints/last.pt of a run with the same preset and steps) whose autoencoder and
    diffusion model are kept, so only the DAM trains (e.g. the same generator with other DAM heads).
    `annotated_version`: the table version to train on (what an annotate run published, passed by prefect.yaml's
    trigger); a table that has moved on since is refused rather than trained on unawares."""
    if annotated_version is not None:
        check_version(Path(annotated_table), annotated_version)
    config = preset_config(preset, steps, batch_size=batch_size, dam_heads=dam_heads, device=device, seed=seed,
                           compile=compile or None)
    out = Path(out_dir)
    mano, origin = mano_layer(mano_root)
    items = items_task(Path(annotated_table), mano, config.num_points, seed)
    print(items.summary())
    if len(items) == 0:
        raise ValueError(f"annotated table {annotated_table}: no train row with MANO parameters "
                         f"({items.summary()})")
    result = train_task(items, mano, config, out, origin, init_from)
    preview = preview_task(result.model_path, items, out / "samples.png", preview_grasps, seed) \
        if preview_grasps > 0 else None
    markdown = _summary(config, items, result, preview)
    (out / "summary.md").write_text(markdown + "\n")
    create_markdown_artifact(markdown=markdown, key="grasp-training", description="Grasp generator training")
    return markdown


def check_version(table: Path, version: int) -> None:
    """ValueError naming the table when its current version is not `version`."""
    from tasks.store.read import read_manifest

    _, manifest = read_manifest(table)
    if manifest.version != version:
        raise ValueError(f"annotated_version {version}: {table} is at version {manifest.version} now (annotated "
                         f"again since); leave annotated_version empty to train on the current version")


def _summary(config: GraspTrainConfig, items: GraspItems, result: GraspTrainResult, preview: Path | None) -> str:
    final = {stage: next((r for r in reversed(result.history) if r["stage"] == stage), None)
             for stage in ("autoencoder", "diffusion", "dam")}
    rows = "\n".join(f"| {stage} | {int(r['step'])} | {r['loss']:.4f} |" for stage, r in final.items() if r)
    resumed = f"resumed from step {result.resumed_from}; " if result.resumed_from else ""
    parts = [
        "## Grasp generator training",
        f"Data: {items.summary()}.",
        f"Preset `{config.preset}`: {config.ae_steps} AE + {config.diffusion_steps} diffusion + {config.dam_steps} "
        f"DAM steps, batch {config.batch_size}; {resumed}{result.steps_done}/{result.total_steps} steps done; "
        f"{result.steps_per_s:.1f} steps/s in this run.",
        "| stage | last logged step | loss |\n| --- | --- | --- |\n" + rows,
        f"Model `{result.model_path.absolute()}`; resumable checkpoint `{result.checkpoint.absolute()}`; log "
        f"`{result.log_csv}`; loss curves `{result.loss_curve}`.",
    ]
    if preview:
        parts.append(f"Sampled grasps of one training object: `{preview.absolute()}`.")
    return "\n\n".join(parts)
