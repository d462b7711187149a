"""AffordPose: stream its grasp files into RawSamples, and write synthetic grasps in the same format.

Layout (one JSON file per grasp, numbered from 1):

    <root>/<class>/<obj_id>/<obj_id>_<Affordance>/<N>.json      e.g. bottle/3574/3574_Wrap-grasp/1.json

JSON keys, as the official sample (GentlesJan/AffordPose, samples/data.json) has them:

    object_mesh   the object as a JSON list of OBJ lines ("v x y z label\n", "f a b c\n"), metres, in the object
                  frame. Each `v` line carries a 5th token, the vertex's part label (schemas.affordance ids 0-9).
                  The sample bottle spans 0.096 x 0.238 x 0.096 m.
    rhand_mesh    GraspIt!'s ManoHand as a list of OBJ lines, metres, already posed in the object frame: 16 rigid
                  part meshes, 946 vertices, 1828 faces. As stored it touches the sample bottle (within 0.2 mm).
    rhand_trans   (3,) mm and rhand_quat (w, x, y, z): the GraspIt! palm pose that produced rhand_mesh (the
                  repository's ManoHand_xml2mesh.py). Checked (finite, unit) and not applied: the mesh is posed.
    dofs          the 16 GraspIt! joint values; kept as hand_dofs.
    trans_obj, quat_obj  the object's GraspIt! pose; identity in the sample. Checked and not applied.
    afford_name   the grasp's affordance, AffordPose spelling ("Wrap-grasp"); class_name the object class.

A single OBJ string is accepted for either mesh as well as a list of lines.

Canonical record: the object's vertices minus the object mesh's volume centroid c (trimesh center_mass), and the
hand mesh as stored minus the same c. AffordPose has no MANO parameters: the row keeps the hand mesh
(hand_verts, hand_faces, hand_model="graspit_manohand") and the dofs. Split: md5(obj_id) % 10 (split_for).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ops.mesh_check import check_mesh
from schemas.affordance import AFFORDPOSE_LABEL_IDS, normalise_affordance
from schemas.ids import hash_bytes, make_sample_id
from schemas.rows import Reject
from tasks.ingest.common import (
    GraspRecord,
    IngestError,
    RawSample,
    check_finite,
    dataset_root,
    last_resort,
    parse_json,
    read_bytes,
    reject_from,
    split_for,
    walk_files,
)
from tasks.ingest.mano_frame import matrix_to_quat_wxyz
from tasks.ingest.meshes import CanonicalMesh, MeshCache, canonical_mesh
from tasks.ingest.obj_text import format_obj, parse_obj

DATASET = "affordpose"
HAND_MODEL = "graspit_manohand"
NUM_DOFS = 16  # GraspIt!'s ManoHand (HumanHand16DOF)
TRANS_TO_METRES = 1e-3  # rhand_trans, trans_obj: millimetres (GraspIt!'s unit); the meshes are in metres
QUAT_TOLERANCE = 1e-3


# -- writer --------------------------------------------------------------------------------------------------
def affordpose_name(affordance: str) -> str:
    """AffordPose's spelling of a canonical affordance: "handle-grasp" -> "Handle-grasp"."""
    name = normalise_affordance(affordance)
    return name[:1].upper() + name[1:]


def write_affordpose(root: str | Path, records: Iterable[GraspRecord]) -> list[Path]:
    """Write each record as `<category>/<object_id>/<object_id>_<Affordance>/<N>.json`, N from 1, as the official
    files are. Records need affordance, a posed non-MANO hand mesh (hand_verts, hand_faces), hand_dofs (16,)
    and the palm pose (palm_rotation, palm_translation). Returns the files written."""
    root = Path(root)
    written: list[Path] = []
    for record in records:
        folder = root / record.category / record.object_id / f"{record.object_id}_{affordpose_name(_need(record))}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{len(list(folder.glob('*.json'))) + 1}.json"
        path.write_text(json.dumps(_grasp_json(record)))
        written.append(path)
    return written


