"""Hand-object contact: per-vertex inside flags and surface distances, and the contact ratio over grasps.

Convention (GraspTTA): a grasp is in contact when any hand vertex is inside the object or within 5 mm of its
surface; the contact ratio is the share of grasps in contact, in percent. FastGrasp's OakInk evaluation
(`eval_adapt.py`, `eval_ae.py`) counts instead the grasps with a non-zero penetration volume; evaluate.py reports
that convention in its own column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import trimesh

from ops.mesh_check import check_mesh

CONTACT_THRESHOLD_M = 0.005


class VertexDistances(NamedTuple):
    """inside: (N,) bool, vertex inside the object; distance: (N,) float64 metres to the nearest surface point."""

    inside: np.ndarray
    distance: np.ndarray


def object_mesh(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    """Validated object trimesh (metres). vertices: (V, 3), faces: (F, 3); ValueError when empty or malformed."""
    vertices, faces = check_mesh("object", vertices, faces)
    return trimesh.Trimesh(vertices, faces, process=False)


def vertex_distances(points: np.ndarray, mesh: trimesh.Trimesh) -> VertexDistances:
    """Inside test (ray parity; needs a watertight object) and exact distance to the surface. points: (N, 3) m."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must be (N, 3) with N > 0, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points contain NaN or inf")
    _, distance, _ = trimesh.proximity.closest_point(mesh, points)
    return VertexDistances(mesh.contains(points), np.asarray(distance, dtype=np.float64))


def contact_distance(distances: VertexDistances) -> float:
    """Metres from the hand to the object: 0 when any vertex is inside, else the smallest vertex distance."""
    return 0.0 if distances.inside.any() else float(distances.distance.min())


def in_contact(distances: VertexDistances, threshold_m: float = CONTACT_THRESHOLD_M) -> bool:
    """Any vertex inside, or within `threshold_m` of the surface."""
    if threshold_m < 0:
        raise ValueError(f"threshold_m must be >= 0, got {threshold_m}")
    return contact_distance(distances) <= threshold_m


def contact_ratio(flags: Sequence[bool]) -> float:
    """Share of grasps in contact, percent: 100 * sum(flags) / len(flags). ValueError on no grasps."""
    if len(flags) == 0:
        raise ValueError("contact_ratio needs at least one grasp, got none")
    return 100.0 * float(np.mean(np.asarray(flags, dtype=bool)))
