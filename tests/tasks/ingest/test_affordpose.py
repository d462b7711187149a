"""AffordPose: write synthetic grasps in the JSON layout, read them back into the canonical frame, and turn
every kind of broken file into exactly one Reject."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from models.synthetic_hand import build_synthetic_hand
from schemas.ids import make_sample_id
from schemas.rows import Reject, Sample
from tasks.ingest import affordpose as ingest_affordpose
from tasks.ingest.affordpose import affordpose_name, iter_affordpose, write_affordpose
from tasks.ingest.common import GraspRecord, RawSample, split_for
from tasks.ingest.mano_frame import quat_wxyz_to_matrix
from tasks.ingest.obj_text import parse_obj
from tasks.synth.manohand import manohand_from_mano
from tests.tasks.ingest.test_common import centroid_of, make_records, make_template

AFFORDANCES = ("handle-grasp", "wrap-grasp", "press", "twist")
HAND = build_synthetic_hand()


def with_manohand(record: GraspRecord) -> GraspRecord:
    """The record with its MANO hand replaced by a 946-vertex ManoHand-style mesh, as AffordPose stores hands."""
    hand = manohand_from_mano(record.hand_verts, record.hand_pose, HAND)
    record.hand_verts, record.hand_faces, record.hand_dofs = hand.vertices, hand.faces, hand.dofs
    record.palm_rotation, record.palm_translation = hand.palm_rotation, hand.palm_translation
    return record


def _records(n: int, seed: int = 0) -> list[GraspRecord]:
    return [with_manohand(r) for r in make_records(n, make_template(), seed=seed, affordances=AFFORDANCES)]


def _write(tmp_path: Path, n: int, seed: int = 0) -> tuple[list, list[Path]]:
    records = _records(n, seed)
    return records, write_affordpose(tmp_path, records)


def test_layout_and_keys_follow_the_official_sample(tmp_path):
    """As GentlesJan/AffordPose samples/data.json: meshes are lists of OBJ lines, 946 + 1828 hand lines, 16
    dofs, an identity object pose, files numbered from 1."""
    _, paths = _write(tmp_path, 2)
    assert paths[0].relative_to(tmp_path).as_posix() == "mug/obj000/obj000_Handle-grasp/1.json"
    data = json.loads(paths[1].read_text())
    assert set(data) == {"rhand_mesh", "dofs", "rhand_trans", "rhand_quat", "object_mesh", "trans_obj",
                         "quat_obj", "afford_name", "class_name"}
    assert data["afford_name"] == "Wrap-grasp" and data["quat_obj"] == [1, 0, 0, 0] and len(data["dofs"]) == 16
    for key in ("rhand_mesh", "object_mesh"):
        assert isinstance(data[key], list) and all(line.endswith("\n") for line in data[key])
    hand_lines = [line.split()[0] for line in data["rhand_mesh"]]
    assert (hand_lines.count("v"), hand_lines.count("f")) == (946, 1828)
    first_vertex = next(line for line in data["object_mesh"] if line.startswith("v "))
    assert len(first_vertex.split()) == 5  # v x y z label


def test_json_composes_as_documented(tmp_path):
    """Independent of the loader: both meshes in metres in the object frame; rhand_trans (mm) and rhand_quat
    are the palm pose."""
    records, paths = _write(tmp_path, 2)
    for record, path in zip(records, paths, strict=True):
        data = json.loads(path.read_text())
        hand, hand_faces, _ = parse_obj("".join(data["rhand_mesh"]), "hand")
        object_vertices = parse_obj("".join(data["object_mesh"]), "object")[0]
        np.testing.assert_allclose(object_vertices, record.object_vertices, atol=1e-8)
        np.testing.assert_allclose(hand, record.hand_verts, atol=1e-8)
        np.testing.assert_array_equal(hand_faces, record.hand_faces)
        np.testing.assert_allclose(np.asarray(data["rhand_trans"]) / 1000, record.palm_translation, atol=1e-9)
        np.testing.assert_allclose(quat_wxyz_to_matrix(data["rhand_quat"]), record.palm_rotation, atol=1e-9)


def test_round_trip_recovers_the_canonical_grasp(tmp_path):
    records, paths = _write(tmp_path, 6)
    loaded = list(iter_affordpose(tmp_path))
    assert all(isinstance(item, RawSample) for item in loaded) and len(loaded) == len(records)
    by_object = {item.object_id: item for item in loaded}
    for record, path in zip(records, paths, strict=True):
        sample = by_object[record.object_id]
        relative = path.relative_to(tmp_path).as_posix()
        centroid = centroid_of(record)
        assert sample.source_path == relative and sample.sample_id == make_sample_id("affordpose", relative, 0)
        assert sample.object_category == record.category and sample.split == split_for(record.object_id)
        assert sample.affordance == record.affordance and sample.hand_pose is None
        assert sample.hand_model == "graspit_manohand"
        np.testing.assert_allclose(sample.object_vertices, record.object_vertices - centroid, atol=1e-8)
        np.testing.assert_array_equal(sample.object_faces, record.object_faces)
        np.testing.assert_array_equal(sample.object_vertex_labels, record.object_vertex_labels)
        np.testing.assert_allclose(sample.hand_verts, record.hand_verts - centroid, atol=1e-8)
        np.testing.assert_array_equal(sample.hand_faces, record.hand_faces)
        np.testing.assert_allclose(sample.hand_dofs, record.hand_dofs, atol=1e-12)
        Sample.model_validate(sample.row() | {"object_points": sample.object_vertices})
    assert [s.source_path for s in loaded] == sorted(s.source_path for s in loaded)


def test_one_obj_string_reads_as_the_list_of_its_lines(tmp_path):
    _, paths = _write(tmp_path, 1)
    as_lines = next(iter_affordpose(tmp_path))
    _edit(paths[0], "rhand_mesh", lambda lines: "".join(lines))
    _edit(paths[0], "object_mesh", lambda lines: "".join(lines))
    as_text = next(iter_affordpose(tmp_path))
    np.testing.assert_array_equal(as_text.hand_verts, as_lines.hand_verts)
    np.testing.assert_array_equal(as_text.object_vertices, as_lines.object_vertices)


def test_object_mesh_is_parsed_once_per_object(tmp_path, monkeypatch):
    record = _records(1)[0]
    write_affordpose(tmp_path, [record] * 3)
    calls = []
    real = ingest_affordpose.parse_obj
    monkeypatch.setattr(ingest_affordpose, "parse_obj", lambda text, where, **kw: calls.append(kw) or
                        real(text, where, **kw))
    assert len([s for s in iter_affordpose(tmp_path) if isinstance(s, RawSample)]) == 3
    assert [kw.get("field") for kw in calls].count("object_mesh") == 1


def test_content_hash_follows_the_file_bytes(tmp_path):
    _, paths = _write(tmp_path, 2)
    before = {s.source_path: s.content_hash for s in iter_affordpose(tmp_path)}
    data = json.loads(paths[0].read_text())
    data["trans_obj"][0] += 1.0
    paths[0].write_text(json.dumps(data))
    after = {s.source_path: s.content_hash for s in iter_affordpose(tmp_path)}
    changed = [k for k in before if before[k] != after[k]]
    assert changed == [paths[0].relative_to(tmp_path).as_posix()]


def _edit(path: Path, key: str, change) -> None:
    data = json.loads(path.read_text())
    if change is None:
        del data[key]
    else:
        data[key] = change(data[key])
    path.write_text(json.dumps(data))


def _drop_line(lines: list[str], prefix: str) -> list[str]:
    index = [i for i, line in enumerate(lines) if line.startswith(prefix)][-1]
    return lines[:index] + lines[index + 1:]


def _first_vertex(lines: list[str], change) -> list[str]:
    index = next(i for i, line in enumerate(lines) if line.startswith("v "))
    return [*lines[:index], change(lines[index].split()) + "\n", *lines[index + 1:]]


def _unlabelled(lines: list[str]) -> list[str]:
    return [" ".join(line.split()[:4]) + "\n" if line.startswith("v ") else line for line in lines]


BREAKAGES = {  # failure mode -> (how, field named in the reject, words in the reason)
    "truncated json": (lambda p: p.write_bytes(p.read_bytes()[:200]), "json", "truncated"),
    "obj line missing a token": (lambda p: _edit(p, "object_mesh", lambda v: _first_vertex(
        v, lambda t: " ".join(t[:3]))), "object_mesh", "line 1:"),
    "nan translation": (lambda p: _edit(p, "rhand_trans", lambda v: [v[0], math.nan, v[2]]), "rhand_trans",
                        "non-finite"),
    "quaternion of the wrong length": (lambda p: _edit(p, "rhand_quat", lambda v: v[:3]), "rhand_quat",
                                       "expected shape (4)"),
    "empty object mesh": (lambda p: _edit(p, "object_mesh", lambda v: ["# empty\n"]), "object_mesh", "is empty"),
    "non-watertight mesh": (lambda p: _edit(p, "object_mesh", lambda v: _drop_line(v, "f ")), "object_mesh",
                            "not watertight"),
    "unknown affordance": (lambda p: _edit(p, "afford_name", lambda v: "Juggle"), "afford_name", "Juggle"),
    "missing object mesh": (lambda p: _edit(p, "object_mesh", None), "object_mesh", "missing"),
    "mesh lines that are not strings": (lambda p: _edit(p, "object_mesh", lambda v: [1.0, 2.0]), "object_mesh",
                                        "non-string entries"),
    "hand mesh with no faces": (lambda p: _edit(p, "rhand_mesh", lambda v: [x for x in v if x.startswith("v")]),
                                "rhand_mesh", "946 vertices, 0 faces"),
    "nan in the hand mesh": (lambda p: _edit(p, "rhand_mesh", lambda v: _first_vertex(
        v, lambda t: " ".join([t[0], "nan", *t[2:]]))), "rhand_mesh", "non-finite"),
    "object with no labels": (lambda p: _edit(p, "object_mesh", _unlabelled), "object_mesh", "no part labels"),
    "dofs of the wrong length": (lambda p: _edit(p, "dofs", lambda v: v[:15]), "dofs", "expected shape (16)"),
    "unknown vertex label": (lambda p: _edit(p, "object_mesh", lambda v: _first_vertex(
        v, lambda t: " ".join([*t[:4], "2"]))), "object_mesh", "label ids [2]"),
}


def test_each_broken_file_becomes_exactly_one_named_reject(tmp_path):
    _, paths = _write(tmp_path, len(BREAKAGES) + 3)
    expected = {}
    for path, (mode, (breakage, field, words)) in zip(paths, BREAKAGES.items(), strict=False):
        breakage(path)
        expected[path.relative_to(tmp_path).as_posix()] = (mode, field, words)
    items = list(iter_affordpose(tmp_path))
    rejects = [item for item in items if isinstance(item, Reject)]
    samples = [item for item in items if isinstance(item, RawSample)]
    assert len(items) == len(paths) and len(samples) == 3 and len(rejects) == len(BREAKAGES)
    for reject in rejects:
        mode, field, words = expected[reject.source]
        assert reject.field == field, mode
        assert reject.source in reject.reason and f"field {field}" in reject.reason and words in reject.reason, mode
        assert reject.sample_id == make_sample_id("affordpose", reject.source, 0)


def test_writer_refuses_a_record_without_its_hand_mesh_or_dofs(tmp_path):
    record = _records(1)[0]
    record.hand_verts, record.hand_dofs = None, record.hand_dofs[:3]
    with pytest.raises(ValueError, match="needs hand_verts"):
        write_affordpose(tmp_path, [record])
    record.hand_verts = _records(1)[0].hand_verts
    with pytest.raises(ValueError, match=r"hand_dofs must be \(16,\), got \(3,\)"):
        write_affordpose(tmp_path, [record])
    assert affordpose_name("wrap-grasp") == "Wrap-grasp"


def test_a_repeated_bad_mesh_is_reported_against_each_file(tmp_path):
    """Two grasps embedding the same open mesh: each reject names its own file, not the first one read."""
    import trimesh

    from tasks.ingest.obj_text import format_obj

    box = trimesh.creation.box(extents=(0.05, 0.05, 0.05))
    open_mesh = format_obj(box.vertices * 1000, box.faces[:-1], np.zeros(len(box.vertices), np.int8))
    folder = tmp_path / "mug" / "m1" / "m1_Wrap-grasp"
    folder.mkdir(parents=True)
    for n in range(2):
        (folder / f"{n}.json").write_text(json.dumps({"object_mesh": open_mesh, "afford_name": "Wrap-grasp"}))
    rejects = list(iter_affordpose(tmp_path))
    assert [r.source for r in rejects] == ["mug/m1/m1_Wrap-grasp/0.json", "mug/m1/m1_Wrap-grasp/1.json"]
    assert all(r.source.split("/")[-1] in r.reason and "watertight" in r.reason for r in rejects)
