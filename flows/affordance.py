"""The affordance flow: train (or load) the affordance-map model -> evaluate -> infer onto the targets -> write.

Trains on the labelled table's per-point part labels (AffordPose), evaluates on objects held out of training
(overall, per object class, per action: IoU@0.5, aIoU, AUC, SIM, MAE), predicts a map for every target sample
that has an instruction, and draws one held-out object under three instructions, one of them wrong.
Outputs under `out_dir`: the checkpoint (affordance_net-<sha12>.pt), metrics.md / metrics.json, training.json,
figures/, chunks/ (the committed inference chunks, tasks/store/chunks.py); the table `maps_table` (default:
<tables>/affordance_maps next to the labelled table).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from prefect import flow, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NONE

from models.preset_choices import AFFORDANCE_PRESETS, AffordancePreset
from models.text_encoder import TextEncoder
from schemas.affordance_map import AffordanceMapRow
from schemas.data_root import DataRoot
from schemas.manifest import Lineage
from schemas.rows import Reject, Sample
from schemas.settings import AffordSettings
from tasks.affordance.config import MapTrainConfig
from tasks.affordance.data import MapItems, NoMapItems, instruction_texts, load_items, object_split
from tasks.affordance.evaluation import evaluate_maps
from tasks.affordance.inference import MapModel, TextBank, load_map_model
from tasks.affordance.map_chunks import STAGE as MAP_STAGE
from tasks.affordance.map_chunks import map_chunk, plan_map_chunks, target_instructions
from tasks.affordance.maps import STAGE_VERSION, evaluation_report, figure_for_object, write_json
from tasks.affordance.train import train_map_model
from tasks.report.figures import affordance_figures
from tasks.report.render import render_affordance
from tasks.report.run_files import write_stage
from tasks.runtime.chunked import ChunkRun, publish_chunks, read_outputs, run_chunks
from tasks.runtime.progress_line import bar, time_left
from tasks.store.chunks import ChunkStore
from tasks.store.write import TableWriter, write_table


@task(name="load-map-items", cache_policy=NONE)
def items_task(labelled_table: Path, rejects: list[Reject]) -> MapItems:
    def reject(row: Sample, reason: str) -> None:
        rejects.append(Reject(sample_id=row.sample_id, stage_version=STAGE_VERSION, stage="affordance",
                              source=str(labelled_table), reason=reason, field="object_point_labels",
                              dataset=row.dataset))
    return load_items(labelled_table, reject)


@task(name="train-affordance-model", cache_policy=NONE)
def train_task(items: MapItems, texts: dict, bank: TextBank, config: MapTrainConfig, out_dir: Path) -> MapModel:
    progress = create_progress_artifact(progress=0.0, key="affordance-training", description="Training steps")

    def report(record: dict[str, float]) -> None:
        step = int(record["step"])
        print(f"step {step:5d}/{config.steps} {bar(step, config.steps)} loss {record['loss']:.3f}  "
              f"{record['elapsed_s'] / step:.2f} s/step, {time_left(record['elapsed_s'], step, config.steps)}")
        update_progress_artifact(progress, progress=100.0 * step / config.steps)

    return train_map_model(items, texts, bank, config, out_dir, progress=report)


@task(name="map-chunk", cache_policy=NONE, retries=1, retry_delay_seconds=1)
def map_chunk_task(chunk, store_root: str, **kwargs) -> dict:
    """One chunk of target samples -> committed maps (tasks/affordance/map_chunks.py)."""
    return map_chunk(chunk, store_root, **kwargs)


def map_targets(model: MapModel, bank: TextBank, target_tables: list[str], instructions_table: str, table: Path,
                lineage: Lineage, device: str, shards_per_chunk: int | None, chunks_dir: Path
                ) -> tuple[ChunkRun, pa.Table | None]:
    """Map every target sample with an instruction, one task per chunk (committed under `chunks_dir`); publish
    the maps table once. Returns the run and the chunks' rejects (an Arrow table, or None)."""
    shards = shards_per_chunk or AffordSettings().chunk_shards
    chunks = plan_map_chunks(target_tables, instructions_table, model.checkpoint_sha256, bank.encoder_identity,
                             shards)
    store = ChunkStore(chunks_dir, MAP_STAGE)
    run = run_chunks(map_chunk_task, chunks, store, checkpoint=str(model.checkpoint),
                     checkpoint_sha256=model.checkpoint_sha256, bank=bank, instructions_table=str(instructions_table),
                     device=device)
    if sum(m["mapped"] for m in run.metas):
        publish_chunks(table, AffordanceMapRow, chunks, store, "rows", lineage)
    return run, read_outputs(chunks, store, "rejects")


