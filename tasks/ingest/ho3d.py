"""HO-3D: write synthetic frames in its on-disk format, and stream frames (real or ours) into RawSamples.

Layout (HO-3D v2/v3; the YCB models, a separate download, go under <root>/models):

    <root>/<split>/<sequence>/meta/<frame>.pkl           split: train | evaluation; e.g. train/ABF10/meta/0000.pkl
    <root>/models/<objName>/textured_simple.obj          YCB object mesh, metres, object frame
    <root>/train.txt, <root>/evaluation.txt              the split's frames, one `<sequence>/<frame>` per line

Only the meta folders are walked (a real sequence folder also holds thousands of rgb/depth/seg images).
Each meta file is a (Python 2) pickle of a dict; the keys read here:

    handPose (48,) MANO axis-angle (global + 45 finger, flat_hand_mean=True as HO-3D's own code uses),
    handBeta (10,), handTrans (3,) metres, objRot (3,) or (3, 1) axis-angle, objTrans (3,) metres, objName.

The writer also stores handJoints3D (camera frame: 21 joints in MANO order on train frames, the root joint
alone on evaluation frames), which the loader does not need: the hand is rebuilt from the MANO parameters.

All are in the camera frame (OpenGL axes; the axes do not matter here since hand and object share them).
The object is placed as HO-3D's code does it, `v @ Rodrigues(objRot).T + objTrans`, i.e. x_cam = R x_obj + t.
Canonical record: x' = R^T (x_cam - t) - c, with c the mesh's volume centroid, applied to the hand with
rigid_transform_mano (J0 from the template and handBeta). Evaluation frames carry no handPose (None): each
becomes a Reject saying so. Split: train -> train, evaluation -> test, any other folder -> split_for(objName).
The category is objName without YCB's numeric prefix ("021_bleach_cleanser" -> "bleach_cleanser").
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from schemas.ids import hash_bytes, make_sample_id
from schemas.rows import Reject
from tasks.ingest.common import (
    GraspRecord,
    IngestError,
    RawSample,
    Split,
    check_finite,
    content_hash,
    dataset_root,
    last_resort,
    read_bytes,
    reject_from,
    split_for,
)
from tasks.ingest.mano_frame import (
    HandTemplate,
    matrix_to_rotvec,
    random_rotation,
    rigid_transform_mano,
    rotvec_to_matrix,
)
from tasks.ingest.meshes import MeshCache, load_canonical_mesh
from tasks.ingest.obj_text import format_obj
from tasks.ingest.object_classes import object_class
from tasks.ingest.pickles import safe_loads

DATASET = "ho3d"
# HO-3D's handJoints3D is in MANO's joint order with the tips appended (vis_HO3D.py jointsMapManoToSimple): wrist,
# index 1-3, middle 1-3, pinky 1-3, ring 1-3, thumb 1-3, then the thumb, index, middle, ring and pinky tips.
# manopth (and models.mano) order: wrist, then thumb, index, middle, ring, pinky, 4 each (base to tip).
MANOPTH_TO_HO3D = [0, 5, 6, 7, 9, 10, 11, 17, 18, 19, 13, 14, 15, 1, 2, 3, 4, 8, 12, 16, 20]
SPLITS: dict[str, Split] = {"train": "train", "evaluation": "test"}
CAMERA = np.array([[614.6, 0.0, 320.0], [0.0, 614.6, 240.0], [0.0, 0.0, 1.0]], np.float32)  # synthetic intrinsics


def model_path(obj_name: str) -> str:
    return f"models/{obj_name}/textured_simple.obj"


# -- writer --------------------------------------------------------------------------------------------------
def write_ho3d(root: str | Path, records: Iterable[GraspRecord], rng: np.random.Generator, template: HandTemplate,
               *, split: str = "train") -> list[Path]:
    """Write records as `<split>/<sequence>/meta/<frame:04d>.pkl` (sequence defaults to "S_<object_id>") with the
    object in a random camera-frame pose, plus each object's textured_simple.obj. A record without a hand
    pose is written as an evaluation-style frame (handPose None). Returns the meta files written."""
    root = Path(root)
    written = []
    listed: list[str] = []
    for record in records:
        mesh_file = root / model_path(record.object_id)
        if not mesh_file.exists():
            mesh_file.parent.mkdir(parents=True, exist_ok=True)
            mesh_file.write_text(format_obj(record.object_vertices, record.object_faces))
        path = root / split / (record.sequence or f"S_{record.object_id}") / "meta" / f"{record.frame:04d}.pkl"
        if path.exists():
            raise ValueError(f"HO-3D writer: two records for {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        # Python-2-compatible protocol, like the real meta files
        path.write_bytes(pickle.dumps(_meta(record, template, rng, split), protocol=2))
        written.append(path)
        listed.append(f"{path.parts[-3]}/{path.stem}")
    _add_to_split_file(root / f"{split}.txt", listed)
    return written


def _add_to_split_file(path: Path, entries: list[str]) -> None:
    """HO-3D lists each split's frames as `<sequence>/<frame>` lines in <root>/<split>.txt."""
    existing = path.read_text().split() if path.exists() else []
    path.write_text("".join(f"{line}\n" for line in sorted(set(existing) | set(entries))))


