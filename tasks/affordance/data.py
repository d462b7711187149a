"""Training and evaluation items for the affordance-map model, from AffordPose's per-point part labels.

One item per (labelled sample, affordance carried by a part of its object): the sample's object points and the
target v_i = 1 where the point's part carries that affordance, else 0. Each ingested sample has its own surface
sampling of its object, so the samples of one object give differently sampled copies of the same targets.
Instructions come per (object class, affordance): the instructions table's texts for that key (what inference
will be asked with) plus the template generator's variants, so the model sees several wordings of each action.
The split is by object and stratified by class: no test object is ever seen in training.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.affordance import AFFORDPOSE_LABEL_IDS
from schemas.instruction import InstructionRow
from schemas.rows import Sample
from tasks.instruct.generators import InstructionKey, TemplateGenerator
from tasks.store.read import open_table

TEMPLATE_VARIANTS = 3  # template wordings per key added to the table's texts
Key = tuple[str, str]  # (object class, affordance)


class NoMapItems(ValueError):
    """No item to train on: the labelled table holds no sample with per-point part labels."""


@dataclass
class MapItems:
    """M items over clouds of N points. points: (M, N, 3) float32 metres; targets: (M, N) float32 in {0, 1}."""

    sample_ids: list[str]
    object_ids: list[str]
    categories: list[str]
    affordances: list[str]
    points: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.sample_ids)

    def item_keys(self) -> list[Key]:
        return list(zip(self.categories, self.affordances, strict=True))

    def subset(self, index: np.ndarray | list[int]) -> MapItems:
        index = np.asarray(index, dtype=np.int64)
        pick = lambda values: [values[i] for i in index]  # noqa: E731
        return MapItems(pick(self.sample_ids), pick(self.object_ids), pick(self.categories), pick(self.affordances),
                        self.points[index], self.targets[index])


def items_from_samples(rows: Iterable[Sample], on_error: Callable[[Sample, str], None] | None = None) -> MapItems:
    """Items of labelled samples; a sample without usable point labels goes to `on_error` with the reason."""
    ids, objects, categories, affordances, points, targets = [], [], [], [], [], []
    for row in rows:
        problem = _label_problem(row)
        if problem is not None:
            if on_error is None:
                raise ValueError(f"sample {row.sample_id}: {problem}")
            on_error(row, problem)
            continue
        labels = np.asarray(row.object_point_labels)
        for label_id in sorted(set(np.unique(labels).tolist()) - {0}):
            ids.append(row.sample_id)
            objects.append(row.object_id)
            categories.append(row.object_category)
            affordances.append(AFFORDPOSE_LABEL_IDS[label_id])
            points.append(np.asarray(row.object_points, np.float32))
            targets.append((labels == label_id).astype(np.float32))
    n = len(points[0]) if points else 0
    if any(len(p) != n for p in points):
        raise ValueError(f"samples have different numbers of object points ({sorted({len(p) for p in points})}); "
                         "ingest them with one --num-points")
    return MapItems(ids, objects, categories, affordances,
                    np.stack(points) if points else np.zeros((0, 0, 3), np.float32),
                    np.stack(targets) if targets else np.zeros((0, 0), np.float32))


def _label_problem(row: Sample) -> str | None:
    if row.object_point_labels is None:
        return "object_point_labels: missing (only AffordPose carries per-point part labels)"
    labels = np.asarray(row.object_point_labels)
    if labels.shape != (len(row.object_points),):
        return f"object_point_labels: shape {labels.shape} does not match object_points ({len(row.object_points)})"
    unknown = sorted(set(np.unique(labels).tolist()) - set(AFFORDPOSE_LABEL_IDS))
    if unknown:
        return f"object_point_labels: unknown label ids {unknown}"
    if not (labels != 0).any():
        return "object_point_labels: no part carries an affordance"
    return None


def load_items(table: str | Path, on_error: Callable[[Sample, str], None] | None = None) -> MapItems:
    return items_from_samples(open_table(table, Sample).iter_rows(), on_error)


def object_split(items: MapItems, test_fraction: float = 0.25, seed: int = 0) -> dict[str, np.ndarray]:
    """{"train", "test"} item indices, disjoint by object: per class, round(n * test_fraction) of its n objects
    (at least one when n >= 2) go to test, chosen at random with `seed`; a class with one object stays in train."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    by_class: dict[str, list[str]] = defaultdict(list)
    for obj, category in dict(zip(items.object_ids, items.categories, strict=True)).items():
        by_class[category].append(obj)
    rng = np.random.default_rng(seed)
    test_objects: set[str] = set()
    for category in sorted(by_class):
        objects = sorted(by_class[category])
        n_test = max(1, round(len(objects) * test_fraction)) if len(objects) >= 2 else 0
        test_objects |= set(rng.permutation(objects)[:n_test].tolist())
    is_test = np.asarray([obj in test_objects for obj in items.object_ids], dtype=bool)
    return {"train": np.flatnonzero(~is_test), "test": np.flatnonzero(is_test)}


def instruction_texts(keys: Iterable[Key], table: str | Path | None = None,
                      template_variants: int = TEMPLATE_VARIANTS) -> dict[Key, list[str]]:
    """Distinct instruction texts per (object class, affordance): the table's (if given), then the templates'.

    Keys come back sorted: callers pass a set, whose order changes with PYTHONHASHSEED from one process to the
    next, and the text order decides how the text encoder batches (so padding, so the last bits of every feature)."""
    texts: dict[Key, dict[str, None]] = {key: {} for key in sorted(keys)}
    if table is not None:
        for row in open_table(table, InstructionRow).iter_rows():
            key = (row.object_class, row.affordance)
            if key in texts:
                texts[key].setdefault(row.instruction)
    template = TemplateGenerator()
    for (category, affordance), found in texts.items():
        for instruction in template.generate(InstructionKey(category, affordance), template_variants):
            found.setdefault(instruction.text)
    return {key: list(found) for key, found in texts.items()}
