"""A small synthetic annotate set (two categories, a handful of grasps per dataset) and the edits a test makes to
its files, shared by the reannotate flow test and the Prefect server integration test."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from tasks.store.read import open_table
from tasks.synth.datasets import synthesize_datasets

CATEGORIES = ["mug", "knife"]
# Small but complete: every stage trains or runs (1 classifier epoch, 2 map-model steps, template instructions).
ANNOTATE_PARAMS = {"num_points": 256, "seed": 0, "reviewer": "simulated", "epochs": 1, "max_cycles": 1,
                   "queue_size": 10, "instructions": "template", "affordance_steps": 2, "affordance_preset": "tiny"}


def synth_small(root: Path) -> Path:
    """The four datasets under root/datasets (2 objects per category for AffordPose, 1 for the others, 2 OakInk
    grasps per part); grasp refinement is shortened (20 steps) since no test here measures grasp quality;
    returns the datasets folder (its `mano/` holds the generated hand)."""
    summary = synthesize_datasets(root / "datasets", {"affordpose": 2, "oakink": 1, "grab": 1, "ho3d": 1}, seed=0,
                                  grasps_per_part={"affordpose": 1, "oakink": 2}, categories=CATEGORIES, steps=20)
    return summary.root


def synth_chunked(root: Path) -> Path:
    """A few hundred samples (OakInk ~190 of them) for the chunked-stage tests: the synth_small categories with
    more objects and OakInk grasps; returns the datasets folder."""
    summary = synthesize_datasets(root / "datasets", {"affordpose": 3, "oakink": 3, "grab": 2, "ho3d": 2}, seed=0,
                                  grasps_per_part={"affordpose": 1, "oakink": 16}, categories=CATEGORIES, steps=20)
    return summary.root


def oakink_params(datasets: Path) -> list[Path]:
    return sorted((datasets / "oakink").rglob("hand_param.pkl"))


def perturb_oakink(path: Path, radians: float = 0.02) -> None:
    """Rewrite one OakInk grasp with its finger pose bent a little: same file, new bytes, still valid."""
    params = pickle.loads(path.read_bytes())
    pose = np.asarray(params["pose"], np.float32).copy()
    pose[3:] += radians
    params["pose"] = pose
    path.write_bytes(pickle.dumps(params, protocol=4))


def add_oakink_copy(source: Path) -> Path:
    """A new grasp folder beside `source`'s (a new sample id) holding a copy of its files."""
    target = source.parent.with_name(source.parent.name + "x")
    shutil.copytree(source.parent, target)
    return target / source.name


def rows_by_id(table: Path) -> dict[str, dict]:
    """Every row of a table as a plain dict, by sample_id (values compared exactly: floats bit for bit)."""
    data: pa.Table = open_table(table).read()
    return {row["sample_id"]: row for row in data.to_pylist()}
