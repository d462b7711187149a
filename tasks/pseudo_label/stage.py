"""The pseudo-labelling stage as plain steps: prepare clouds, train, evaluate, measure the confidence rules,
label the target tables. The Prefect flow in flows/pseudo_label.py only sequences these."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.point_bert import PointTransformer
from schemas.affordance import AFFORDANCES
from schemas.manifest import Lineage
from schemas.rows import PseudoLabel, Reject, Sample
from tasks.pseudo_label.classifier_config import TrainConfig
from tasks.pseudo_label.classifier_data import Clouds, clouds_from_rows, stratified_split
from tasks.pseudo_label.classifier_model import TrainResult, predict_logits
from tasks.pseudo_label.classifier_train import train_classifier
from tasks.pseudo_label.cloud_pool import label_pool_part
from tasks.pseudo_label.labelling import STAGE_VERSION, RuleMeasurement, measure_rules
from tasks.pseudo_label.report import (
    accuracy,
    class_stats_table,
    confusion_matrix,
    markdown_table,
    plot_confusion,
    plot_training_curve,
    rule_table,
    summary_table,
)
from tasks.store.read import open_table
from tasks.store.write import write_table


class NoLabelledSamples(ValueError):
    """The labelled table gave no sample to train or measure on (empty, or every row rejected)."""


@dataclass
class StageReport:
    """Figures and files of one pseudo-labelling run."""

    split_accuracy: dict[str, float]
    measurement: RuleMeasurement
    rule: str
    checkpoint: Path
    checkpoint_sha256: str
    files: dict[str, Path] = field(default_factory=dict)
    labelled: dict[str, dict[str, int]] = field(default_factory=dict)  # dataset -> {rows, accepted}
    markdown: str = ""


def prepare_clouds(table: Path, num_points: int, rejects: list[Reject]) -> Clouds:
    """Clouds of a samples table; samples that cannot become a cloud go to `rejects` (stage pseudo_label)."""
    def reject(row: Sample, exc: Exception) -> None:
        rejects.append(Reject(sample_id=row.sample_id, stage_version=STAGE_VERSION, stage="pseudo_label",
                              source=str(table), reason=str(exc), dataset=row.dataset))
    return clouds_from_rows(open_table(table, Sample).iter_rows(), num_points, on_error=reject)


def train_and_evaluate(labelled: Clouds, config: TrainConfig, out_dir: Path, k: float,
                       progress: Callable[[dict[str, float]], None] | None = None,
                       trained: TrainResult | None = None, extra_train: Clouds | None = None,
                       initial: PointTransformer | None = None) -> tuple[TrainResult, StageReport]:
    """Split, train (or take the `trained` model, e.g. from `load_trained`), report accuracy per split, the
    confusion matrix and curves, and measure both rules. A loaded checkpoint is measured on the same seeded split:
    its test figures are held-out figures only if it was trained by this stage on the same table and seed.
    `extra_train` (validated pseudo-labels) joins the training split only, so val and test stay AffordPose's;
    `initial` warm-starts training from an earlier model."""
    if not (labelled.labels >= 0).any():
        raise NoLabelledSamples("no labelled samples to train and measure the classifier on (the table is empty, "
                                "its rows have no affordance, or every row was rejected)")
    labelled = labelled.subset(np.flatnonzero(labelled.labels >= 0))
    parts = stratified_split(labelled.labels, config.seed)
    empty = [name for name in ("train", "val", "test") if not len(parts[name])]
    if empty:  # val and test get samples only from classes with 3 or more (stratified_split)
        counts = np.bincount(labelled.labels, minlength=len(AFFORDANCES))
        raise NoLabelledSamples(
            f"the labelled samples leave the {' and '.join(empty)} split(s) empty: {len(labelled.labels)} samples, "
            f"per class {dict((AFFORDANCES[i], int(n)) for i, n in enumerate(counts) if n)}; a class needs 3 or more "
            f"samples to reach val and test (add labelled objects or grasps)")
    train, val, test = (labelled.subset(parts[name]) for name in ("train", "val", "test"))
    if extra_train is not None and len(extra_train):
        train = train.concat(extra_train)
    result = trained or train_classifier(train, val, config, out_dir / "checkpoints", progress=progress,
                                         initial=initial)
    logits = {name: predict_logits(result.model, clouds.points) for name, clouds in
              (("train", train), ("val", val), ("test", test))}
    split_accuracy = {name: accuracy(c.labels, logits[name].argmax(1)) for name, c in
                      (("train", train), ("val", val), ("test", test))}
    measurement = measure_rules(logits["val"], val.labels, logits["test"], test.labels, k=k)
    files = {"confusion": plot_confusion(confusion_matrix(test.labels, logits["test"].argmax(1)), list(AFFORDANCES),
                                         out_dir / "confusion_test.png", title="Test confusion matrix")}
    if result.history:  # a loaded checkpoint has no curve
        files["curve"] = plot_training_curve(result.history, out_dir / "training_curve.png")
    report = StageReport(split_accuracy=split_accuracy, measurement=measurement, rule=measurement.choice.rule,
                         checkpoint=result.checkpoint, checkpoint_sha256=result.checkpoint_sha256, files=files)
    return result, report


def label_clouds(result: TrainResult, report: StageReport, clouds: Clouds, k: float, cycle: int) -> list[PseudoLabel]:
    """One PseudoLabel per cloud with the report's chosen rule."""
    return label_pool_part(result, clouds, report.rule, report.measurement.stats, k, cycle)


