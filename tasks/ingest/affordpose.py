"""AffordPose: write synthetic grasps in its on-disk format, and stream grasps (real or ours) into RawSamples.

Layout (one JSON file per grasp):

    <root>/<class>/<obj_id>/<obj_id>_<Affordance>/<N>.json      e.g. mug/mug_8554/mug_8554_Handle-grasp/3.json

JSON keys and how they compose (what this module writes and reads back):

    object_mesh   OBJ text of the object in its own (local) frame. Each `v` line carries a 5th token, the
                  per-vertex AffordPose label id (schemas.affordance.AFFORDPOSE_LABEL_IDS).
    quat_obj      (w, x, y, z) unit quaternion, trans_obj (3,): the object's pose in the GraspIt! world:
                      x_world = R(quat_obj) @ x_object + trans_obj
    rhand_mesh    OBJ text of the posed right hand, 778 vertices, in the hand's (palm) frame; its pose:
                      x_world = R(rhand_quat) @ x_hand + rhand_trans
    dofs          GraspIt! joint values. Not read: their meaning has not been checked against the GraspIt!
                  MANO model. Our writer stores the record's 45 MANO finger values there.
    afford_name   the grasp's affordance, AffordPose spelling ("Handle-grasp"); class_name the object class.

Units. Translations (trans_obj, rhand_trans) are millimetres, as GraspIt! and the AffordPose issue state.
ASSUMED, NOT VERIFIED: the coordinates in both OBJ texts are millimetres too (GraspIt!'s unit). Check a real
file (e.g. the object's extent should be ~100, not ~0.1, for a mug) and change MESH_TO_METRES if not.

Canonical record: object vertices in metres minus the object mesh's volume centroid c (trimesh center_mass of
the local mesh), and the hand brought into that frame:
    x_canonical = R(quat_obj)^T @ (x_world - trans_obj) * 0.001 - c
AffordPose has no MANO parameters here: the hand stays a mesh (hand_verts); hand_pose/betas/trans are None.
Split: md5(obj_id) % 10 (split_for), as AffordPose files give none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.affordance import AFFORDPOSE_LABEL_IDS, normalise_affordance
from schemas.ids import hash_bytes, make_sample_id
from schemas.rows import Reject
from tasks.ingest.common import (
    DATA_ERRORS,
    NUM_HAND_VERTS,
    GraspRecord,
    IngestError,
    RawSample,
    as_ingest_error,
    check_finite,
    dataset_root,
    read_bytes,
    reject_from,
    split_for,
    walk_files,
)
from tasks.ingest.mano_frame import matrix_to_quat_wxyz, quat_wxyz_to_matrix, random_rotation
from tasks.ingest.meshes import CanonicalMesh, MeshCache, canonical_mesh
from tasks.ingest.obj_text import format_obj, parse_obj

DATASET = "affordpose"
MESH_TO_METRES = 1e-3  # OBJ text coordinates: millimetres (assumed, see the module docstring)
TRANS_TO_METRES = 1e-3  # trans_obj, rhand_trans: millimetres
WORLD_EXTENT_M = 0.5  # writer: world translations drawn in a +-0.5 m cube


@dataclass(frozen=True)
class _Pose:
    rotation: np.ndarray  # (3, 3)
    translation_m: np.ndarray  # (3,) metres


# -- writer --------------------------------------------------------------------------------------------------
def affordpose_name(affordance: str) -> str:
    """AffordPose's spelling of a canonical affordance: "handle-grasp" -> "Handle-grasp"."""
    name = normalise_affordance(affordance)
    return name[:1].upper() + name[1:]


def write_affordpose(root: str | Path, records: Iterable[GraspRecord], rng: np.random.Generator) -> list[Path]:
    """Write each record as `<category>/<object_id>/<object_id>_<Affordance>/<N>.json` with the object and the
    hand in a random world pose. Records need affordance and hand_verts (778, 3). Returns the files written."""
    root = Path(root)
    written: list[Path] = []
    for record in records:
        folder = root / record.category / record.object_id / f"{record.object_id}_{affordpose_name(_need(record))}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{len(list(folder.glob('*.json')))}.json"
        path.write_text(json.dumps(_grasp_json(record, rng)))
        written.append(path)
    return written


def _need(record: GraspRecord) -> str:
    if record.affordance is None or record.hand_verts is None:
        raise ValueError(f"AffordPose record {record.object_id}: needs affordance and hand_verts")
    if np.shape(record.hand_verts) != (NUM_HAND_VERTS, 3):
        raise ValueError(f"AffordPose record {record.object_id}: hand_verts must be (778, 3), "
                         f"got {np.shape(record.hand_verts)}")
    return record.affordance


def _random_pose(rng: np.random.Generator) -> _Pose:
    return _Pose(random_rotation(rng), rng.uniform(-WORLD_EXTENT_M, WORLD_EXTENT_M, size=3))


def _grasp_json(record: GraspRecord, rng: np.random.Generator) -> dict:
    obj, hand = _random_pose(rng), _random_pose(rng)
    vertices = np.asarray(record.object_vertices, np.float64)
    hand_world = np.asarray(record.hand_verts, np.float64) @ obj.rotation.T + obj.translation_m
    hand_local = (hand_world - hand.translation_m) @ hand.rotation  # R^T (x - t), row-wise
    labels = record.object_vertex_labels
    labels = np.zeros(len(vertices), np.int8) if labels is None else labels
    fingers = [] if record.hand_pose is None else [float(v) for v in np.asarray(record.hand_pose)[3:]]
    return {
        "rhand_mesh": format_obj(hand_local / MESH_TO_METRES, record.hand_faces),
        "dofs": fingers,
        "rhand_trans": (hand.translation_m / TRANS_TO_METRES).tolist(),
        "rhand_quat": matrix_to_quat_wxyz(hand.rotation).tolist(),
        "object_mesh": format_obj(vertices / MESH_TO_METRES, record.object_faces, labels),
        "trans_obj": (obj.translation_m / TRANS_TO_METRES).tolist(),
        "quat_obj": matrix_to_quat_wxyz(obj.rotation).tolist(),
        "afford_name": affordpose_name(record.affordance),
        "class_name": record.category,
    }


