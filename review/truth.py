"""The known labels a simulated reviewer answers from: one JSON file per dataset under <datasets_root>/ground_truth,
matched to samples by object and finger pose (the loaders' sample ids are not known when the truth is written).
A sample with no match within MATCH_TOLERANCE is an error, never a guess. tasks/synth writes these files."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from schemas.rows import Sample

MATCH_TOLERANCE = 1e-3  # radians, max abs difference over the 45 finger values (formats round at ~1e-6)


def truth_dir(datasets_root: Path) -> Path:
    return Path(datasets_root) / "ground_truth"


class TruthKey(NamedTuple):
    """The fields of a sample that matching reads (a Sample has them too)."""

    sample_id: str
    dataset: str
    object_id: str
    object_category: str
    hand_pose: object


def table_truth_keys(tables: Iterable[str | Path]) -> Iterator[TruthKey]:
    """The matching fields of every row of the samples `tables`: five columns a batch, not the rows' points."""
    from tasks.store.read import open_table  # the store is needed only here

    for table in tables:
        for batch in open_table(table, Sample).iter_batches(list(TruthKey._fields), batch_rows=4096):
            yield from (TruthKey(*values) for values in zip(*(batch.column(f).to_pylist()
                                                               for f in TruthKey._fields), strict=True))


def truth_for(datasets_root: Path, samples: Iterable[Sample | TruthKey]) -> dict[str, str]:
    """sample_id -> true affordance for samples of the synthetic datasets; ValueError naming the sample when
    no grasp matches (not a synthetic sample, or its file was changed after synthesis)."""
    cache: dict[str, _Entries] = {}
    truth = {}
    for sample in samples:
        if sample.dataset not in cache:
            path = truth_dir(datasets_root) / f"{sample.dataset}.json"
            if not path.is_file():
                raise ValueError(f"{path}: no synthetic ground truth for dataset {sample.dataset!r}")
            cache[sample.dataset] = _Entries(json.loads(path.read_text()))
        truth[sample.sample_id] = _match(sample, cache[sample.dataset])
    return truth


class _Entries:
    """One dataset's synthetic grasps, with the finger arrays of each object and each category stacked once (a
    large dataset matches every sample against them)."""

    def __init__(self, entries: list[dict]) -> None:
        self.by_object: dict[str, list[dict]] = {}
        self.by_category: dict[str, list[dict]] = {}
        for entry in entries:
            self.by_object.setdefault(entry["object_id"], []).append(entry)
            self.by_category.setdefault(entry["category"], []).append(entry)
        self._fingers: dict[tuple[str, str], np.ndarray] = {}

    def candidates(self, object_id: str, category: str) -> tuple[list[dict], np.ndarray]:
        key = ("object", object_id) if object_id in self.by_object else ("category", category)
        chosen = self.by_object.get(object_id) or self.by_category.get(category, [])
        if chosen and key not in self._fingers:
            self._fingers[key] = np.asarray([e["fingers"] for e in chosen], np.float64)
        return chosen, self._fingers.get(key, np.zeros((0, 45)))


def _match(sample: Sample | TruthKey, entries: _Entries) -> str:
    if sample.hand_pose is None:
        raise ValueError(f"sample {sample.sample_id}: no hand_pose to match against the synthetic grasps")
    fingers = np.asarray(sample.hand_pose, np.float64)[3:]
    # The object id matches where the dataset keeps the synthesiser's id (GRAB, HO-3D); OakInk renames objects,
    # so there the category narrows the candidates and the finger pose picks among them.
    candidates, stacked = entries.candidates(sample.object_id, sample.object_category)
    if not candidates:
        raise ValueError(f"sample {sample.sample_id}: no synthetic grasp of object {sample.object_id!r} or "
                         f"category {sample.object_category!r}")
    distance = np.abs(stacked - fingers).max(axis=1)
    best = int(distance.argmin())
    if distance[best] > MATCH_TOLERANCE:
        raise ValueError(f"sample {sample.sample_id}: nearest synthetic grasp differs by {distance[best]:.2e} rad "
                         f"(tolerance {MATCH_TOLERANCE:g}); not a synthetic sample, or its file changed")
    return candidates[best]["affordance"]
