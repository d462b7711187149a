"""The pseudo_label flow: train the classifier on the labelled table, measure the confidence rules, label the
target tables, and publish the figures as artifacts."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from models.point_bert import PRESETS
from models.preset_choices import CLASSIFIER_PRESETS, ClassifierPreset
from schemas.data_root import DataRoot
from schemas.rows import Reject
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.pseudo_label.classifier_model import TrainResult, load_trained
from tasks.pseudo_label.report import epoch_line
from tasks.pseudo_label.stage import (
    NoLabelledSamples,
    StageReport,
    acceptance_by_class,
    label_targets,
    prepare_clouds,
    render_markdown,
    save_summary,
    train_and_evaluate,
)
from tasks.store.write import write_table


# A trained model is not a cache key: these tasks pass models along, so they are never cached.
@task(name="train-classifier", cache_policy=NONE)
def train_task(labelled_table: Path, out_dir: Path, config: TrainConfig, k: float,
               checkpoint: Path | None = None) -> tuple[TrainResult, StageReport]:
    # Load first: a wrong checkpoint fails before minutes of cloud preparation, and sets the cloud size.
    trained = load_trained(checkpoint, config.device) if checkpoint else None
    num_points = trained.model_config.num_points if trained else PRESETS[config.preset].num_points
    rejects: list[Reject] = []
    clouds = prepare_clouds(labelled_table, num_points, rejects)
    if rejects:
        write_table(DataRoot.beside(labelled_table, "rejects"), rejects, Reject)
    if not (clouds.labels >= 0).any():
        raise NoLabelledSamples(f"{labelled_table}: no labelled samples to train and measure the classifier on "
                                f"({len(clouds)} rows with a cloud, {len(rejects)} rejected)")
    start = time.perf_counter()
    return train_and_evaluate(clouds, config, out_dir, k, trained=trained,
                              progress=lambda r: print(epoch_line(r, config.epochs, time.perf_counter() - start)))


@task(name="label-targets", cache_policy=NONE)
def label_task(result: TrainResult, report: StageReport, targets: list[Path], labels_table: Path, k: float,
               cycle: int) -> StageReport:
    label_targets(result, report, targets, labels_table, DataRoot.beside(labels_table, "rejects"),
                  result.model_config.num_points, k, cycle)
    return report


@task(name="publish-report", cache_policy=NONE)
def publish_task(report: StageReport, labels_table: Path, out_dir: Path) -> str:
    report.markdown = render_markdown(report, labels_table)
    save_summary(report, out_dir)
    (out_dir / "report.md").write_text(report.markdown)
    create_markdown_artifact(markdown=report.markdown, key="pseudo-label-report",
                             description="Classifier accuracy, confidence rules and pseudo-label acceptance")
    create_table_artifact(table=[dict(zip(("class", "labelled", "accepted", "accepted %"), row, strict=True))
                                 for row in acceptance_by_class(labels_table)],
                          key="pseudo-label-acceptance", description="Acceptance per predicted class")
    return report.markdown


@flow(name="pseudo_label", log_prints=True)
def pseudo_label(labelled_table: str, target_tables: list[str], out_dir: str,
                 preset: ClassifierPreset = CLASSIFIER_PRESETS.default,
                 epochs: int = TrainConfig.epochs, lr: float = TrainConfig.lr, k: float = 3.0, cycle: int = 0,
                 seed: int = 0, checkpoint: str | None = None) -> str:
    """Train on the labelled table (AffordPose), or load `checkpoint` (a file saved by an earlier run), pseudo-label
    the targets (OakInk, GRAB, HO-3D) with the confidence rule that measured best on held-out data, and write
    the labels table beside the labelled one."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(preset=preset, epochs=epochs, lr=lr, seed=seed)
    result, report = train_task(Path(labelled_table), out, config, k, Path(checkpoint) if checkpoint else None)
    labels_table = DataRoot.beside(Path(labelled_table), "labels")
    report = label_task(result, report, [Path(t) for t in target_tables], labels_table, k, cycle)
    return publish_task(report, labels_table, out)
