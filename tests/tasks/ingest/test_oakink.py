"""OakInk-Shape: write synthetic grasps in oikit's layout (real and virtual objects, axis-angle and quaternion
poses, OBJ and PLY meshes), read them back into the canonical frame, and turn broken files into Rejects."""

from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from schemas.ids import make_sample_id
from schemas.rows import Reject, Sample
from tasks.ingest.common import RawSample, split_for
from tasks.ingest.meshes import load_mesh
from tasks.ingest.oakink import OIKIT_CATEGORIES, iter_oakink, write_oakink
from tasks.ingest.obj_text import format_obj
from tasks.ingest.pickles import safe_load_pickle
from tasks.synth.datasets import synthesize_datasets
from tests.tasks.ingest.test_common import (
    _Evil,
    assert_same_rotations,
    centroid_of,
    make_records,
    make_template,
)

INTENTS = ("use", "hold", "liftup", "handover")


def _dataset(tmp_path: Path, n: int, **options) -> tuple[list, list[Path]]:
    records = make_records(n, make_template(), seed=3, intents=INTENTS)
    return records, write_oakink(tmp_path, records, np.random.default_rng(5), make_template(), **options)


@pytest.mark.parametrize(("pose_format", "mesh_format"), [("axis_angle", "obj"), ("quaternion", "ply")])
def test_round_trip_recovers_the_canonical_grasp(tmp_path, pose_format, mesh_format):
    records, paths = _dataset(tmp_path, 6, virtual_fraction=0.5, pose_format=pose_format,
                              mesh_format=mesh_format)
    depths = {len(p.relative_to(tmp_path).parts) for p in paths}
    assert depths == {5, 6}  # both real-object and virtual-object grasps were written
    loaded = {s.object_id: s for s in iter_oakink(tmp_path, make_template())}
    assert all(isinstance(s, RawSample) for s in loaded.values()) and len(loaded) == len(records)
    for record, path in zip(records, paths, strict=True):
        sample, centroid = loaded[record.object_id], centroid_of(record)
        relative = path.relative_to(tmp_path).as_posix()
        assert sample.sample_id == make_sample_id("oakink", relative, 0) and sample.source_path == relative
        assert sample.intent == record.intent and sample.object_category == record.category
        assert sample.split == split_for(record.object_id) and sample.object_mesh_path.endswith(mesh_format)
        np.testing.assert_allclose(sample.object_vertices, record.object_vertices - centroid, atol=1e-6)
        np.testing.assert_array_equal(sample.object_faces, record.object_faces)
        assert_same_rotations(sample.hand_pose, record.hand_pose, atol=1e-5)
        np.testing.assert_allclose(sample.hand_betas, record.hand_betas, atol=1e-6)
        np.testing.assert_allclose(sample.hand_trans, record.hand_trans - centroid, atol=1e-6)
        Sample.model_validate(sample.row() | {"object_points": sample.object_vertices})


def test_files_follow_oikit_conventions(tmp_path):
    records, paths = _dataset(tmp_path, 2, pose_format="quaternion")
    params = safe_load_pickle(paths[0])
    assert set(params) == {"pose", "shape", "tsl"} and params["pose"].shape == (16, 4)
    source = (paths[1].parent / "source.txt").read_text()
    assert source == "pass1/obj001_0002_0001/00000"  # second record: intent hold
    meta = json.loads((tmp_path / "metaV2" / "object_id.json").read_text())
    assert meta["obj000"] == {"name": "mug_obj000"}
    vertices, _ = load_mesh(tmp_path / "OakInkObjectsV2" / "mug_obj000" / "align" / "mug_obj000.obj")
    # tsl is the root joint in the bbox-centred frame: trans + J0 - (bbox centre - record origin)
    offset = vertices[0] - records[0].object_vertices[0]
    bbox = (vertices.min(axis=0) + vertices.max(axis=0)) / 2
    j0 = make_template().root_joint(records[0].hand_betas)
    np.testing.assert_allclose(params["tsl"], records[0].hand_trans + offset - bbox + j0, atol=1e-6)


