"""The layout of a data root: every sub-path the engine reads or writes, named once.

    <root>/
      tables/<name>/             Parquet tables (samples per dataset format, rejects, labels, affordance_labels,
                                 review, instructions, affordance_maps, annotated)
      review/review.sqlite       the review queue and decisions; review/images/ the queue's pictures
      cache/instructions.sqlite  generated instructions by key (each key is generated once)
      models/                    embedded models (the instruction LLM)
      self_training/             classifier cycles: checkpoints, plots, cycles.md/json; merged_labels/ (a table:
                                 the labels a run's cycles merged so far, its working state)
      affordance/                the affordance-map model: checkpoint, metrics, figures
      current/<stage>.json       which checkpoint is current per stage (what re-annotation and evaluation use)
      reports/<stage>.json       the last annotate run's figures per stage, and run.json (command, seed, code, machine)
      reannotate/                one JSON report per incremental pass
      watch/                     the dataset watcher's hash manifests
      datasets/, renders/        the demo's synthetic datasets and pictures
      chunks/<stage>/<key>/      committed chunks: classifier clouds, each cycle's pseudo-labels, the annotated
                                 join (maps: affordance/chunks)
      .annotate.lock             held while a flow writes tables

No flow, task or command joins these by hand: they ask a `DataRoot`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The per-stage records of the current checkpoint; a stage not listed here has none.
CURRENT_STAGES = ("classifier", "affordance")


@dataclass(frozen=True)
class DataRoot:
    """A data root's paths. `DataRoot("afford-data").table("oakink")` -> afford-data/tables/oakink."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    @classmethod
    def of_table(cls, table: str | os.PathLike[str]) -> DataRoot:
        """The data root a table at <root>/tables/<name> belongs to (absolute, not resolved: a table path is a link
        to its current version folder)."""
        return cls(Path(table).absolute().parent.parent)

    # -- tables ---------------------------------------------------------------------------------------------
    @staticmethod
    def beside(table: str | os.PathLike[str], name: str) -> Path:
        """The table `name` in the same tables folder as `table` (e.g. the rejects of a stage given its output)."""
        return Path(table).parent / name

    @property
    def tables(self) -> Path:
        return self.path / "tables"

    def table(self, name: str) -> Path:
        """The table `name` (a dataset format or a stage's output)."""
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"table name {name!r}: expected a plain folder name")
        return self.tables / name

    @property
    def rejects(self) -> Path:
        return self.table("rejects")

    @property
    def labels(self) -> Path:
        """Every self-training cycle's pseudo-labels."""
        return self.table("labels")

    @property
    def affordance_labels(self) -> Path:
        """The final label of every target sample."""
        return self.table("affordance_labels")

    @property
    def review_decisions(self) -> Path:
        return self.table("review")

    @property
    def instructions(self) -> Path:
        return self.table("instructions")

    @property
    def affordance_maps(self) -> Path:
        return self.table("affordance_maps")

    @property
    def annotated(self) -> Path:
        return self.table("annotated")

    @property
    def mano_fits(self) -> Path:
        """MANO parameters fitted to the non-MANO hands (`afford fit-mano`)."""
        return self.table("mano_fits")

    @property
    def chunks(self) -> Path:
        """Committed chunks of the classifier clouds and the annotated join (tasks/store/chunks.py)."""
        return self.path / "chunks"

    # -- services' state ------------------------------------------------------------------------------------
    @property
    def review(self) -> Path:
        return self.path / "review"

    @property
    def review_store(self) -> Path:
        return self.review / "review.sqlite"

    @property
    def review_images(self) -> Path:
        return self.review / "images"

    @property
    def instruction_cache(self) -> Path:
        return self.path / "cache" / "instructions.sqlite"

    @property
    def models(self) -> Path:
        """Embedded models (the instruction LLM), fetched or unpacked once."""
        return self.path / "models"

    @property
    def watch(self) -> Path:
        return self.path / "watch"

    @property
    def lock(self) -> Path:
        return self.path / ".annotate.lock"

    # -- stage outputs --------------------------------------------------------------------------------------
    @property
    def self_training(self) -> Path:
        return self.path / "self_training"

    @property
    def merged_labels(self) -> Path:
        """The table of labels the self-training run's cycles have merged so far (its working state)."""
        return self.self_training / "merged_labels"

    @property
    def affordance(self) -> Path:
        return self.path / "affordance"

    @property
    def grasp(self) -> Path:
        """Grasp generator runs: `train/` and `evaluation/` folders (the demo writes `grasp/demo/`)."""
        return self.path / "grasp"

    @property
    def reports(self) -> Path:
        """The last run's figures, one JSON file per stage (what `afford report` renders)."""
        return self.path / "reports"

    @property
    def reannotate_reports(self) -> Path:
        return self.path / "reannotate"

    @property
    def datasets(self) -> Path:
        return self.path / "datasets"

    @property
    def renders(self) -> Path:
        return self.path / "renders"

    def current(self, stage: str) -> Path:
        """The record of the stage's current checkpoint (JSON; what re-annotation and evaluation load)."""
        if stage not in CURRENT_STAGES:
            raise ValueError(f"stage {stage!r} records no current checkpoint; stages that do: "
                             f"{', '.join(CURRENT_STAGES)}")
        return self.path / "current" / f"{stage}.json"
