"""Per-item 3-D geometry for the review page: the hand mesh and the object mesh of a queue item, written as one
compact JSON file beside the item's picture (`<images_dir>/<cycle>/<position>.geometry.json`).

The web app serves it by (cycle, position) only, never by a path from the request. A file over
`MAX_GEOMETRY_BYTES` is not written: the page then keeps the two static views and says why.

    {"hand": {"vertices": [x, y, z, ...] (metres, 0.1 mm steps), "faces": [i, j, k, ...]},
     "object": {"vertices": [...], "faces": [...], "labels": [label id per vertex] or null},
     "parts": {label id: affordance name}, "predicted": class, "predicted_part": [label ids of that class],
     "contact": [object vertex indices within CONTACT_M of a hand vertex],
     "touch": [x, y, z] (the mean of the contact vertices, or of the object: where the view snaps to)}

Contact is measured vertex to vertex (the object's mesh vertices against the hand's), a close stand-in for the
surface distance on meshes as dense as these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from schemas.affordance import AFFORDPOSE_LABEL_IDS
from schemas.review import QueueItem
from schemas.rows import Sample

MAX_GEOMETRY_BYTES = 4 * 2**20  # what a browser parses and draws at once without a stall on a laptop
CONTACT_M = 0.005  # the 5 mm contact distance of the grasp evaluation (GraspTTA's)


class GeometryTooLarge(ValueError):
    """The item's geometry would exceed MAX_GEOMETRY_BYTES; the page keeps the static views."""


def geometry_path(out_dir: Path, position: int) -> Path:
    return Path(out_dir) / f"{position}.geometry.json"


def item_geometry(item: QueueItem, sample: Sample, hand_faces: np.ndarray) -> dict:
    """The JSON body for one item. hand_faces: (F, 3) int, used when the row carries no hand mesh of its own."""
    if sample.object_vertices is None or sample.object_faces is None or sample.hand_verts is None:
        raise ValueError(f"sample {sample.sample_id} lacks a mesh (object_vertices/object_faces/hand_verts)")
    return geometry_body(item.predicted, sample.hand_verts,
                         sample.hand_faces if sample.hand_faces is not None else hand_faces,
                         sample.object_vertices, sample.object_faces, sample.object_vertex_labels)


def geometry_body(predicted: str, hand_verts: ArrayLike, hand_faces: ArrayLike, object_vertices: ArrayLike,
                  object_faces: ArrayLike, object_vertex_labels: ArrayLike | None) -> dict:
    """hand_verts (H, 3) m, hand_faces (F, 3), object_vertices (V, 3) m, object_faces (G, 3), labels (V,) or None."""
    from scipy.spatial import cKDTree  # here, not at import: the web app imports this module and never calls it

    hand = np.asarray(hand_verts, dtype=np.float64)
    obj = np.asarray(object_vertices, dtype=np.float64)
    labels = None if object_vertex_labels is None else np.asarray(object_vertex_labels, np.int64)
    distance, _ = cKDTree(hand).query(obj, k=1)
    contact = np.flatnonzero(distance <= CONTACT_M)
    touch = obj[contact].mean(0) if len(contact) else obj.mean(0)
    part = [i for i, name in AFFORDPOSE_LABEL_IDS.items() if name == predicted]
    return {"hand": {"vertices": _round(hand), "faces": np.asarray(hand_faces, np.int64).reshape(-1).tolist()},
            "object": {"vertices": _round(obj), "faces": np.asarray(object_faces, np.int64).reshape(-1).tolist(),
                       "labels": None if labels is None else labels.tolist()},
            "parts": {str(i): name for i, name in AFFORDPOSE_LABEL_IDS.items()},
            "predicted": predicted, "predicted_part": part, "contact": contact.tolist(),
            "touch": [round(float(v), 4) for v in touch]}


def write_body(body: dict, out_dir: Path, position: int, what: str) -> Path:
    """Write one geometry body atomically; GeometryTooLarge (naming `what` and the size) over the limit."""
    data = json.dumps(body, separators=(",", ":")).encode()
    if len(data) > MAX_GEOMETRY_BYTES:
        raise GeometryTooLarge(f"{what}: 3-D geometry of {len(data) / 2**20:.1f} MiB is over the page's "
                               f"{MAX_GEOMETRY_BYTES / 2**20:.0f} MiB limit")
    path = geometry_path(out_dir, position)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return path


def write_geometry(item: QueueItem, sample: Sample, hand_faces: np.ndarray, out_dir: Path) -> Path:
    """Write the item's geometry to `out_dir/<position>.geometry.json`; GeometryTooLarge over the limit."""
    return write_body(item_geometry(item, sample, hand_faces), out_dir, item.position, f"sample {sample.sample_id}")


def _round(points: np.ndarray) -> list[float]:
    """Flat coordinates in metres at 0.1 mm: plenty for a view, a third of the JSON of full floats."""
    return np.round(points.reshape(-1), 4).tolist()