def _mesh_file(root: Path, record) -> Path:
    return next(root.glob(f"*/{record.category}_{record.object_id}/align/*"))


def _drop_from_meta(root: Path, record) -> None:
    for path in (root / "metaV2").glob("*.json"):
        meta = json.loads(path.read_text())
        meta.pop(record.object_id, None)
        path.write_text(json.dumps(meta))


def _edit_params(path: Path, key: str, value) -> None:
    params = safe_load_pickle(path)
    params[key] = value
    path.write_bytes(pickle.dumps(params))


def _open_mesh(root: Path, record) -> None:
    _mesh_file(root, record).unlink()
    (_mesh_file_dir(root, record) / "open.obj").write_text(format_obj(record.object_vertices,
                                                                      record.object_faces[:-1]))


def _mesh_file_dir(root: Path, record) -> Path:
    return next(root.glob(f"*/{record.category}_{record.object_id}/align"))


BREAKAGES = {  # failure mode -> (how, field named in the reject, words in the reason)
    "truncated pickle": (lambda root, rec, p: p.write_bytes(p.read_bytes()[:60]), "hand_param", "truncated"),
    "pickle that runs code": (lambda root, rec, p: p.write_bytes(pickle.dumps({"pose": _Evil(root / "pwned")})),
                              "hand_param", "refused"),
    "nan tsl": (lambda root, rec, p: _edit_params(p, "tsl", np.array([0.0, np.nan, 0.0])), "tsl", "non-finite"),
    "pose of 47 values": (lambda root, rec, p: _edit_params(p, "pose", np.zeros(47)), "pose", "got shape (47,)"),
    "quaternion of norm 2": (lambda root, rec, p: _edit_params(p, "pose", np.tile([2.0, 0, 0, 0], (16, 1))),
                             "pose", "norm"),
    "missing object mesh": (lambda root, rec, p: _mesh_file(root, rec).unlink(), "mesh", "no .obj/.ply"),
    "non-watertight mesh": (lambda root, rec, p: _open_mesh(root, rec), "mesh", "not watertight"),
    "empty mesh": (lambda root, rec, p: _mesh_file(root, rec).write_text("# empty\n"), "mesh", "empty"),
    "unknown intent": (lambda root, rec, p: (p.parent / "source.txt").write_text(
        f"pass1/{rec.object_id}_0009_0001/00000"), "source.txt", "0009"),
    "object not in meta": (lambda root, rec, p: _drop_from_meta(root, rec), "object_id", "not in metaV2"),
}


def test_each_broken_file_becomes_exactly_one_named_reject(tmp_path):
    records, paths = _dataset(tmp_path, len(BREAKAGES) + 3)
    expected = {}
    for record, path, (mode, (breakage, field, words)) in zip(records, paths, BREAKAGES.items(), strict=False):
        breakage(tmp_path, record, path)
        expected[path.relative_to(tmp_path).as_posix()] = (mode, field, words)
    items = list(iter_oakink(tmp_path, make_template()))
    rejects = [item for item in items if isinstance(item, Reject)]
    assert len(items) == len(paths) and len(rejects) == len(BREAKAGES)
    assert sum(isinstance(item, RawSample) for item in items) == 3
    for reject in rejects:
        mode, field, words = expected[reject.source]
        assert reject.field == field and f"field {field}" in reject.reason and words in reject.reason, mode
        assert reject.sample_id == make_sample_id("oakink", reject.source, 0)
    assert not (tmp_path / "pwned").exists()


def test_writer_refuses_an_unknown_intent(tmp_path):
    records = make_records(1, make_template(), intents=("drink",))
    with pytest.raises(ValueError, match="intent"):
        write_oakink(tmp_path, records, np.random.default_rng(0), make_template())


