"""Closing the MANO hand mesh so inside/outside tests are defined.

MANO's mesh is open at the wrist: 778 vertices and 1538 faces leave one boundary loop of 16 edges
(a closed genus-0 mesh with 778 vertices would have 2 * 778 - 4 = 1552 faces). Ray-parity `contains`
tests need a watertight surface, so each boundary loop is capped with a fan around one new vertex at
the loop's centroid. The original 778 vertices keep their indices; cap vertices are appended.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

import numpy as np
import trimesh

from ops.mesh_check import check_mesh

NUM_HAND_VERTS = 778


class ClosedMesh(NamedTuple):
    """vertices: (V + L, 3) float64, the input vertices then one cap centre per boundary loop (L loops);
    faces: (F + cap faces, 3) int64, consistently wound with the input faces."""

    vertices: np.ndarray
    faces: np.ndarray

    def trimesh(self) -> trimesh.Trimesh:
        return trimesh.Trimesh(self.vertices, self.faces, process=False)


def check_hand_verts(hand_verts: np.ndarray) -> np.ndarray:
    """(778, 3) float64 MANO vertices in metres, or ValueError naming the shape."""
    hand_verts = np.asarray(hand_verts, dtype=np.float64)
    if hand_verts.shape != (NUM_HAND_VERTS, 3):
        raise ValueError(f"hand_verts must be ({NUM_HAND_VERTS}, 3) MANO vertices, got shape {hand_verts.shape}")
    if not np.isfinite(hand_verts).all():
        raise ValueError("hand_verts contain NaN or inf")
    return hand_verts


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """Ordered vertex loops along the open boundary, each following the faces' own edge direction.

    A boundary edge (a, b) is a directed face edge whose reverse (b, a) is in no face. faces: (F, 3).
    ValueError when the boundary is not a set of simple loops (non-manifold rims cannot be capped).
    """
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])  # (3F, 2)
    present = {(int(a), int(b)) for a, b in directed}
    following: dict[int, list[int]] = defaultdict(list)
    for a, b in present:
        if (b, a) not in present:
            following[a].append(b)
    if any(len(nxt) != 1 for nxt in following.values()):
        raise ValueError("mesh boundary is not manifold: a rim vertex starts more than one open edge")
    loops, unvisited = [], set(following)
    while unvisited:
        start = min(unvisited)
        loop = [start]
        while (nxt := following[loop[-1]][0]) != start:
            if nxt not in unvisited or nxt in loop:
                raise ValueError("mesh boundary does not close into simple loops")
            loop.append(nxt)
        unvisited -= set(loop)
        loops.append(np.asarray(loop, dtype=np.int64))
    return loops


def close_mesh(vertices: np.ndarray, faces: np.ndarray) -> ClosedMesh:
    """Cap every boundary loop with a fan around its centroid; a watertight mesh comes back unchanged.

    vertices: (V, 3), faces: (F, 3). A boundary edge a -> b of an existing face becomes the cap face
    (b, a, c) with c the new centre, so the cap runs each edge the other way and the winding stays consistent.
    """
    vertices, faces = check_mesh("mesh", vertices, faces)
    new_vertices, new_faces = [vertices], [faces]
    for loop in boundary_loops(faces):
        centre = len(vertices) + len(new_vertices) - 1
        new_vertices.append(vertices[loop].mean(0, keepdims=True))
        a, b = loop, np.roll(loop, -1)
        new_faces.append(np.stack([b, a, np.full_like(a, centre)], axis=1))
    return ClosedMesh(np.concatenate(new_vertices), np.concatenate(new_faces))


def closed_hand(hand_verts: np.ndarray, hand_faces: np.ndarray) -> trimesh.Trimesh:
    """The hand as a watertight trimesh (wrist capped). hand_verts: (V, 3) metres (778 for MANO);
    hand_faces: (F, 3). Any closed surface works too, which is how the tests put a box in the hand's place."""
    return close_mesh(hand_verts, hand_faces).trimesh()
