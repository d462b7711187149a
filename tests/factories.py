"""Small synthetic factories: point clouds, sample rows and tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from schemas.manifest import TableManifest
from schemas.rows import Sample
from tasks.store.write import write_table
from tasks.synth.toy_samples import toy_samples


def point_cloud(n: int = 64, seed: int = 0) -> np.ndarray:
    """(n, 3) float32 points in a 10 cm cube."""
    return np.random.default_rng(seed).uniform(-0.05, 0.05, size=(n, 3)).astype(np.float32)


def sample_dicts(n: int, seed: int = 0, num_points: int = 32, start: int = 0, **overrides: Any) -> list[dict]:
    """`n` valid sample dicts with ids numbered from `start` (ids depend only on the number)."""
    rows = toy_samples(start + n, seed=seed, num_points=num_points)[start:]
    return [row | overrides for row in rows]


def samples(n: int, seed: int = 0, num_points: int = 32, start: int = 0) -> list[Sample]:
    return [Sample.model_validate(row) for row in sample_dicts(n, seed, num_points, start)]


def make_table(path: Path, n: int = 10, rows_per_shard: int = 4, seed: int = 0, **options: Any) -> TableManifest:
    """Write `n` toy samples to `path` and return the manifest."""
    return write_table(path, sample_dicts(n, seed=seed), Sample, rows_per_shard=rows_per_shard, **options)
