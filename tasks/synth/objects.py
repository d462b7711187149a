"""Synthetic objects of the 13 reference categories, built from parametric primitives.

Each object is a set of parts (cylinders, surfaces of revolution, boxes, prisms, tubes swept along planar
curves); every part carries one affordance, and every vertex carries its part's AffordPose label id.
Proportions are drawn from a numpy Generator within realistic ranges, in METRES (a mug is 8-11 cm tall).

Frame: z is up while an object is built (it rests on z = 0), then the whole object is shifted so that the
volume centroid of its mesh is at the origin; part centres are given in that shifted frame.

Mesh: the concatenation of the parts' shells. Each shell is closed and consistently wound with outward
normals (every edge is shared by exactly two faces, positive volume). Shells may overlap where parts join
(a handle's end sits inside the mug wall): the mesh is then watertight as trimesh sees it (every edge has
two faces) but not a single 2-manifold solid, and "volume" counts overlaps twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from schemas.affordance import OBJECT_CLASSES
from tasks.synth.object_builders import _BUILDERS
from tasks.synth.shapes import ObjectPart, _Piece

CATEGORIES: tuple[str, ...] = OBJECT_CLASSES
MAX_VERTICES = 4000



@dataclass
class SynthObject:
    """A synthetic object: its mesh (concatenated part shells), per-vertex labels and parts.

    vertices: (V, 3) float32, metres, volume centroid at the origin, z up.
    faces: (F, 3) int32, outward (counter-clockwise seen from outside) winding.
    vertex_labels: (V,) int8 AffordPose label ids (schemas.affordance.AFFORDPOSE_LABEL_IDS).
    """

    category: str
    object_id: str
    vertices: np.ndarray
    faces: np.ndarray
    vertex_labels: np.ndarray
    parts: list[ObjectPart] = field(default_factory=list)

    def part(self, affordance: str) -> ObjectPart:
        """The first part carrying `affordance`; ValueError if none does."""
        for part in self.parts:
            if part.affordance == affordance:
                return part
        raise ValueError(f"affordance {affordance!r} not on {self.object_id}; it has {', '.join(self.affordances())}")

    def affordances(self) -> list[str]:
        """The affordances of the object's parts, each once, in part order."""
        return list(dict.fromkeys(part.affordance for part in self.parts))


# ---------------------------------------------------------------- primitives


# ---------------------------------------------------------------- categories


# ---------------------------------------------------------------- assembly


def _volume_centroid(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(3,) centroid of the enclosed volume: sum over tetrahedra (0, a, b, c) of volume * (a + b + c) / 4."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    volume = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0  # (F,)
    return (volume[:, None] * (a + b + c)).sum(0) / (4.0 * volume.sum())


def _assemble(category: str, object_id: str, pieces: list[_Piece]) -> SynthObject:
    vertices, faces, labels, offset = [], [], [], 0
    for piece in pieces:
        for shell in piece.shells:
            vertices.append(shell.vertices)
            faces.append(shell.faces + offset)
            labels.append(np.full(len(shell.vertices), piece.part.label_id, np.int8))
            offset += len(shell.vertices)
    verts, tris = np.concatenate(vertices), np.concatenate(faces)
    centroid = _volume_centroid(verts, tris)
    parts = [piece.part for piece in pieces]
    for part in parts:
        part.centre = part.centre - centroid
    return SynthObject(category, object_id, (verts - centroid).astype(np.float32), tris.astype(np.int32),
                       np.concatenate(labels), parts)


def make_object(category: str, rng: np.random.Generator, object_id: str) -> SynthObject:
    """One synthetic object of `category` with proportions drawn from `rng`; see the module docstring."""
    if category not in _BUILDERS:
        raise ValueError(f"category {category!r} is unknown; expected one of {', '.join(CATEGORIES)}")
    return _assemble(category, object_id, _BUILDERS[category](rng))


def make_objects(per_category: int, seed: int) -> list[SynthObject]:
    """`per_category` objects of every category, ids "<category>-<index:03d>".

    Each object has its own generator seeded by (seed, category, index), so an object does not change when
    `per_category` does.
    """
    if per_category < 1:
        raise ValueError(f"per_category must be >= 1, got {per_category}")
    return [make_object(category, np.random.default_rng([seed, c, i]), f"{category}-{i:03d}")
            for c, category in enumerate(CATEGORIES) for i in range(per_category)]