def test_a_handover_second_hand_line_with_alt_reads_as_handover(tmp_path):
    """oikit matches source.txt unanchored and swaps the subjects of a line holding `_alt` (oi_shape.py): such a
    line is a handover, not a malformed one."""
    _, paths = _dataset(tmp_path, 4)
    handover = paths[3].parent / "source.txt"  # fourth record: intent handover
    handover.write_text(handover.read_text() + "_alt")
    loaded = {s.source_path: s for s in iter_oakink(tmp_path, make_template())}
    sample = loaded[paths[3].relative_to(tmp_path).as_posix()]
    assert isinstance(sample, RawSample) and sample.intent == "handover"


def test_synthetic_oakink_is_what_oikit_finds(tmp_path):
    """oikit (oi_shape.py) walks oakink_shape_v2/<cat>/ for each of its own categories and keeps a hand_param.pkl
    only where `<cat>/<6 chars>/<10 chars>/hand_param.pkl` (real) or `.../<6 chars>/hand_param.pkl` (virtual)
    matches, then reads source.txt with `(.+)/(.{6})_(.{4})_([_0-9]+)/([\\-0-9]+)`. Every synthetic grasp must pass,
    and a class OakInk does not have (laptop) is not in the synthetic OakInk set."""
    summary = synthesize_datasets(tmp_path, datasets=("oakink",), categories=("mug", "dispenser", "laptop"), steps=5)
    root = tmp_path / "oakink" / "oakink_shape_v2"
    params = sorted(root.rglob("hand_param.pkl"))
    assert len(params) == summary.grasps["oakink"] > 0
    for path in params:
        relative = path.relative_to(root).as_posix()
        category = relative.split("/")[0]
        assert category in OIKIT_CATEGORIES, relative
        real = re.findall(rf"({category}/(.{{6}})/.{{10}})/hand_param\.pkl$", relative)
        virtual = re.findall(rf"({category}/(.{{6}})/.{{10}})/(.{{6}})/hand_param\.pkl$", relative)
        (match,) = virtual or real
        source = (root / match[0] / "source.txt").read_text()
        _, raw_oid, code, _, _ = re.findall(r"(.+)/(.{6})_(.{4})_([_0-9]+)/([\-0-9]+)", source)[0]
        assert raw_oid == match[1] and code in ("0001", "0002", "0003", "0004")
    assert {p.relative_to(root).parts[0] for p in params} == {"mug", "lotion_pump"}


@pytest.mark.parametrize("name", ["{outside}", "../{outside_name}", "mug_S10000/../../../{outside_name}"])
def test_a_meta_name_outside_the_dataset_root_is_refused(tmp_path, name):
    """metaV2 names are joined under the root: an absolute name, or one climbing out, would read a mesh from
    elsewhere on the machine and store its path. Every grasp on that object becomes a reject naming metaV2."""
    synthesize_datasets(tmp_path / "data", datasets=("oakink",), categories=("mug",), steps=5)
    root = tmp_path / "data" / "oakink"
    outside = tmp_path / "elsewhere"
    shutil.copytree(root / "OakInkObjectsV2" / "mug_S10000", outside)  # a valid mesh, outside the root
    meta_path = root / "metaV2" / "object_id.json"
    meta = json.loads(meta_path.read_text())
    meta["S10000"]["name"] = name.format(outside=outside, outside_name=f"../{outside.name}")
    meta_path.write_text(json.dumps(meta))
    items = list(iter_oakink(root, make_template()))
    mug = [item for item in items if isinstance(item, RawSample) and "/mug/S10000/" in item.source_path]
    rejects = [item for item in items if isinstance(item, Reject) and "/mug/S10000/" in item.source]
    assert rejects and not mug, "a grasp on the object with the outside name was ingested"
    for reject in rejects:
        assert reject.field == "S10000.name" and "metaV2/object_id.json" in reject.reason
        assert "not a folder name inside the dataset root" in reject.reason