@flow(name="affordance", log_prints=True)
def affordance(labelled_table: str, target_tables: list[str], out_dir: str, instructions_table: str | None = None,
               maps_table: str | None = None, checkpoint: str | None = None,
               preset: AffordancePreset = AFFORDANCE_PRESETS.default, steps: int = MapTrainConfig.steps,
               batch_size: int = MapTrainConfig.batch_size, lr: float = MapTrainConfig.lr,
               focal_alpha: float = MapTrainConfig.focal_alpha, focal_gamma: float = MapTrainConfig.focal_gamma,
               test_fraction: float = 0.25, seed: int = 0, device: str = "auto",
               current_record: str | None = None, reports_dir: str | None = None,
               shards_per_chunk: int | None = None) -> str:
    """Train (or load `checkpoint`), evaluate on held-out objects, infer maps for the targets, write the table.
    `instructions_table`: the instruct stage's output, whose texts train the model alongside the templates and
    are what each target sample's map is predicted for (without it, no inference). `current_record`: a JSON file
    (a data root's current/affordance.json) to record the model in, for re-annotation to load. `reports_dir`: where
    to write the stage's figures (a data root's reports/, as annotate does). `shards_per_chunk`: input shards per
    inference task (unset: AFFORD_CHUNK_SHARDS); the tasks run on the flow's task runner."""
    config = MapTrainConfig(preset=preset, steps=steps, batch_size=batch_size, lr=lr, focal_alpha=focal_alpha,
                            focal_gamma=focal_gamma, seed=seed, device=device)
    out, labelled = Path(out_dir), Path(labelled_table)
    table = Path(maps_table) if maps_table else DataRoot.beside(labelled, "affordance_maps")
    rejects: list[Reject] = []
    items = items_task(labelled, rejects)
    if len(items) == 0 and checkpoint is None:
        write_table(DataRoot.beside(labelled, "rejects"), rejects, Reject)
        raise NoMapItems(f"no training items: {labelled} has no sample with per-point part labels")
    split = object_split(items, test_fraction, seed)
    texts = instruction_texts(set(items.item_keys()), instructions_table)
    mapping = bool(instructions_table and target_tables)
    encoder = TextEncoder()
    bank = TextBank([t for group in texts.values() for t in group]
                    + (target_instructions(target_tables, instructions_table) if mapping else []), encoder)
    train, test = items.subset(split["train"]), items.subset(split["test"])
    print(f"{len(items)} items ({len(train)} train / {len(test)} test, by object); {len(bank.texts)} distinct "
          f"instructions")
    model = load_map_model(checkpoint, device) if checkpoint else train_task(train, texts, bank, config, out)
    evaluation = evaluate_maps(model.model, test, texts, bank)
    _, numbers = evaluation_report(evaluation)
    write_json(out / "metrics.json", numbers | {"checkpoint": str(model.checkpoint),
                                                "checkpoint_sha256": model.checkpoint_sha256})
    if current_record:
        write_json(Path(current_record), {"checkpoint": str(model.checkpoint),
                                          "checkpoint_sha256": model.checkpoint_sha256, "preset": config.preset})
    if model.history:  # trained here (a loaded checkpoint keeps the training.json of the run that made it)
        write_json(out / "training.json", {"config": config.__dict__, "history": model.history,
                                           "train_seconds": model.train_seconds})
    lineage = Lineage(stage="affordance", stage_version=STAGE_VERSION,
                      params={"checkpoint_sha256": model.checkpoint_sha256, "text_encoder": bank.encoder_identity},
                      seed=seed)
    mapped = unlabelled = 0
    seconds, chunk_rejects = 0.0, None
    if mapping:
        run, chunk_rejects = map_targets(model, bank, target_tables, instructions_table, table, lineage, device,
                                         shards_per_chunk, out / "chunks")
        mapped, unlabelled = (sum(m[k] for m in run.metas) for k in ("mapped", "unlabelled"))
        seconds = sum(m["predict_seconds"] for m in run.metas)
    with TableWriter(DataRoot.beside(labelled, "rejects"), Reject, lineage=lineage) as writer:
        writer.write(rejects)
        if chunk_rejects is not None:
            writer.write_arrow(chunk_rejects)
    n_rejects = len(rejects) + (chunk_rejects.num_rows if chunk_rejects is not None else 0)
    figure = figure_for_object(model.model, test if len(test) else train, texts,
                               lambda extra: TextBank(extra, encoder), out / "figures" / "maps_three_instructions.png",
                               held_out=len(test) > 0)
    figures = affordance_figures(numbers, len(train), len(test), bool(model.history), model.checkpoint_sha256, mapped,
                                 unlabelled, n_rejects)
    if reports_dir:
        write_stage(Path(reports_dir), "affordance", figures)
    markdown = "\n\n".join([render_affordance(figures), _where(model, seconds, mapped, table, figure)])
    (out / "metrics.md").write_text(markdown + "\n")
    create_markdown_artifact(markdown=markdown, key="affordance-maps", description="Affordance-map model report")
    create_table_artifact(table=[{"group": "OVERALL", **{k: v for k, v in numbers["overall"].items() if k != "counts"}}]
                          + [{"group": k, **{m: v for m, v in s.items() if m != "counts"}}
                             for k, s in numbers["per_action"].items()], key="affordance-metrics",
                          description="Affordance-map metrics per action on held-out objects")
    return markdown


def _where(model: MapModel, seconds: float, mapped: int, table: Path, figure: tuple[Path, str] | None) -> str:
    """What the figures do not hold: the files written and the wall-clock times of this run."""
    how = f"trained in {model.train_seconds:.0f} s" if model.history else "loaded"
    speed = f"; mapped in {seconds:.1f} s ({mapped / seconds:.1f} objects/s)" if mapped and seconds else ""
    lines = [f"Model `{model.checkpoint}` ({how}{speed}). Table `{table.absolute()}`."]
    if figure:
        lines += [f"Figure `{figure[0].absolute()}`:", figure[1]]
    return "\n\n".join(lines)
