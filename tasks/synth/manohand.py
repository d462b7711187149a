"""A GraspIt!-ManoHand-style hand for the synthetic AffordPose files, built around a posed MANO hand.

AffordPose stores GraspIt!'s ManoHand: 16 rigid part meshes (palm + three segments per digit), each a closed
genus-0 surface, 946 vertices and 1828 faces in all, posed in the object frame. The part sizes below are the
vertex counts of the part meshes in the AffordPose repository (GentlesJan/AffordPose, ManoHand/off/*.obj);
each part has 2V - 4 faces, as a closed genus-0 mesh must.

We do not have GraspIt!'s kinematics here, so each part is an ellipsoid fitted to the MANO vertices that
joint skins most (centre = their mean, axes = their principal directions, radii = sqrt(3 * variance), the
radii of the ellipsoid whose surface has that spread), with its vertices spread by a Fibonacci lattice and
triangulated as their convex hull. The palm pose is MANO's: rotation = the global axis-angle, translation =
the wrist joint; `dofs` holds the rotation angle (rad) of each of the 15 finger joints, then 0 (GraspIt!'s
ManoHand has 16 DOFs; their exact convention is not reproduced, and the loader only keeps them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull

from models.mano_pickle import ManoParams
from tasks.ingest.mano_frame import rotvec_to_matrix

# MANO joint -> ManoHand part vertex count. MANO's chain order: 0 wrist (palm), 1-3 index, 4-6 middle,
# 7-9 pinky, 10-12 ring, 13-15 thumb; ManoHand's parts: palm, index1-3, mid1-3, pinky1-3, ring1-3, thumb1-3.
PART_VERTICES = (227, 46, 41, 61, 44, 39, 62, 36, 42, 61, 43, 43, 62, 35, 42, 62)
NUM_VERTICES = sum(PART_VERTICES)  # 946
NUM_FACES = sum(2 * v - 4 for v in PART_VERTICES)  # 1828
MIN_RADIUS_M = 0.002  # a part is at least 4 mm across along every axis


@dataclass(frozen=True)
class ManoHandGrasp:
    """vertices: (946, 3) metres, object frame; faces: (1828, 3); dofs: (16,) rad; palm_rotation: (3, 3) and
    palm_translation: (3,) metres, the pose of the palm frame in the object frame."""

    vertices: np.ndarray
    faces: np.ndarray
    dofs: np.ndarray
    palm_rotation: np.ndarray
    palm_translation: np.ndarray


def manohand_from_mano(verts: np.ndarray, pose: np.ndarray, params: ManoParams) -> ManoHandGrasp:
    """verts: (778, 3) posed MANO vertices of `params`' hand; pose: (48,) MANO axis-angle (global rotation, then
    15 finger joints). Parts follow the skinning weights; the palm sits at the wrist joint regressed from verts."""
    owner = np.argmax(params.weights, axis=1)
    wrist = params.J_regressor[0] @ np.asarray(verts, np.float64)
    vertices, faces = [], []
    for joint, count in enumerate(PART_VERTICES):
        part_vertices, part_faces = _ellipsoid_part(np.asarray(verts, np.float64)[owner == joint], count)
        faces.append(part_faces + sum(len(v) for v in vertices))
        vertices.append(part_vertices)
    fingers = np.asarray(pose, np.float64)[3:].reshape(15, 3)
    dofs = np.append(np.linalg.norm(fingers, axis=1), 0.0)
    return ManoHandGrasp(np.concatenate(vertices), np.concatenate(faces), dofs,
                         rotvec_to_matrix(np.asarray(pose, np.float64)[:3]), wrist)


def _ellipsoid_part(points: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(count, 3) vertices on the ellipsoid fitted to `points` (P, 3), and (2 count - 4, 3) outward faces."""
    if len(points) < 4:
        raise ValueError(f"a hand part needs >= 4 MANO vertices to fit, got {len(points)}")
    centre = points.mean(axis=0)
    variance, axes = np.linalg.eigh(np.cov((points - centre).T))
    radii = np.maximum(np.sqrt(3.0 * np.clip(variance, 0.0, None)), MIN_RADIUS_M)
    vertices = centre + (_fibonacci_sphere(count) * radii) @ axes.T
    hull = ConvexHull(vertices)
    if len(hull.vertices) != count:  # every lattice point lies on a strictly convex surface: all are extreme
        raise ValueError(f"hand part hull kept {len(hull.vertices)} of {count} vertices")
    faces = hull.simplices.astype(np.int64)
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    outward = np.einsum("ij,ij->i", np.cross(b - a, c - a), (a + b + c) / 3 - centre) > 0
    faces[~outward] = faces[~outward][:, ::-1]
    return vertices, faces


def _fibonacci_sphere(count: int) -> np.ndarray:
    """(count, 3) unit vectors spread evenly over the sphere (golden-angle spiral)."""
    k = np.arange(count) + 0.5
    z = 1.0 - 2.0 * k / count
    theta = np.pi * (3.0 - np.sqrt(5.0)) * k
    r = np.sqrt(1.0 - z * z)
    return np.stack([r * np.cos(theta), r * np.sin(theta), z], axis=1)
