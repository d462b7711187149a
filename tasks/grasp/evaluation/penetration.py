"""Hand-object penetration: volume (cm^3) and depth (cm), the GraspTTA / FastGrasp conventions.

Volume: the object is voxelised at 5 mm and filled; the voxel centres inside the closed hand mesh are counted,
    V = count * pitch^3   (m^3, reported x 1e6 in cm^3).
The voxel grid is trimesh's (centres on integer multiples of the pitch), and surface voxels count as filled, so
the figure over-estimates a true intersection by up to about half a voxel layer over the overlap's boundary.
Depth: the largest distance to the object surface over hand vertices inside the object (0 when none is), in cm.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import trimesh

from ops.hand_mesh import closed_hand
from tasks.grasp.evaluation.contact import VertexDistances, contact_distance, object_mesh, vertex_distances

VOXEL_PITCH_M = 0.005
M3_TO_CM3 = 1e6
M_TO_CM = 100.0


class Penetration(NamedTuple):
    volume_cm3: float
    depth_cm: float


def object_voxel_centres(mesh: trimesh.Trimesh, pitch: float = VOXEL_PITCH_M,
                         inside_only: bool = False) -> np.ndarray:
    """(N, 3) float64 centres of the filled voxels of a watertight object, metres. Computed once per object and
    reused for every grasp of it: voxelising costs far more than the inside test.

    inside_only keeps only centres inside the object. Off by default (the published convention); on, thin
    walls stop counting the half-voxel shell outside them (on a synthetic mug: 2085 voxels for 119 cm^3, only
    49 % of the centres inside it), for reading how much of a figure is discretisation.
    """
    if pitch <= 0:
        raise ValueError(f"pitch must be > 0, got {pitch}")
    if mesh.is_empty:
        raise ValueError("object mesh is empty")
    centres = np.asarray(mesh.voxelized(pitch).fill().points, dtype=np.float64)
    return centres[mesh.contains(centres)] if inside_only else centres


def penetration_volume(closed_hand: trimesh.Trimesh, voxel_centres: np.ndarray,
                       pitch: float = VOXEL_PITCH_M) -> float:
    """cm^3 of object voxels inside the hand: count(centres inside hand) * pitch^3 * 1e6.

    closed_hand: watertight hand mesh (ops.hand_mesh.closed_hand); voxel_centres: (N, 3) metres from
    `object_voxel_centres` with the same pitch.
    """
    voxel_centres = np.asarray(voxel_centres, dtype=np.float64)
    if voxel_centres.ndim != 2 or voxel_centres.shape[1] != 3:
        raise ValueError(f"voxel_centres must be (N, 3), got shape {voxel_centres.shape}")
    if len(voxel_centres) == 0:
        return 0.0
    # Only centres inside the hand's bounding box can be inside the hand: skips most ray casts.
    low, high = closed_hand.bounds
    near = np.all((voxel_centres >= low) & (voxel_centres <= high), axis=1)
    if not near.any():
        return 0.0
    count = int(closed_hand.contains(voxel_centres[near]).sum())
    return count * pitch ** 3 * M3_TO_CM3


def penetration_depth(distances: VertexDistances) -> float:
    """cm: max over hand vertices inside the object of their distance to the surface; 0 when none is inside."""
    if not distances.inside.any():
        return 0.0
    return float(distances.distance[distances.inside].max()) * M_TO_CM


def penetration(closed_hand: trimesh.Trimesh, hand_verts: np.ndarray, obj: trimesh.Trimesh,
                voxel_centres: np.ndarray | None = None, pitch: float = VOXEL_PITCH_M) -> Penetration:
    """Both figures of one grasp. hand_verts: (N, 3) metres (the 778 MANO vertices); obj: watertight object
    mesh; voxel_centres: the object's filled voxel centres, computed here when not given."""
    if voxel_centres is None:
        voxel_centres = object_voxel_centres(obj, pitch)
    return Penetration(penetration_volume(closed_hand, voxel_centres, pitch),
                       penetration_depth(vertex_distances(hand_verts, obj)))


class ObjectGrasps(NamedTuple):
    """Every grasp of one object, for `object_geometry`: the object mesh (metres) and the grasps' hands."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    hands: list[tuple[np.ndarray, np.ndarray]]  # per grasp: hand_verts (778, 3) metres, hand_faces (1538, 3)
    pitch: float = VOXEL_PITCH_M


class GraspGeometry(NamedTuple):
    volume_cm3: float
    depth_cm: float
    contact_distance_m: float  # 0 when a vertex is inside the object


def object_geometry(task: ObjectGrasps) -> list[GraspGeometry]:
    """Penetration and contact distance of every grasp of one object, voxelising the object once. A plain
    module-level function of light imports, so process-pool workers can run it without importing torch."""
    mesh = object_mesh(task.vertices, task.faces)
    voxels = object_voxel_centres(mesh, task.pitch)
    out = []
    for hand_verts, hand_faces in task.hands:
        distances = vertex_distances(hand_verts, mesh)
        volume = penetration_volume(closed_hand(hand_verts, hand_faces), voxels, task.pitch)
        out.append(GraspGeometry(volume, penetration_depth(distances), contact_distance(distances)))
    return out
