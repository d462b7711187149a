"""The one check every triangle mesh passes before an op, a metric or the ingest pipeline uses it."""

from __future__ import annotations

import numpy as np


def check_mesh(name: str, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices and (F, 3) int64 faces, or ValueError naming `name` and what is wrong:
    wrong shape, empty, non-integer faces, NaN/inf coordinates, or a face index outside 0..V-1."""
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"{name} vertices must be (V, 3), got shape {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"{name} faces must be (F, 3), got shape {faces.shape}")
    if len(vertices) == 0 or len(faces) == 0:
        raise ValueError(f"{name} is empty: {len(vertices)} vertices, {len(faces)} faces")
    if not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"{name} faces must be integer vertex indices, got dtype {faces.dtype}")
    if not np.isfinite(vertices).all():
        raise ValueError(f"{name} vertices contain NaN or inf")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError(f"{name} faces index outside 0..{len(vertices) - 1}: "
                         f"min {faces.min()}, max {faces.max()}")
    return vertices.astype(np.float64), faces.astype(np.int64)