def _need(record: GraspRecord) -> str:
    missing = [name for name in ("affordance", "hand_verts", "hand_faces", "hand_dofs", "palm_rotation",
                                 "palm_translation") if getattr(record, name) is None]
    if missing:
        raise ValueError(f"AffordPose record {record.object_id}: needs {', '.join(missing)}")
    if np.shape(record.hand_dofs) != (NUM_DOFS,):
        raise ValueError(f"AffordPose record {record.object_id}: hand_dofs must be ({NUM_DOFS},), "
                         f"got {np.shape(record.hand_dofs)}")
    return record.affordance


def _obj_lines(vertices: np.ndarray, faces: np.ndarray, labels: np.ndarray | None = None) -> list[str]:
    return format_obj(vertices, faces, labels).splitlines(keepends=True)


def _grasp_json(record: GraspRecord) -> dict:
    vertices = np.asarray(record.object_vertices, np.float64)
    labels = record.object_vertex_labels
    labels = np.zeros(len(vertices), np.int8) if labels is None else labels
    return {
        "rhand_mesh": _obj_lines(np.asarray(record.hand_verts, np.float64), record.hand_faces),
        "dofs": [float(v) for v in record.hand_dofs],
        "rhand_trans": (np.asarray(record.palm_translation, np.float64) / TRANS_TO_METRES).tolist(),
        "rhand_quat": matrix_to_quat_wxyz(record.palm_rotation).tolist(),
        "object_mesh": _obj_lines(vertices, record.object_faces, labels),
        "trans_obj": [0, 0, 0],
        "quat_obj": [1, 0, 0, 0],
        "afford_name": affordpose_name(record.affordance),
        "class_name": record.category,
    }


# -- loader --------------------------------------------------------------------------------------------------
def affordpose_sources(root: str | Path) -> Iterator[Path]:
    """Every grasp JSON under `root`, in sorted order: one grasp each."""
    return walk_files(dataset_root(root), ".json")


def iter_affordpose(root: str | Path, *, require_watertight: bool = True, cache_size: int = 8,
                    paths: Iterable[Path] | None = None) -> Iterator[RawSample | Reject]:
    """Stream every `<class>/<obj_id>/<obj_id>_<Affordance>/<N>.json` under `root`, in sorted order, as a
    RawSample in the canonical frame, or as a Reject naming the file and field when anything is wrong.
    Meshes are cached by the hash of their OBJ text (each object repeats it in every grasp file).
    `paths`: only these files (some of `affordpose_sources`)."""
    root = dataset_root(root)
    cache = MeshCache(cache_size)
    for path in affordpose_sources(root) if paths is None else paths:
        relative = path.relative_to(root).as_posix()
        try:
            item = _load_grasp(path, relative, cache, require_watertight)
        except Exception as exc:  # one file never stops an ingest (last_resort)
            item = reject_from(last_resort(relative, exc), DATASET, source=relative)
        yield item


