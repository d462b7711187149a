"""Parity with the datasets' own code: for OakInk-Shape, GRAB and HO-3D, the hand in the ingested table must
be where each dataset's official code puts it, to 0.01 mm, with a MANO hand whose root joint is off the origin
(as real MANO's is: about (95.7, 6.4, 6.2) mm), so a wrong root-joint convention cannot hide.

Each test re-states the official convention in a few lines, independently of the loaders, reading the files the
synthetic writers produced:
- OakInk-Shape, oikit (oakink/OakInk, oikit/oi_shape/oi_shape.py + utils.py): the hand is manotorch's
  ManoLayer(center_idx=0) on (pose, shape), i.e. posed and then shifted so joint 0 is at the origin, plus `tsl`;
  the object mesh is moved so its bounding-box centre is at the origin.
- GRAB (otaheri/GRAB, tools/utils.py + tools/objectmodel.py, smplx MANO): the hand is MANO with the subject's
  vtemp as template, betas 0, fingers = hand_pose (24 PCA coefficients) @ hands_components[:24] with no mean
  (flat_hand_mean=True), plus transl; the object in the world is v @ R(global_orient) + transl (row vectors).
- HO-3D (shreyashampali/ho3d, vis_HO3D.py forwardKinematics): MANO with the 48 handPose values, flat hand mean,
  handBeta and handTrans, in the camera frame; the object is v @ Rodrigues(objRot).T + objTrans; handJoints3D is
  MANO's joints in MANO order with the tips appended (jointsMapManoToSimple), and train.txt lists the frames.
The table's frame is the object mesh minus its volume centroid c; c is taken from the table itself (the offset
between the file's mesh and the table's object vertices), not from the loader's code.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import torch
import trimesh
from scipy.spatial.transform import Rotation

from models.mano import ManoLayer
from models.mano_pickle import ManoParams, load_mano_pickle
from models.synthetic_hand import ROOT_JOINT_M
from schemas.rows import Sample
from tasks.ingest.pipeline import ingest
from tasks.store.read import open_table
from tasks.synth.datasets import synthesize_datasets

TOLERANCE_M = 1e-5  # 0.01 mm
# vis_HO3D.py's jointsMapManoToSimple: handJoints3D (MANO order + tips) -> wrist, thumb, index, middle, ring, pinky
HO3D_TO_SIMPLE = [0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20]


def _ingested(tmp_path: Path, dataset: str) -> tuple[Path, ManoParams, list[Sample]]:
    summary = synthesize_datasets(tmp_path / "datasets", datasets=(dataset,), categories=("mug", "bottle"), steps=5)
    root = tmp_path / "datasets" / dataset
    table = tmp_path / "tables" / dataset
    counts = ingest(dataset, root, table, summary.mano_root, num_points=64)
    assert counts.rows > 0 and counts.rejects == 0
    params = load_mano_pickle(summary.mano_root / "MANO_RIGHT.pkl")
    rest_root = params.J_regressor[0] @ params.v_template
    assert np.linalg.norm(rest_root - ROOT_JOINT_M) < 1e-9  # the generated hand's root joint is off the origin
    return root, params, list(open_table(table, Sample).iter_rows())


def _mano_mm(params: ManoParams, pose48: np.ndarray, betas: np.ndarray, trans: np.ndarray | None = None,
             v_template: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MANO forward (float64, full 45 finger values, flat hand mean): vertices (778, 3) and joints (21, 3), mm."""
    layer = ManoLayer(params=params, use_pca=False, flat_hand_mean=True).double()
    if v_template is not None:
        layer.th_v_template.copy_(torch.tensor(v_template, dtype=torch.float64)[None])
    with torch.no_grad():
        verts, joints = layer(torch.tensor(pose48, dtype=torch.float64)[None],
                              torch.tensor(betas, dtype=torch.float64)[None],
                              None if trans is None else torch.tensor(trans, dtype=torch.float64)[None])
    return verts[0].numpy(), joints[0].numpy()