# -- loader --------------------------------------------------------------------------------------------------
def iter_affordpose(root: str | Path, *, require_watertight: bool = True, cache_size: int = 8
                    ) -> Iterator[RawSample | Reject]:
    """Stream every `<class>/<obj_id>/<obj_id>_<Affordance>/<N>.json` under `root`, in sorted order, as a
    RawSample in the canonical frame, or as a Reject naming the file and field when anything is wrong.
    Meshes are cached by the hash of their OBJ text (each object repeats it in every grasp file)."""
    root = dataset_root(root)
    cache = MeshCache(cache_size)
    for path in walk_files(root, ".json"):
        relative = path.relative_to(root).as_posix()
        try:
            yield _load_grasp(path, relative, cache, require_watertight)
        except (IngestError, *DATA_ERRORS) as exc:
            yield reject_from(as_ingest_error(relative, exc), DATASET, source=relative)


def _load_grasp(path: Path, relative: str, cache: MeshCache, require_watertight: bool) -> RawSample:
    payload = read_bytes(path, relative, "json")
    data = _parse_json(payload, relative)
    parts = Path(relative).parts
    if len(parts) != 4:
        raise IngestError(relative, "path", "expected <class>/<obj_id>/<obj_id>_<Affordance>/<N>.json")
    category, object_id = str(data.get("class_name") or parts[0]), parts[1]
    affordance = _affordance(data, parts[2], relative)
    try:
        mesh = cache.get(hash_bytes(_text(data, "object_mesh", relative).encode()),
                         lambda: _object_mesh(data["object_mesh"], relative, require_watertight))
    except IngestError as exc:
        # The mesh is embedded in each file: a cached error from another file must name this one.
        raise IngestError(relative, exc.field, exc.reason) from None
    obj = _pose(data, "quat_obj", "trans_obj", relative)
    hand = _pose(data, "rhand_quat", "rhand_trans", relative)
    hand_local = _hand_vertices(_text(data, "rhand_mesh", relative), relative)
    hand_world = hand_local @ hand.rotation.T + hand.translation_m
    hand_canonical = (hand_world - obj.translation_m) @ obj.rotation - mesh.centroid  # R^T (x - t) - c
    return RawSample(
        sample_id=make_sample_id(DATASET, relative, 0), dataset=DATASET, split=split_for(object_id),
        source_path=relative, source_index=0, content_hash=hash_bytes(payload), object_id=object_id,
        object_category=category, object_mesh_path=None, object_vertices=mesh.vertices,
        object_faces=mesh.faces, object_vertex_labels=mesh.labels, hand_verts=hand_canonical,
        affordance=affordance)


def _parse_json(payload: bytes, relative: str) -> dict:
    try:
        data = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IngestError(relative, "json", f"truncated or invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise IngestError(relative, "json", f"expected a JSON object, got {type(data).__name__}")
    return data


def _text(data: dict, key: str, relative: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise IngestError(relative, key, "missing or not OBJ text")
    return value


def _affordance(data: dict, folder: str, relative: str) -> str:
    # The JSON's afford_name wins; the folder suffix (<obj_id>_<Affordance>) is the fallback.
    name = data.get("afford_name") or folder.rsplit("_", 1)[-1]
    try:
        return normalise_affordance(str(name))
    except ValueError as exc:
        raise IngestError(relative, "afford_name", str(exc)) from None


def _object_mesh(text: str, relative: str, require_watertight: bool) -> CanonicalMesh:
    vertices, faces, labels = parse_obj(text, relative, field="object_mesh")
    if labels is not None:
        unknown = sorted(set(np.unique(labels).tolist()) - set(AFFORDPOSE_LABEL_IDS))
        if unknown:
            raise IngestError(relative, "object_mesh", f"unknown AffordPose vertex label ids {unknown}")
    return canonical_mesh(vertices * MESH_TO_METRES, faces, labels, relative, require_watertight,
                          hash_bytes(text.encode()), None, field="object_mesh")


def _pose(data: dict, quat_key: str, trans_key: str, relative: str) -> _Pose:
    quat = check_finite(quat_key, data.get(quat_key), (4,), relative)
    norm = float(np.linalg.norm(quat))
    if abs(norm - 1.0) > 1e-3:
        raise IngestError(relative, quat_key, f"quaternion norm {norm:.6f}, expected 1")
    translation = check_finite(trans_key, data.get(trans_key), (3,), relative) * TRANS_TO_METRES
    return _Pose(quat_wxyz_to_matrix(quat), translation)


def _hand_vertices(text: str, relative: str) -> np.ndarray:
    vertices, _, _ = parse_obj(text, relative, require_faces=False, field="rhand_mesh")
    if vertices.shape != (NUM_HAND_VERTS, 3):
        raise IngestError(relative, "rhand_mesh", f"expected {NUM_HAND_VERTS} hand vertices, got {len(vertices)}")
    return vertices * MESH_TO_METRES
