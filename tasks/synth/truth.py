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
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from review.truth import truth_dir
from tasks.ingest.common import GraspRecord


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