def label_targets(result: TrainResult, report: StageReport, targets: Sequence[Path], labels_table: Path,
                  rejects_table: Path, num_points: int, k: float, cycle: int) -> None:
    """Label every target table with the chosen rule; write the labels table and the rejects."""
    rejects: list[Reject] = []
    rows: list[PseudoLabel] = []
    for table in targets:
        before = len(rejects)
        labelled = label_clouds(result, report, prepare_clouds(table, num_points, rejects), k, cycle)
        rows += labelled
        report.labelled[Path(table).name] = {"rows": len(labelled), "accepted": sum(r.accepted for r in labelled),
                                             "rejects": len(rejects) - before}
    lineage = Lineage(stage="pseudo_label", stage_version=STAGE_VERSION, checkpoint_sha256=report.checkpoint_sha256,
                      params={"rule": report.rule, "k": k, "cycle": cycle, "num_points": num_points})
    write_table(labels_table, rows, PseudoLabel, lineage=lineage)
    write_table(rejects_table, rejects, Reject, lineage=lineage)


def acceptance_by_class(labels_table: Path) -> list[list[str]]:
    """Rows of (class, labelled, accepted, acceptance %) over the labels table."""
    table = open_table(labels_table, PseudoLabel).read(["predicted", "accepted"]).to_pydict()
    rows = []
    for name in AFFORDANCES:
        picked = [a for p, a in zip(table["predicted"], table["accepted"], strict=True) if p == name]
        if picked:
            rows.append([name, str(len(picked)), str(sum(picked)), f"{100 * sum(picked) / len(picked):.1f}"])
    return rows


def render_markdown(report: StageReport, labels_table: Path) -> str:
    m = report.measurement
    parts = ["## Classifier accuracy", summary_table(report.split_accuracy),
             "## Confidence rules on the held-out test split (treated as unlabelled)", rule_table(m.reports),
             f"Default rule: **{report.rule}**. {m.choice.reason}",
             *(["Class-conditional statistics (fitted on the validation split):", class_stats_table(m.stats)]
               if m.stats is not None else []),
             "## Pseudo-labels by predicted class",
             markdown_table(["class", "labelled", "accepted", "accepted %"], acceptance_by_class(labels_table)),
             f"Checkpoint `{report.checkpoint}` (sha256 {report.checkpoint_sha256[:12]}); "
             f"labels `{labels_table.absolute()}`; plots " + ", ".join(f"`{p}`" for p in report.files.values())]
    return "\n\n".join(parts)


def save_summary(report: StageReport, out_dir: Path) -> Path:
    path = out_dir / "summary.json"
    path.write_text(json.dumps({"split_accuracy": report.split_accuracy, "rule": report.rule,
                                "checkpoint_sha256": report.checkpoint_sha256, "labelled": report.labelled,
                                "rules": {n: {"acceptance_rate": r.acceptance_rate, "precision": r.precision}
                                          for n, r in report.measurement.reports.items()}}, indent=2))
    return path
