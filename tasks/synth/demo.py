"""The demo's steps as plain functions: synthesise datasets, break two inputs on purpose, check the counts."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from tasks.ingest.pickles import safe_load_pickle


def break_two_inputs(datasets_root: Path) -> list[str]:
    """Damage one AffordPose file (truncated JSON) and one HO-3D frame (NaN translation), to show that bad
    inputs become reject rows with a reason while the rest of the run goes on. Returns the damaged files."""
    damaged = []
    grasp = sorted((datasets_root / "affordpose").rglob("*.json"))[-1]
    grasp.write_text(grasp.read_text()[: 200])
    damaged.append(str(grasp.relative_to(datasets_root)))
    frame = sorted((datasets_root / "ho3d").rglob("meta/*.pkl"))[-1]
    meta = safe_load_pickle(frame)
    meta["handTrans"] = np.array([np.nan, 0.0, 0.0], np.float32)
    frame.write_bytes(pickle.dumps(meta, protocol=2))
    damaged.append(str(frame.relative_to(datasets_root)))
    return damaged
