"""The known labels a simulated reviewer answers from: one JSON file per dataset under <datasets_root>/ground_truth,
matched to samples by object and finger pose (the loaders' sample ids are not known when the truth is written).
A sample with no match within MATCH_TOLERANCE is an error, never a guess. tasks/synth writes these files."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from schemas.rows import Sample

MATCH_TOLERANCE = 1e-3  # radians, max abs difference over the 45 finger values (formats round at ~1e-6)


def truth_dir(datasets_root: Path) -> Path:
    return Path(datasets_root) / "ground_truth"


def truth_for(datasets_root: Path, samples: Iterable[Sample]) -> dict[str, str]:
    """sample_id -> true affordance for samples of the synthetic datasets; ValueError naming the sample when
    no grasp matches (not a synthetic sample, or its file was changed after synthesis)."""
    cache: dict[str, list[dict]] = {}
    truth = {}
    for sample in samples:
        if sample.dataset not in cache:
            path = truth_dir(datasets_root) / f"{sample.dataset}.json"
            if not path.is_file():
                raise ValueError(f"{path}: no synthetic ground truth for dataset {sample.dataset!r}")
            cache[sample.dataset] = json.loads(path.read_text())
        truth[sample.sample_id] = _match(sample, cache[sample.dataset])
    return truth


def _match(sample: Sample, entries: list[dict]) -> str:
    if sample.hand_pose is None:
        raise ValueError(f"sample {sample.sample_id}: no hand_pose to match against the synthetic grasps")
    fingers = np.asarray(sample.hand_pose, np.float64)[3:]
    # The object id matches where the dataset keeps the synthesiser's id (GRAB, HO-3D); OakInk renames objects,
    # so there the category narrows the candidates and the finger pose picks among them.
    candidates = ([e for e in entries if sample.object_id == e["object_id"]]
                  or [e for e in entries if sample.object_category == e["category"]])
    if not candidates:
        raise ValueError(f"sample {sample.sample_id}: no synthetic grasp of object {sample.object_id!r} or "
                         f"category {sample.object_category!r}")
    distance = np.abs(np.asarray([e["fingers"] for e in candidates]) - fingers).max(axis=1)
    best = int(distance.argmin())
    if distance[best] > MATCH_TOLERANCE:
        raise ValueError(f"sample {sample.sample_id}: nearest synthetic grasp differs by {distance[best]:.2e} rad "
                         f"(tolerance {MATCH_TOLERANCE:g}); not a synthetic sample, or its file changed")
    return candidates[best]["affordance"]

