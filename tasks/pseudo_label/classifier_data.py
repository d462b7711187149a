"""Classifier inputs: each sample's hand + object as one point cloud in the object frame, farthest-point
sampled to a fixed size, with its affordance class index when labelled.

Scale: coordinates are divided by CLOUD_SCALE (0.15 m) instead of being normalised per sample, so the
classifier still sees how big the object and the hand are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from ops.joint_cloud import joint_cloud, joint_clouds
from schemas.affordance import affordance_index
from schemas.rows import Sample
from tasks.store.read import open_table

CLOUD_SCALE = 0.15  # metres -> network units: a large object plus a hand fits in about [-1.5, 1.5]
# Rows read and farthest-point sampled together: enough for every FPS worker to get several chunks, few enough
# that the rows in flight stay small (256 rows of 778 + 4096 points are ~30 MB as float64).
ROW_BATCH = 256
SPLITS = ("train", "val", "test")


@dataclass
class Clouds:
    """points: (N, P, 3) float32 network units; labels: (N,) int64 class index or -1 when unlabelled."""

    sample_ids: list[str]
    categories: list[str]
    points: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.sample_ids)

    def subset(self, index: np.ndarray) -> Clouds:
        return Clouds([self.sample_ids[i] for i in index], [self.categories[i] for i in index],
                      self.points[index], self.labels[index])

    def concat(self, other: Clouds) -> Clouds:
        """Both sets, self first; the clouds must have the same number of points."""
        if len(other) and len(self) and other.points.shape[1:] != self.points.shape[1:]:
            raise ValueError(f"clouds of {self.points.shape[1]} and {other.points.shape[1]} points cannot be joined")
        return Clouds(self.sample_ids + other.sample_ids, self.categories + other.categories,
                      np.concatenate([self.points, other.points]), np.concatenate([self.labels, other.labels]))

    def with_labels(self, labels: np.ndarray) -> Clouds:
        """The same clouds with other class indices (N,), e.g. pseudo-labels."""
        labels = np.asarray(labels, np.int64)
        if labels.shape != self.labels.shape:
            raise ValueError(f"expected {self.labels.shape} labels, got {labels.shape}")
        return Clouds(self.sample_ids, self.categories, self.points, labels)


def sample_cloud(row: Sample, num_points: int) -> np.ndarray:
    """(num_points, 3) float32 joint cloud of one sample; ValueError naming the sample when it has no hand."""
    if row.hand_verts is None:
        raise _no_hand(row)
    try:
        points = joint_cloud(row.hand_verts, row.object_points, num_points).points
    except ValueError as exc:  # NaN, wrong shape or empty part: name the sample, keep joint_cloud's field name
        raise _named(row, exc) from None
    return _scaled(points)


def clouds_from_rows(rows: Iterable[Sample], num_points: int,
                     on_error: Callable[[Sample, Exception], None] | None = None) -> Clouds:
    """Joint clouds of rows; a row that fails goes to `on_error` (the caller's rejects) instead of stopping.

    Rows are read ROW_BATCH at a time and sampled together (`joint_clouds`); each cloud is the one
    `sample_cloud` gives, and errors are reported per row, in row order, with the same text."""
    ids, categories, points, labels = [], [], [], []
    reader = iter(rows)
    while batch := list(islice(reader, ROW_BATCH)):
        for row, cloud in zip(batch, _batch_clouds(batch, num_points), strict=True):
            try:
                if isinstance(cloud, ValueError):
                    raise cloud
                label = affordance_index(row.affordance) if row.affordance is not None else -1
            except ValueError as exc:  # a bad cloud or an affordance outside the 9 classes
                if on_error is None:
                    raise
                on_error(row, exc)
                continue
            ids.append(row.sample_id)
            categories.append(row.object_category)
            points.append(cloud)
            labels.append(label)
    stacked = np.stack(points) if points else np.zeros((0, num_points, 3), np.float32)
    return Clouds(ids, categories, stacked, np.asarray(labels, dtype=np.int64))


def _batch_clouds(rows: list[Sample], num_points: int) -> list[np.ndarray | ValueError]:
    """`sample_cloud` of each row, sampled together: a (num_points, 3) float32 cloud, or the ValueError that
    sample_cloud would raise for that row."""
    with_hand = [row for row in rows if row.hand_verts is not None]
    clouds = iter(joint_clouds([row.hand_verts for row in with_hand], [row.object_points for row in with_hand],
                               num_points))
    out: list[np.ndarray | ValueError] = []
    for row in rows:
        if row.hand_verts is None:
            out.append(_no_hand(row))
            continue
        cloud = next(clouds)
        out.append(_named(row, cloud) if isinstance(cloud, ValueError) else _scaled(cloud.points))
    return out


def _no_hand(row: Sample) -> ValueError:
    return ValueError(f"sample {row.sample_id}: no hand_verts; ingest computes them from the MANO parameters")


def _named(row: Sample, exc: ValueError) -> ValueError:
    """joint_cloud's error (it names the field) prefixed with the sample it came from."""
    return ValueError(f"sample {row.sample_id}: {exc}")


def _scaled(points: np.ndarray) -> np.ndarray:
    """(n, 3) metres -> network units, float32."""
    return (points / CLOUD_SCALE).astype(np.float32)


def load_clouds(table: str | Path, num_points: int,
                on_error: Callable[[Sample, Exception], None] | None = None) -> Clouds:
    return clouds_from_rows(open_table(table, Sample).iter_rows(), num_points, on_error)


def stratified_split(labels: np.ndarray, seed: int, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
                     ) -> dict[str, np.ndarray]:
    """Indices per split, each class divided in the same proportions (at least one val and one test sample
    per class with 3 or more samples). Synthetic demo sets have too few objects for object-disjoint splits."""
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {name: [] for name in SPLITS}
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n = len(members)
        n_val = max(1, round(n * fractions[1])) if n >= 3 else 0
        n_test = max(1, round(n * fractions[2])) if n >= 3 else 0
        parts["val"] += members[:n_val].tolist()
        parts["test"] += members[n_val:n_val + n_test].tolist()
        parts["train"] += members[n_val + n_test:].tolist()
    return {name: np.sort(np.asarray(index, dtype=np.int64)) for name, index in parts.items()}
