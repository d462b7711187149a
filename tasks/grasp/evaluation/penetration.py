"""Hand-object penetration: volume (cm^3) and depth (cm), the GraspTTA / FastGrasp conventions.

Volume, as published: the object is voxelised at 5 mm with trimesh (`mesh.voxelized(pitch).points`: the voxels
its surface passes through, NOT filled); the voxel centres inside the closed hand mesh are counted,
    V = count * pitch^3   (m^3, reported x 1e6 in cm^3).
Sources: GraspTTA `gen_diverse_grasp_ho3d.py` (intersect_vox) and FastGrasp
`evaluation/mano_train/netscripts/intersect.py` (intersect_vox, called with pitch=0.005). Because only the
object's surface shell is counted, the figure measures how much of the object's *surface* the hand swallows: a
4 cm cube pushed 1.25 cm into a box-shaped hand scores 25 voxels = 3.125 cm^3 against a true 7.81 cm^3.
Filled-voxel volume: the same count over the filled voxel grid (`.fill()`), closer to the true intersection
(9.375 cm^3 in that case; surface voxels count whole, so up to half a voxel layer too much over the overlap's
boundary). It is reported in its own column and is not comparable with published tables.
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
    volume_cm3: float  # published convention: surface voxels of the object inside the hand
    depth_cm: float
    filled_volume_cm3: float  # filled voxels of the object inside the hand


def object_voxel_centres(mesh: trimesh.Trimesh, pitch: float = VOXEL_PITCH_M, filled: bool = False,
                         inside_only: bool = False) -> np.ndarray:
    """(N, 3) float64 voxel centres of a watertight object, metres: the surface voxels (the published
    convention) or, with `filled`, the filled grid. Computed once per object and reused for every grasp of it:
    voxelising costs far more than the inside test.

    inside_only keeps only centres inside the object: thin walls then stop counting the half-voxel shell
    outside them (on a synthetic mug: 2085 filled voxels for 119 cm^3, only 49 % of the centres inside it),
    for reading how much of a figure is discretisation.
    """
    if pitch <= 0:
        raise ValueError(f"pitch must be > 0, got {pitch}")
    if mesh.is_empty:
        raise ValueError("object mesh is empty")
    grid = mesh.voxelized(pitch)
    centres = np.asarray((grid.fill() if filled else grid).points, dtype=np.float64)
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
                voxel_centres: np.ndarray | None = None, pitch: float = VOXEL_PITCH_M,
                filled_centres: np.ndarray | None = None) -> Penetration:
    """The figures of one grasp. hand_verts: (N, 3) metres (the 778 MANO vertices); obj: watertight object
    mesh; voxel_centres / filled_centres: the object's surface / filled voxel centres, computed when not given."""
    if voxel_centres is None:
        voxel_centres = object_voxel_centres(obj, pitch)
    if filled_centres is None:
        filled_centres = object_voxel_centres(obj, pitch, filled=True)
    return Penetration(penetration_volume(closed_hand, voxel_centres, pitch),
                       penetration_depth(vertex_distances(hand_verts, obj)),
                       penetration_volume(closed_hand, filled_centres, pitch))


class ObjectGrasps(NamedTuple):
    """Every grasp of one object, for `object_geometry`: the object mesh (metres) and the grasps' hands."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    hands: list[tuple[np.ndarray, np.ndarray]]  # per grasp: hand_verts (778, 3) metres, hand_faces (1538, 3)
    pitch: float = VOXEL_PITCH_M


class GraspGeometry(NamedTuple):
    volume_cm3: float  # published convention (surface voxels)
    depth_cm: float
    contact_distance_m: float  # 0 when a vertex is inside the object
    filled_volume_cm3: float


def object_geometry(task: ObjectGrasps) -> list[GraspGeometry]:
    """Penetration and contact distance of every grasp of one object, voxelising the object once. A plain
    module-level function of light imports, so process-pool workers can run it without importing torch."""
    mesh = object_mesh(task.vertices, task.faces)
    surface = object_voxel_centres(mesh, task.pitch)
    filled = object_voxel_centres(mesh, task.pitch, filled=True)
    out = []
    for hand_verts, hand_faces in task.hands:
        distances = vertex_distances(hand_verts, mesh)
        hand = closed_hand(hand_verts, hand_faces)
        out.append(GraspGeometry(penetration_volume(hand, surface, task.pitch), penetration_depth(distances),
                                 contact_distance(distances), penetration_volume(hand, filled, task.pitch)))
    return out
