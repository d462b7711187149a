"""Toy samples for the demo and the tests: simple shapes with a hand placed beside them.

These exercise the data contract only; they are not grasps. Realistic synthetic datasets in the real
on-disk formats come from `afford synth`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schemas.affordance import AFFORDANCES
from schemas.ids import hash_bytes, make_sample_id

TOY_CATEGORIES = ("mug", "bottle", "knife", "bag")
STAGE_VERSION = "toy-1"


def sphere_points(rng: np.random.Generator, n: int, radius: float = 0.05) -> np.ndarray:
    """(n, 3) float32 points uniform on a sphere surface."""
    points = rng.normal(size=(n, 3))
    return (radius * points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def box_points(rng: np.random.Generator, n: int, half: tuple[float, float, float] = (0.03, 0.04, 0.08)
               ) -> np.ndarray:
    """(n, 3) float32 points on the surface of an axis-aligned box with half-extents `half`."""
    points = rng.uniform(-1.0, 1.0, size=(n, 3))
    axis = rng.integers(0, 3, size=n)
    points[np.arange(n), axis] = np.sign(points[np.arange(n), axis] + 1e-9)
    return (points * np.asarray(half)).astype(np.float32)


def toy_sample(index: int, rng: np.random.Generator, num_points: int = 256,
               dataset: str = "toy") -> dict[str, Any]:
    """One toy sample as a dict ready for `Sample.model_validate` (and for the shard writer)."""
    category = TOY_CATEGORIES[index % len(TOY_CATEGORIES)]
    points = sphere_points(rng, num_points) if index % 2 else box_points(rng, num_points)
    source_path = f"{category}/{index:05d}.npz"
    pose = rng.normal(scale=0.2, size=48).astype(np.float32)
    betas = rng.normal(scale=0.5, size=10).astype(np.float32)
    trans = np.array([0.0, -0.09, 0.0], np.float32) + rng.normal(scale=0.005, size=3).astype(np.float32)
    labels = (points[:, 2] > 0).astype(np.int8) * 5  # top half: wrap-grasp (AffordPose id 5)
    return {
        "sample_id": make_sample_id(dataset, source_path, 0),
        "stage_version": STAGE_VERSION,
        "dataset": dataset,
        "split": ("train", "train", "train", "val", "test")[index % 5],
        "source_path": source_path,
        "source_index": 0,
        "content_hash": hash_bytes(points.tobytes(), pose.tobytes(), betas.tobytes(), trans.tobytes()),
        "object_id": f"{category}-{index:05d}",
        "object_category": category,
        "object_points": points,
        "object_point_labels": labels,
        "hand_side": "right",
        "hand_pose": pose,
        "hand_betas": betas,
        "hand_trans": trans,
        "affordance": AFFORDANCES[1 + index % (len(AFFORDANCES) - 1)],
    }


def toy_samples(n: int, seed: int = 0, num_points: int = 256, dataset: str = "toy") -> list[dict[str, Any]]:
    """`n` toy samples, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    return [toy_sample(i, rng, num_points, dataset) for i in range(n)]


def corrupt(sample: dict[str, Any], how: str) -> dict[str, Any]:
    """A copy of a toy sample broken in one named way, to exercise the rejects path."""
    broken = dict(sample)
    if how == "nan_pose":
        pose = np.array(sample["hand_pose"], copy=True)
        pose[3] = np.nan
        broken["hand_pose"] = pose
    elif how == "points_shape":
        broken["object_points"] = np.zeros((len(sample["object_points"]), 2), np.float32)
    elif how == "unknown_affordance":
        broken["affordance"] = "juggle"
    else:
        raise ValueError(f"unknown corruption {how!r}; use nan_pose, points_shape or unknown_affordance")
    return broken
