"""HO-3D: write synthetic frames as Python-2-style meta pickles in the camera frame, read them back into the
object frame, and turn broken files (and evaluation frames without a hand pose) into Rejects."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest

from schemas.ids import make_sample_id
from schemas.rows import Reject, Sample
from tasks.ingest.common import RawSample
from tasks.ingest.ho3d import iter_ho3d, write_ho3d
from tasks.ingest.mano_frame import rotvec_to_matrix
from tasks.ingest.obj_text import format_obj
from tasks.ingest.pickles import safe_load_pickle
from tests.tasks.ingest.test_common import (
    _Evil,
    assert_same_rotations,
    centroid_of,
    global_forward,
    make_records,
    make_template,
)


def _dataset(tmp_path: Path, n: int, split: str = "train") -> tuple[list, list[Path]]:
    records = make_records(n, make_template(), seed=7)
    return records, write_ho3d(tmp_path, records, np.random.default_rng(2), make_template(), split=split)


def test_files_follow_ho3d_layout_and_camera_convention(tmp_path):
    """Independent of the loader: HO-3D places the object as v @ Rodrigues(objRot).T + objTrans, so undoing that
    must put the hand where the record had it."""
    records, paths = _dataset(tmp_path, 2)
    assert paths[0].relative_to(tmp_path).as_posix() == "train/S_obj000/meta/0000.pkl"
    assert (tmp_path / "models" / "obj000" / "textured_simple.obj").is_file()
    assert pickle.loads(paths[0].read_bytes())["objRot"].shape == (3, 1)
    assert paths[0].read_bytes()[:2] == b"\x80\x02"  # protocol 2, as Python 2 wrote HO-3D
    template = make_template()
    for record, path in zip(records, paths, strict=True):
        meta = safe_load_pickle(path)
        j0 = template.root_joint(meta["handBeta"])
        shaped = template.v_template + template.shapedirs @ meta["handBeta"].astype(np.float64)
        hand_cam = global_forward(shaped, meta["handPose"].astype(np.float64), meta["handTrans"], j0)
        rotation = rotvec_to_matrix(meta["objRot"].reshape(3))
        np.testing.assert_allclose((hand_cam - meta["objTrans"]) @ rotation,  # inverse of x @ R.T + t
                                   global_forward(shaped, record.hand_pose, record.hand_trans, j0), atol=1e-5)


def test_round_trip_recovers_the_canonical_grasp(tmp_path):
    records, paths = _dataset(tmp_path, 4)
    loaded = {s.object_id: s for s in iter_ho3d(tmp_path, make_template())}
    assert all(isinstance(s, RawSample) for s in loaded.values()) and len(loaded) == len(records)
    for record, path in zip(records, paths, strict=True):
        sample, centroid = loaded[record.object_id], centroid_of(record)
        relative = path.relative_to(tmp_path).as_posix()
        assert sample.sample_id == make_sample_id("ho3d", relative, 0) and sample.split == "train"
        assert sample.object_mesh_path == f"models/{record.object_id}/textured_simple.obj"
        np.testing.assert_allclose(sample.object_vertices, record.object_vertices - centroid, atol=1e-7)
        np.testing.assert_array_equal(sample.object_faces, record.object_faces)
        assert_same_rotations(sample.hand_pose[:3], record.hand_pose[:3], atol=1e-5)
        np.testing.assert_allclose(sample.hand_pose[3:], record.hand_pose[3:], atol=1e-6)
        np.testing.assert_allclose(sample.hand_betas, record.hand_betas, atol=1e-6)
        np.testing.assert_allclose(sample.hand_trans, record.hand_trans - centroid, atol=1e-5)
        Sample.model_validate(sample.row() | {"object_points": sample.object_vertices})


def test_frame_step_evaluation_split_and_category(tmp_path):
    base = make_records(1, make_template())[0]
    records = [dataclasses.replace(base, object_id="021_bleach_cleanser", sequence="ABF10", frame=f)
               for f in range(5)]
    write_ho3d(tmp_path, records, np.random.default_rng(0), make_template(), split="evaluation")
    samples = list(iter_ho3d(tmp_path, make_template(), frame_step=2))
    assert [s.source_path for s in samples] == [f"evaluation/ABF10/meta/{f:04d}.pkl" for f in (0, 2, 4)]
    assert {s.split for s in samples} == {"test"} and {s.object_category for s in samples} == {"bleach_cleanser"}
    with pytest.raises(ValueError, match="frame_step"):
        next(iter_ho3d(tmp_path, make_template(), frame_step=0))
    with pytest.raises(FileNotFoundError, match="dataset root"):
        next(iter_ho3d(tmp_path / "nowhere", make_template()))


def _edit(path: Path, key: str, value) -> None:
    meta = safe_load_pickle(path)
    meta[key] = value
    path.write_bytes(pickle.dumps(meta, protocol=2))


def _model(root: Path, path: Path) -> Path:
    return root / "models" / safe_load_pickle(path)["objName"] / "textured_simple.obj"


def _open_model(root: Path, path: Path) -> None:
    model = _model(root, path)
    text = model.read_text().splitlines()
    model.write_text("\n".join(text[:-1]) + "\n")  # drop the last face


BREAKAGES = {  # failure mode -> (how, field named in the reject, words in the reason)
    "truncated pickle": (lambda root, p: p.write_bytes(p.read_bytes()[:100]), "meta", "truncated"),
    "pickle that runs code": (lambda root, p: p.write_bytes(pickle.dumps({"handPose": _Evil(root / "pwned")})),
                              "meta", "refused"),
    "evaluation frame": (lambda root, p: _edit(p, "handPose", None), "handPose", "missing (None)"),
    "nan translation": (lambda root, p: _edit(p, "handTrans", np.array([0.0, np.inf, 0.0])), "handTrans",
                        "non-finite"),
    "pose of 45 values": (lambda root, p: _edit(p, "handPose", np.zeros(45)), "handPose", "got (45,)"),
    "missing model": (lambda root, p: _model(root, p).unlink(), "mesh", "not found"),
    "non-watertight model": (_open_model, "mesh", "not watertight"),
    "empty model": (lambda root, p: _model(root, p).write_text("# nothing\n"), "mesh", "empty"),
    "obj line missing tokens": (lambda root, p: _model(root, p).write_text(format_obj(np.eye(3), [[0, 1, 2]])
                                                                           + "v 1 2\n"), "mesh", "line 5:"),
}


def test_each_broken_file_becomes_exactly_one_named_reject(tmp_path):
    _, paths = _dataset(tmp_path, len(BREAKAGES) + 2)
    expected = {}
    for path, (mode, (breakage, field, words)) in zip(paths, BREAKAGES.items(), strict=False):
        breakage(tmp_path, path)
        expected[path.relative_to(tmp_path).as_posix()] = (mode, field, words)
    items = list(iter_ho3d(tmp_path, make_template()))
    rejects = [item for item in items if isinstance(item, Reject)]
    assert len(items) == len(paths) and len(rejects) == len(BREAKAGES)
    assert sum(isinstance(item, RawSample) for item in items) == 2
    for reject in rejects:
        mode, field, words = expected[reject.source]
        assert reject.field == field and f"field {field}" in reject.reason and words in reject.reason, mode
        assert reject.sample_id == make_sample_id("ho3d", reject.source, 0)
    assert not (tmp_path / "pwned").exists()