def _load_grasp(path: Path, relative: str, cache: MeshCache, require_watertight: bool) -> RawSample:
    payload = read_bytes(path, relative, "json")
    data = _parse_json(payload, relative)
    parts = Path(relative).parts
    if len(parts) != 4:
        raise IngestError(relative, "path", "expected <class>/<obj_id>/<obj_id>_<Affordance>/<N>.json")
    category, object_id = str(data.get("class_name") or parts[0]), parts[1]
    affordance = _affordance(data, parts[2], relative)
    object_text = _obj_text(data, "object_mesh", relative)
    try:
        mesh = cache.get(hash_bytes(object_text.encode()),
                         lambda: _object_mesh(object_text, relative, require_watertight))
    except IngestError as exc:
        # The mesh is embedded in each file: a cached error from another file must name this one.
        raise IngestError(relative, exc.field, exc.reason) from None
    for quat_key, trans_key in (("quat_obj", "trans_obj"), ("rhand_quat", "rhand_trans")):
        _check_pose(data, quat_key, trans_key, relative)
    dofs = check_finite("dofs", data.get("dofs"), (NUM_DOFS,), relative)
    hand_vertices, hand_faces = _hand_mesh(_obj_text(data, "rhand_mesh", relative), relative)
    return RawSample(
        sample_id=make_sample_id(DATASET, relative, 0), dataset=DATASET, split=split_for(object_id),
        source_path=relative, source_index=0, content_hash=hash_bytes(payload), object_id=object_id,
        object_category=category, object_mesh_path=None, object_vertices=mesh.vertices,
        object_faces=mesh.faces, object_vertex_labels=mesh.labels, hand_verts=hand_vertices - mesh.centroid,
        hand_faces=hand_faces, hand_model=HAND_MODEL, hand_dofs=dofs, affordance=affordance)


def _parse_json(payload: bytes, relative: str) -> dict:
    data = parse_json(payload, relative, "json")
    if not isinstance(data, dict):
        raise IngestError(relative, "json", f"expected a JSON object, got {type(data).__name__}")
    return data


def _obj_text(data: dict, key: str, relative: str) -> str:
    """OBJ text from a list of OBJ lines (the official files) or one string."""
    value = data.get(key)
    if isinstance(value, list) and value and all(isinstance(line, str) for line in value):
        # Official lines end with "\n"; join so that lines written without one stay apart.
        return "".join(line if line.endswith("\n") else line + "\n" for line in value)
    if isinstance(value, str) and value.strip():
        return value
    got = "missing" if value is None else f"a {type(value).__name__}" + (
        " with non-string entries" if isinstance(value, list) and value else "")
    raise IngestError(relative, key, f"expected a list of OBJ lines (or OBJ text), got {got}")


def _affordance(data: dict, folder: str, relative: str) -> str:
    # The JSON's afford_name wins; the folder suffix (<obj_id>_<Affordance>) is the fallback.
    name = data.get("afford_name") or folder.rsplit("_", 1)[-1]
    try:
        return normalise_affordance(str(name))
    except ValueError as exc:
        raise IngestError(relative, "afford_name", str(exc)) from None


def _object_mesh(text: str, relative: str, require_watertight: bool) -> CanonicalMesh:
    vertices, faces, labels = parse_obj(text, relative, field="object_mesh")
    if labels is None:
        raise IngestError(relative, "object_mesh", "no part labels: `v` lines need a 5th token, the part label id")
    unknown = sorted(set(np.unique(labels).tolist()) - set(AFFORDPOSE_LABEL_IDS))
    if unknown:
        raise IngestError(relative, "object_mesh", f"unknown AffordPose vertex label ids {unknown}")
    return canonical_mesh(vertices, faces, labels, relative, require_watertight,
                          hash_bytes(text.encode()), None, field="object_mesh")


def _check_pose(data: dict, quat_key: str, trans_key: str, relative: str) -> None:
    quat = check_finite(quat_key, data.get(quat_key), (4,), relative)
    norm = float(np.linalg.norm(quat))
    if abs(norm - 1.0) > QUAT_TOLERANCE:
        raise IngestError(relative, quat_key, f"quaternion norm {norm:.6f}, expected 1")
    check_finite(trans_key, data.get(trans_key), (3,), relative)


def _hand_mesh(text: str, relative: str) -> tuple[np.ndarray, np.ndarray]:
    """(H, 3) vertices in metres and (F, 3) faces of the posed hand, as stored; any vertex count."""
    vertices, faces, _ = parse_obj(text, relative, field="rhand_mesh")
    try:
        return check_mesh("rhand_mesh", vertices, faces)
    except ValueError as exc:
        raise IngestError(relative, "rhand_mesh", str(exc)) from None