def _meta(record: GraspRecord, template: HandTemplate, rng: np.random.Generator, split: str) -> dict:
    rotation = random_rotation(rng)
    translation = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), rng.uniform(-0.7, -0.4)])
    vertices = np.asarray(record.object_vertices, np.float64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    meta = {"objRot": matrix_to_rotvec(rotation).reshape(3, 1).astype(np.float32),
            "objTrans": translation.astype(np.float32), "objName": record.object_id, "camMat": CAMERA,
            "objCorners3DRest": corners.astype(np.float32), "handPose": None, "handBeta": None, "handTrans": None}
    if record.hand_pose is not None:
        betas = np.asarray(record.hand_betas, np.float64)
        pose, trans = rigid_transform_mano(record.hand_pose, record.hand_trans, template.root_joint(betas),
                                           rotation, translation)
        meta |= {"handPose": pose.astype(np.float32), "handBeta": betas.astype(np.float32),
                 "handTrans": trans.astype(np.float32)}
    if record.hand_joints is not None:
        # handJoints3D, camera frame: all 21 joints in MANO's order on train frames, the root joint alone on
        # evaluation frames (as vis_HO3D.py reads them).
        joints = np.asarray(record.hand_joints, np.float64)[MANOPTH_TO_HO3D] @ rotation.T + translation
        meta["handJoints3D"] = (joints if split == "train" else joints[0]).astype(np.float32)
    return meta


# -- loader --------------------------------------------------------------------------------------------------
def ho3d_sources(root: str | Path, frame_step: int = 1) -> Iterator[Path]:
    """Every frame_step-th meta file of each sequence, in sorted order: one frame each."""
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    return _meta_files(dataset_root(root), frame_step)


def iter_ho3d(root: str | Path, template: HandTemplate, *, frame_step: int = 1, require_watertight: bool = True,
              cache_size: int = 16, paths: Iterable[Path] | None = None) -> Iterator[RawSample | Reject]:
    """Stream every frame_step-th meta file of each sequence (sorted) as a RawSample in the canonical frame,
    or a Reject naming the file and field. `paths`: only these meta files (some of `ho3d_sources`)."""
    if frame_step < 1:
        raise ValueError(f"frame_step must be >= 1, got {frame_step}")
    root = dataset_root(root)
    cache = MeshCache(cache_size)
    for path in ho3d_sources(root, frame_step) if paths is None else paths:
        relative = path.relative_to(root).as_posix()
        try:
            item = _load_frame(root, relative, cache, template, require_watertight)
        except Exception as exc:  # one file never stops an ingest (last_resort)
            item = reject_from(last_resort(relative, exc), DATASET, source=relative)
        yield item


def _meta_files(root: Path, frame_step: int) -> Iterator[Path]:
    """<split>/<sequence>/meta/*.pkl in sorted order, every frame_step-th file of each sequence."""
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "models"):
        for sequence in sorted(p for p in split_dir.iterdir() if (p / "meta").is_dir()):
            frames = sorted(p for p in (sequence / "meta").iterdir() if p.suffix == ".pkl")
            yield from frames[::frame_step]


def _load_frame(root: Path, relative: str, cache: MeshCache, template: HandTemplate,
                require_watertight: bool) -> RawSample:
    payload = read_bytes(root / relative, relative, "meta")
    meta = safe_loads(payload, relative, "meta")
    if not isinstance(meta, dict):
        raise IngestError(relative, "meta", f"expected a dict, got {type(meta).__name__}")
    if meta.get("handPose") is None:
        raise IngestError(relative, "handPose", "missing (None): no MANO annotation for this frame "
                                                "(HO-3D evaluation frames have none)")
    pose = check_finite("handPose", meta["handPose"], (48,), relative)
    betas = check_finite("handBeta", meta.get("handBeta"), (10,), relative)
    trans = check_finite("handTrans", meta.get("handTrans"), (3,), relative)
    obj_rot = rotvec_to_matrix(check_finite("objRot", _flat(meta.get("objRot")), (3,), relative))
    obj_trans = check_finite("objTrans", _flat(meta.get("objTrans")), (3,), relative)
    obj_name = meta.get("objName")
    if not isinstance(obj_name, str) or not obj_name or "/" in obj_name or obj_name.startswith("."):
        raise IngestError(relative, "objName", f"expected a YCB object name, got {obj_name!r}")
    mesh = cache.get(model_path(obj_name), lambda: load_canonical_mesh(root, model_path(obj_name),
                                                                       require_watertight))
    j0 = template.root_joint(betas)
    # camera -> object: x_obj = R^T (x_cam - t), then recentre on the centroid c
    pose, trans = rigid_transform_mano(pose, trans, j0, obj_rot.T, -obj_rot.T @ obj_trans - mesh.centroid)
    split = SPLITS.get(Path(relative).parts[0]) or split_for(obj_name)
    return RawSample(
        sample_id=make_sample_id(DATASET, relative, 0), dataset=DATASET, split=split, source_path=relative,
        source_index=0, content_hash=content_hash(hash_bytes(payload), mesh.digest), object_id=obj_name,
        object_category=object_class(obj_name), object_mesh_path=mesh.path,
        object_vertices=mesh.vertices, object_faces=mesh.faces, hand_pose=pose, hand_betas=betas,
        hand_trans=trans)


def _flat(value: object) -> object:
    """objRot is stored (3, 1) in HO-3D: flatten 3-element arrays, pass anything else on to the shape check."""
    return np.reshape(value, -1) if value is not None and np.size(value) == 3 else value
