"""Ground truth of the synthetic unlabelled datasets, for the simulated reviewer only.

OakInk, GRAB and HO-3D are written without affordance labels, as the real ones are. The synthesiser keeps, per
grasp, the affordance of the part it was placed on, in `<datasets root>/ground_truth/<dataset>.json` (outside
the dataset folders, so no loader sees it). A sample is matched to its grasp by dataset, object (id or category) and
finger pose: the 45 finger values go through every format unchanged by the frame changes (only the global
rotation moves), and two grasps of one category never share them (random curl per grasp). A match farther than
MATCH_TOLERANCE is an error, never a guess.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from schemas.rows import Sample
from tasks.ingest.common import GraspRecord

MATCH_TOLERANCE = 1e-3  # radians, max abs difference over the 45 finger values (formats round at ~1e-6)


def truth_dir(datasets_root: Path) -> Path:
    return Path(datasets_root) / "ground_truth"


def write_truth(datasets_root: Path, dataset: str, records: Sequence[GraspRecord], affordances: Sequence[str]) -> Path:
    """One entry per record: category, object id, finger pose (45,) and the affordance of the grasped part."""
    if len(records) != len(affordances):
        raise ValueError(f"{len(records)} records but {len(affordances)} affordances")
    entries = [{"category": r.category, "object_id": r.object_id, "affordance": a,
                "fingers": np.asarray(r.hand_pose, np.float64)[3:].round(7).tolist()}
               for r, a in zip(records, affordances, strict=True)]
    path = truth_dir(datasets_root) / f"{dataset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries))
    return path


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