def _centroid(file_vertices: np.ndarray, row: Sample) -> np.ndarray:
    """c such that the table's object vertices are the file's mesh (in the same frame) minus c."""
    offset = file_vertices - np.asarray(row.object_vertices, np.float64)
    assert np.ptp(offset, axis=0).max() < 1e-6, "the table's object is not a translate of the file's mesh"
    return offset.mean(axis=0)


def _close(row: Sample, expected_m: np.ndarray) -> None:
    gap = np.abs(np.asarray(row.hand_verts, np.float64) - expected_m).max()
    assert gap <= TOLERANCE_M, f"{row.source_path}: hand {gap * 1000:.4f} mm from the official convention"


def test_oakink_shape_hands_match_oikit(tmp_path):
    root, params, rows = _ingested(tmp_path, "oakink")
    meta = json.loads((root / "metaV2" / "object_id.json").read_text())
    for row in rows:
        hand = pickle.loads((root / row.source_path).read_bytes())  # our own synthetic file
        verts, joints = _mano_mm(params, hand["pose"], hand["shape"])
        oikit_verts = (verts - joints[0]) / 1000 + hand["tsl"]  # center_idx=0, then + tsl
        name = meta[row.object_id]["name"]
        mesh_file = next((root / "OakInkObjectsV2" / name / "align").glob("*.obj"))
        mesh = trimesh.load(mesh_file, process=False, force="mesh")
        bbox_centre = (mesh.vertices.min(0) + mesh.vertices.max(0)) / 2
        centroid = _centroid(mesh.vertices - bbox_centre, row)  # oikit's object frame: bbox centre at 0
        _close(row, oikit_verts - centroid)


def test_grab_hands_match_grab_code(tmp_path):
    root, params, rows = _ingested(tmp_path, "grab")
    components = np.asarray(params.hands_components, np.float64)[:24]
    for row in rows:
        with np.load(root / row.source_path, allow_pickle=True) as data:  # our own synthetic file
            rhand, obj = data["rhand"].item(), data["object"].item()
        t, hp = row.source_index, rhand["params"]
        vtemp = trimesh.load(root / rhand["vtemp"], process=False).vertices
        fingers = hp["hand_pose"][t].astype(np.float64) @ components  # use_pca, 24 comps, flat mean
        pose48 = np.concatenate([hp["global_orient"][t], fingers])
        world = _mano_mm(params, pose48, np.zeros(10), hp["transl"][t], v_template=vtemp)[0] / 1000
        rotation = Rotation.from_rotvec(obj["params"]["global_orient"][t].astype(np.float64)).as_matrix()
        in_object = (world - obj["params"]["transl"][t]) @ rotation.T  # inverse of v @ R + t
        mesh = trimesh.load(root / obj["object_mesh"], process=False, force="mesh")
        _close(row, in_object - _centroid(mesh.vertices, row))


def test_ho3d_hands_match_ho3d_code(tmp_path):
    root, params, rows = _ingested(tmp_path, "ho3d")
    for row in rows:
        meta = pickle.loads((root / row.source_path).read_bytes(), encoding="latin1")  # our own synthetic file
        verts_mm, joints_mm = _mano_mm(params, meta["handPose"], meta["handBeta"], meta["handTrans"])
        camera = verts_mm / 1000
        # handJoints3D (camera frame) reordered thumb-to-pinky is the MANO forward's joints in that order
        np.testing.assert_allclose(meta["handJoints3D"][HO3D_TO_SIMPLE], joints_mm / 1000, atol=2e-6)
        rotation = Rotation.from_rotvec(np.asarray(meta["objRot"], np.float64).reshape(3)).as_matrix()
        in_object = (camera - meta["objTrans"]) @ rotation  # inverse of v @ R.T + t
        mesh = trimesh.load(root / "models" / meta["objName"] / "textured_simple.obj", process=False, force="mesh")
        _close(row, in_object - _centroid(mesh.vertices, row))
    listed = (root / "train.txt").read_text().split()
    assert sorted(listed) == sorted(f"{Path(r.source_path).parts[1]}/{Path(r.source_path).stem}" for r in rows)
