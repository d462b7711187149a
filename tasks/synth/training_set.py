"""The grasp generator's training set: synthetic datasets in the real formats, annotated by the real `annotate`
flow (template instructions, simulated reviewer), cached under a data root.

A set preset says how many objects per category and grasps per graspable part each MANO dataset (OakInk-Shape,
GRAB, HO-3D) gets, and how large the labelled AffordPose set is (the classifier learns from it). Splits are the
datasets' own rule, by object (md5(object_id) % 10: 0-7 train, 8 val, 9 test), so the test split holds object
instances the generator never saw, of the categories it did see.

    <data_root>/training_set.json   the preset, seed and what the build measured; a build with the same preset and
                                    seed reuses the tables instead of building them again
    <data_root>/datasets/synth.json the preset and seed the datasets were synthesised with (and in how long): an
                                    annotate run that failed is re-run on them without synthesising again
"""

from __future__ import annotations

import json
import resource
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from models.presets import Presets
from schemas.annotated import AnnotatedRow
from schemas.data_root import DataRoot
from tasks.grasp.evaluation.inputs import EmptySplit
from tasks.store.read import open_table

MANO_DATASETS = ("oakink", "grab", "ho3d")
# The six classes OakInk-Shape has (tasks/synth/datasets.py OAKINK_CATEGORIES): every MANO dataset holds them all.
OAKINK_CLASSES = ("bottle", "dispenser", "earphone", "knife", "mug", "scissors")
SET_FILE = "training_set.json"


@dataclass(frozen=True)
class TrainingSetSpec:
    """How large each dataset of the set is. ~2.3 graspable parts per object in these classes, so the MANO grasps
    number about 3 datasets x len(categories) x objects_per_category x 2.3 x grasps_per_part."""

    objects_per_category: int
    grasps_per_part: int
    labelled_objects_per_category: int = 4
    labelled_grasps_per_part: int = 3
    categories: tuple[str, ...] = OAKINK_CLASSES
    num_points: int = 2048  # object points per annotated row
    max_cycles: int = 1  # self-training cycles: the first classifier (trained on AffordPose) labels every grasp
    # MANO grasps: synthesise `candidates` x grasps_per_part per part, keep those that hold the object best in the
    # drop test (tasks/synth/stable_grasps.py); 1 keeps every grasp synthesised.
    candidates: int = 1


SET_PRESETS: Presets[TrainingSetSpec] = Presets("generator training set", {
    # ~5,400 MANO grasps over 96 objects per dataset (16 per class): what the `small` generator trains on.
    "generator-train": TrainingSetSpec(objects_per_category=16, grasps_per_part=8),
    # The same objects and counts, each grasp the steadiest of 2 candidates in the drop test.
    "generator-train-stable": TrainingSetSpec(objects_per_category=16, grasps_per_part=8, candidates=2),
    # A minute or two to build (the tests'); one held-out object (an OakInk knife).
    "generator-tiny": TrainingSetSpec(objects_per_category=2, grasps_per_part=1, labelled_objects_per_category=2,
                                      labelled_grasps_per_part=1, categories=("bottle", "knife", "mug"),
                                      num_points=512),
}, default="generator-train")


@dataclass
class TrainingSet:
    """A built (or reused) set: where its tables are and what it holds."""

    data_root: Path
    preset: str
    seed: int
    built: dict[str, Any]  # seconds per step and peak RSS of the build that wrote the tables
    counts: dict[str, Any]  # rows, MANO grasps and objects per split and per category
    reused: bool = False

    @property
    def annotated(self) -> Path:
        return DataRoot(self.data_root).annotated

    @property
    def mano_root(self) -> Path:
        return DataRoot(self.data_root).datasets / "mano"


def set_counts(annotated: Path) -> dict[str, Any]:
    """Rows, MANO grasps and distinct objects per split, and objects per category in the train split, read from
    the annotated table (key columns only: no clouds in memory)."""
    table = open_table(annotated, AnnotatedRow)
    rows = Counter()
    grasps = Counter()
    objects: dict[str, set[tuple[str, str]]] = {}
    per_class: dict[str, set[tuple[str, str]]] = {}
    for row in table.iter_rows():
        rows[row.split] += 1
        if row.hand_pose is None:
            continue
        grasps[row.split] += 1
        objects.setdefault(row.split, set()).add((row.dataset, row.object_id))
        if row.split == "train":
            per_class.setdefault(row.object_class, set()).add((row.dataset, row.object_id))
    return {"rows": dict(rows), "mano_grasps": dict(grasps),
            "objects": {split: len(found) for split, found in objects.items()},
            "train_objects_per_class": {name: len(found) for name, found in sorted(per_class.items())}}


def check_split(counts: dict[str, Any], split: str, table: Path) -> None:
    """EmptySplit naming the table and the split when `split` has no object with MANO grasps."""
    if not counts["objects"].get(split):
        raise EmptySplit(f"annotated table {table}: split {split!r} has no object with MANO grasps "
                         f"(objects per split: {counts['objects'] or 'none'}); the generator's evaluation needs "
                         f"held-out objects: build a larger set")


