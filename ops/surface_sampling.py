"""Uniform random points on a triangle mesh's surface, with per-point labels carried from the vertices."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ops.mesh_check import check_mesh


class SurfaceSample(NamedTuple):
    """points: (n, 3) float32, on the surface; face_index: (n,) int64, the face each point lies on;
    labels: (n,) int8, the label of the face's vertex nearest each point (None without vertex labels)."""

    points: np.ndarray
    face_index: np.ndarray
    labels: np.ndarray | None


def _check_labels(vertex_labels: np.ndarray | None, num_vertices: int) -> np.ndarray | None:
    if vertex_labels is None:
        return None
    labels = np.asarray(vertex_labels)
    if labels.shape != (num_vertices,):
        raise ValueError(f"vertex_labels must have shape ({num_vertices},), got {labels.shape}")
    return labels.astype(np.int8)


def face_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(F,) float64 triangle areas: |(b - a) x (c - a)| / 2."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator,
                   vertex_labels: np.ndarray | None = None) -> SurfaceSample:
    """`n` points uniform over the surface of a triangle mesh.

    vertices: (V, 3) float, faces: (F, 3) int, vertex_labels: (V,) int or None.
    A face is drawn with probability area / total area, then a point uniform inside it; its label is that of
    the face's vertex with the largest barycentric weight (the nearest corner in barycentric terms).
    """
    verts, tris = check_mesh("mesh", vertices, faces)
    labels = _check_labels(vertex_labels, len(verts))
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    areas = face_areas(verts, tris)
    total = areas.sum()
    if not total > 0:
        raise ValueError(f"mesh has zero total area ({total}); every face is degenerate")
    # Inverse-CDF face choice; the clip guards the last bin against cumsum rounding just below 1.
    cdf = np.cumsum(areas) / total
    face_index = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(tris) - 1).astype(np.int64)
    # Uniform in a triangle: w = (1 - sqrt(r1), sqrt(r1) (1 - r2), sqrt(r1) r2)  (Osada et al. 2002).
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    weights = np.stack([1.0 - s, s * (1.0 - r2), s * r2], axis=1)  # (n, 3)
    corners = verts[tris[face_index]]  # (n, 3 corners, 3)
    points = np.einsum("nk,nkd->nd", weights, corners).astype(np.float32)
    point_labels = None if labels is None else labels[tris[face_index, weights.argmax(1)]]
    return SurfaceSample(points, face_index, point_labels)