def _peak_rss_mib() -> float:
    """The larger of this process's and its finished children's peak RSS (synthesis runs in worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


def _refuse_foreign(root: DataRoot) -> None:
    """ValueError naming the folder when `root` holds tables or datasets this builder did not write: it rebuilds by
    deleting them, and must never delete a user's data root."""
    ours = (root.path / SET_FILE).is_file() or (root.datasets / "synth.json").is_file()
    for folder in (root.tables, root.datasets):
        if folder.is_dir() and any(folder.iterdir()) and not ours:
            raise ValueError(f"data root {root.path}: {folder} holds data no generator-set build wrote; give the "
                             f"set a folder of its own (e.g. afford-data/generator)")


def _cached(data_root: Path, preset: str, seed: int) -> TrainingSet | None:
    path = data_root / SET_FILE
    if not path.is_file() or not (DataRoot(data_root).annotated / "manifest.json").exists():
        return None
    saved = json.loads(path.read_text())
    if saved.get("preset") != preset or saved.get("seed") != seed or saved.get("spec") != _spec_dict(preset):
        return None
    return TrainingSet(data_root, preset, seed, saved["built"], saved["counts"], reused=True)


def _spec_dict(preset: str) -> dict[str, Any]:
    spec = json.loads(json.dumps(asdict(SET_PRESETS.from_name(preset))))  # tuples as lists, as the file keeps them
    if spec["candidates"] == 1:  # sets built before the field existed kept every grasp: they still match
        del spec["candidates"]
    return spec


def build_training_set(data_root: str | Path, preset: str = SET_PRESETS.default, seed: int = 0,
                       workers: int | None = None, log: Callable[[str], None] = print) -> TrainingSet:
    """Synthesise the preset's datasets under `<data_root>/datasets` and run `annotate` on them into `data_root`;
    reuse what a previous build with the same preset and seed wrote. EmptySplit when the test split ends empty."""
    from flows.annotate import annotate
    from tasks.synth.datasets import synthesize_datasets

    SET_PRESETS.check(preset)
    root = DataRoot(data_root)
    cached = _cached(root.path, preset, seed)
    if cached:
        log(f"training set {preset!r} (seed {seed}) reused from {root.path}: {cached.counts['mano_grasps']} MANO "
            f"grasps per split")
        check_split(cached.counts, "test", cached.annotated)
        return cached
    spec = SET_PRESETS.from_name(preset)
    _refuse_foreign(root)
    (root.path / SET_FILE).unlink(missing_ok=True)  # a half-built set must not look reusable
    for stale in (root.tables, root.chunks, root.review, root.self_training, root.affordance):
        shutil.rmtree(stale, ignore_errors=True)
    objects = {d: spec.objects_per_category for d in MANO_DATASETS} | {"affordpose": spec.labelled_objects_per_category}
    grasps = {d: spec.grasps_per_part for d in MANO_DATASETS} | {"affordpose": spec.labelled_grasps_per_part}
    began = time.perf_counter()
    synth_file = root.datasets / "synth.json"
    wanted = {"preset": preset, "seed": seed, "spec": _spec_dict(preset)}
    saved = json.loads(synth_file.read_text()) if synth_file.is_file() else {}
    if {k: saved.get(k) for k in wanted} == wanted:
        synth_s, synthesised = saved["seconds"], saved["grasps"]
        log(f"datasets of {preset!r} (seed {seed}) reused from {root.datasets}")
    else:
        log(f"synthesising {preset!r}: {objects} objects per category, {grasps} grasps per part"
            + (f" (the steadiest of {spec.candidates} candidates each)" if spec.candidates > 1 else "")
            + f", classes {', '.join(spec.categories)}")
        shutil.rmtree(root.datasets, ignore_errors=True)
        synth = synthesize_datasets(root.datasets, objects, seed, grasps, categories=spec.categories,
                                    workers=workers, candidates={d: spec.candidates for d in MANO_DATASETS})
        synth_s, synthesised = round(time.perf_counter() - began, 1), synth.grasps
        synth_file.write_text(json.dumps(wanted | {"seconds": synth_s, "grasps": synthesised}, indent=1) + "\n")
    log(f"{synthesised} grasps synthesised in {synth_s:.0f} s; annotating")
    began = time.perf_counter()
    annotate(datasets_root=str(root.datasets), mano_root=str(root.datasets / "mano"), data_root=str(root.path),
             num_points=spec.num_points, seed=seed, reviewer="simulated", truth_root=str(root.datasets),
             instructions="template", max_cycles=spec.max_cycles, command=f"build_training_set {preset} seed {seed}")
    annotate_s = time.perf_counter() - began
    counts = set_counts(root.annotated)
    built = {"synthesise_s": synth_s, "annotate_s": round(annotate_s, 1), "peak_rss_mib": _peak_rss_mib(),
             "synthesised_grasps": synthesised}
    (root.path / SET_FILE).write_text(json.dumps({"preset": preset, "seed": seed, "spec": _spec_dict(preset),
                                                  "built": built, "counts": counts}, indent=1) + "\n")
    result = TrainingSet(root.path, preset, seed, built, counts)
    log(f"training set {preset!r}: {counts['mano_grasps']} MANO grasps per split, objects {counts['objects']}, "
        f"built in {synth_s + annotate_s:.0f} s, peak RSS {built['peak_rss_mib']:.0f} MiB")
    check_split(counts, "test", root.annotated)
    return result
