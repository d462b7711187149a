"""Shared ingest pieces: OBJ text, safe pickles, MANO frame changes, splits, meshes, rejects.

The factories at the top (hand template, grasp records, a reference forward of MANO's global transform) are
imported by the per-dataset ingest tests.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse
import trimesh

from schemas.ids import make_sample_id
from schemas.rows import Sample
from tasks.ingest.common import (
    GraspRecord,
    IngestError,
    RawSample,
    as_ingest_error,
    check_finite,
    content_hash,
    reject_from,
    split_for,
)
from tasks.ingest.mano_frame import HandTemplate, rigid_transform_mano, root_joint, rotvec_to_matrix
from tasks.ingest.meshes import CanonicalMesh, MeshCache, load_canonical_mesh, load_mesh
from tasks.ingest.obj_text import format_obj, parse_obj
from tasks.ingest.pickles import safe_load_pickle


# -- factories (used by the per-dataset tests) ---------------------------------------------------------------
def make_template(seed: int = 0) -> HandTemplate:
    """A well-formed random MANO-shaped template: J_regressor rows are convex weights, like MANO's, and
    hands_components an orthonormal basis."""
    rng = np.random.default_rng(seed)
    regressor = rng.uniform(size=(16, 778))
    return HandTemplate(v_template=rng.normal(scale=0.03, size=(778, 3)),
                        shapedirs=rng.normal(scale=1e-3, size=(778, 3, 10)),
                        J_regressor=regressor / regressor.sum(axis=1, keepdims=True),
                        faces=rng.integers(0, 778, size=(1538, 3)),
                        hands_components=np.linalg.qr(rng.normal(size=(45, 45)))[0].T)


def global_forward(points: np.ndarray, pose48: np.ndarray, trans: np.ndarray, j0: np.ndarray) -> np.ndarray:
    """Reference forward of MANO's global transform on (N, 3) rest points: v = R_root (v - J0) + J0 + trans."""
    return (points - j0) @ rotvec_to_matrix(pose48[:3]).T + j0 + trans


def record_mesh(index: int) -> trimesh.Trimesh:
    """Closed meshes of a few sizes: boxes and cylinders, a few cm."""
    if index % 2 == 0:
        return trimesh.creation.box(extents=(0.04 + 0.01 * index, 0.05, 0.08))
    return trimesh.creation.cylinder(radius=0.03 + 0.005 * index, height=0.1, sections=12)


def make_records(n: int, template: HandTemplate, seed: int = 0, affordances: tuple[str, ...] = ("handle-grasp",),
                 intents: tuple[str | None, ...] = (None,), **fields) -> list[GraspRecord]:
    """`n` records on distinct objects, meshes shifted off their centroid, with random MANO parameters and the
    hand vertices of the template under the global transform."""
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        mesh = record_mesh(i)
        vertices = mesh.vertices + rng.uniform(-0.02, 0.02, size=3)  # record origin != centroid
        labels = np.where(vertices[:, 2] > 0, 1, 5).astype(np.int8)
        betas = rng.normal(scale=0.5, size=10)
        pose = in_pca_span(rng.normal(scale=0.4, size=48), template)
        trans = np.array([0.0, -0.08, 0.02]) + rng.normal(scale=0.01, size=3)
        j0 = template.root_joint(betas)
        shaped = template.v_template + template.shapedirs @ betas
        records.append(GraspRecord(
            category=("mug", "bottle", "knife")[i % 3], object_id=f"obj{i:03d}", object_vertices=vertices,
            object_faces=np.asarray(mesh.faces), object_vertex_labels=labels,
            affordance=affordances[i % len(affordances)], intent=intents[i % len(intents)], hand_pose=pose,
            hand_betas=betas, hand_trans=trans, hand_verts=global_forward(shaped, pose, trans, j0),
            hand_faces=template.faces, frame=0, **fields))
    return records


def in_pca_span(pose: np.ndarray, template: HandTemplate, count: int = 24) -> np.ndarray:
    """(48,) pose whose fingers are projected on the template's first `count` PCA components (GRAB stores 24)."""
    basis = template.pca_basis(count)
    return np.concatenate([pose[:3], (pose[3:] @ basis.T) @ basis])


def centroid_of(record: GraspRecord) -> np.ndarray:
    return trimesh.Trimesh(record.object_vertices, record.object_faces, process=False).center_mass


def assert_same_rotations(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> None:
    """Axis-angle vectors (..., 3) compared as rotation matrices (axis-angle is not unique)."""
    np.testing.assert_allclose(rotvec_to_matrix(np.reshape(a, (-1, 3))), rotvec_to_matrix(np.reshape(b, (-1, 3))),
                               atol=atol)


# -- OBJ text ------------------------------------------------------------------------------------------------
def test_obj_round_trip_keeps_vertices_faces_and_labels():
    mesh = trimesh.creation.box()
    labels = np.arange(len(mesh.vertices)) % 3
    vertices, faces, parsed = parse_obj(format_obj(mesh.vertices * 0.123456789, mesh.faces, labels), "x.obj")
    np.testing.assert_allclose(vertices, mesh.vertices * 0.123456789, rtol=1e-8)
    np.testing.assert_array_equal(faces, mesh.faces)
    np.testing.assert_array_equal(parsed, labels)
    assert parse_obj(format_obj(mesh.vertices, mesh.faces), "x.obj")[2] is None


def test_obj_vertex_colours_are_ignored_not_taken_for_labels():
    vertices, _, labels = parse_obj("v 0 0 0 0.5 0.5 0.5\nv 1 0 0 1 0 0\nv 0 1 0 0 1 0\nf 1 2 3\n", "rgb.obj")
    np.testing.assert_array_equal(vertices, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert labels is None


def test_obj_polygons_are_fan_triangulated_and_negative_indices_resolve():
    text = "# quad\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nf 1/1 2/1 3/1 -1\n"
    _, faces, _ = parse_obj(text, "quad.obj")
    np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize(("text", "line", "words"), [
    ("v 0 0 0\nv 1 0\nf 1 2 1\n", 2, "3 coordinates"),
    ("v 0 0 0\nv 1 x 0\nf 1 2 1\n", 2, "non-numeric"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", 4, "out of range"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", 4, "at least 3"),
    ("v 0 0 0 1\nv 1 0 0\nv 0 1 0 1\nf 1 2 3\n", 2, "without a label"),
    ("v 0 0 0 1\nv 1 0 0 2.5\nf 1 2 1\n", 2, "not an integer"),
])
def test_obj_errors_name_file_and_line(text, line, words):
    with pytest.raises(IngestError) as caught:
        parse_obj(text, "bad/mesh.obj", field="object_mesh")
    assert caught.value.path == "bad/mesh.obj" and caught.value.field == "object_mesh"
    assert f"line {line}:" in str(caught.value) and words in str(caught.value)


def test_obj_empty_mesh_is_an_error():
    with pytest.raises(IngestError, match="is empty"):
        parse_obj("# nothing\n", "e.obj")
    with pytest.raises(IngestError, match="0 faces"):
        parse_obj("v 0 0 0\n", "e.obj")
    assert parse_obj("v 0 0 0\n", "e.obj", require_faces=False)[0].shape == (1, 3)


# -- safe pickles --------------------------------------------------------------------------------------------
class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_safe_load_pickle_refuses_code_and_does_not_run_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "meta.pkl"
    path.write_bytes(pickle.dumps({"handPose": np.zeros(48), "x": _Evil(marker)}))
    with pytest.raises(IngestError) as caught:
        safe_load_pickle(path, "train/SEQ/meta/0000.pkl", field="meta")
    assert "system" in str(caught.value) and "train/SEQ/meta/0000.pkl" in str(caught.value)
    assert caught.value.field == "meta"
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_safe_load_pickle_reads_arrays_scalars_and_containers(tmp_path, protocol):
    data = {"pose": np.arange(48, dtype=np.float32), "name": "021_bleach", "n": np.int64(3), "f": 1.5,
            "nested": [(1, 2), {"b": b"xy"}], "none": None, "text": np.array("abc")}
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    loaded = safe_load_pickle(path)
    np.testing.assert_array_equal(loaded["pose"], data["pose"])
    assert loaded["pose"].dtype == np.float32
    assert loaded["name"] == "021_bleach" and loaded["n"] == 3 and loaded["nested"] == [(1, 2), {"b": b"xy"}]
    assert loaded["none"] is None and str(loaded["text"]) == "abc"


def test_safe_load_pickle_truncated_file_is_an_ingest_error(tmp_path):
    path = tmp_path / "cut.pkl"
    path.write_bytes(pickle.dumps({"pose": np.zeros(48)})[:40])
    with pytest.raises(IngestError, match="truncated or corrupt"):
        safe_load_pickle(path)
    with pytest.raises(IngestError, match="not found"):
        safe_load_pickle(tmp_path / "missing.pkl")


# -- MANO frame changes --------------------------------------------------------------------------------------
def test_rigid_transform_mano_matches_transforming_the_posed_points():
    rng = np.random.default_rng(1)
    points, j0 = rng.normal(scale=0.05, size=(200, 3)), rng.normal(scale=0.05, size=3)
    pose, trans = rng.normal(scale=1.0, size=48), rng.normal(scale=0.3, size=3)
    rotation = trimesh.transformations.random_rotation_matrix(rng.uniform(size=3))[:3, :3]
    translation = rng.normal(size=3)
    before = global_forward(points, pose, trans, j0)
    new_pose, new_trans = rigid_transform_mano(pose, trans, j0, rotation, translation)
    np.testing.assert_allclose(global_forward(points, new_pose, new_trans, j0), before @ rotation.T + translation,
                               atol=1e-12)
    np.testing.assert_array_equal(new_pose[3:], pose[3:])  # finger rotations are parent-relative


def test_rigid_transform_mano_round_trips_through_the_inverse():
    rng = np.random.default_rng(2)
    pose, trans, j0 = rng.normal(size=48), rng.normal(size=3), rng.normal(size=3)
    rotation = trimesh.transformations.random_rotation_matrix(rng.uniform(size=3))[:3, :3]
    translation = rng.normal(size=3)
    there = rigid_transform_mano(pose, trans, j0, rotation, translation)
    back_pose, back_trans = rigid_transform_mano(*there, j0, rotation.T, -rotation.T @ translation)
    assert_same_rotations(back_pose[:3], pose[:3], atol=1e-10)
    np.testing.assert_allclose(back_trans, trans, atol=1e-12)


def test_root_joint_is_the_first_regressed_joint_of_the_shaped_template():
    template = make_template()
    betas = np.random.default_rng(3).normal(size=10)
    shaped = template.v_template + np.einsum("vck,k->vc", template.shapedirs, betas)
    expected = template.J_regressor[0] @ shaped
    np.testing.assert_allclose(template.root_joint(betas), expected, atol=1e-12)
    sparse = scipy.sparse.csc_matrix(template.J_regressor)  # the MANO pickle stores it sparse
    np.testing.assert_allclose(root_joint(template.v_template, template.shapedirs, sparse, betas), expected,
                               atol=1e-12)
    mano = {"v_template": template.v_template, "shapedirs": template.shapedirs, "J_regressor": sparse,
            "f": template.faces}
    np.testing.assert_allclose(HandTemplate.from_mano(mano).root_joint(betas), expected, atol=1e-12)
    vtemp = template.v_template + 0.01
    np.testing.assert_allclose(template.root_joint(np.zeros(10), v_template=vtemp),
                               template.J_regressor[0] @ vtemp, atol=1e-12)


# -- split, finite checks, rejects ---------------------------------------------------------------------------
def test_split_for_is_md5_mod_10_and_about_80_10_10():
    ids = [f"obj-{i}" for i in range(20000)]
    splits = [split_for(i) for i in ids]
    assert splits == [split_for(i) for i in ids]
    for object_id, split in zip(ids[:200], splits[:200], strict=True):
        bucket = int(hashlib.md5(object_id.encode()).hexdigest(), 16) % 10
        assert split == ("train" if bucket < 8 else "val" if bucket == 8 else "test")
    shares = {name: splits.count(name) / len(splits) for name in ("train", "val", "test")}
    assert abs(shares["train"] - 0.8) < 0.015 and abs(shares["val"] - 0.1) < 0.01 and abs(shares["test"] - 0.1) < 0.01


def test_check_finite_names_the_field():
    np.testing.assert_array_equal(check_finite("handTrans", [1, 2, 3], (3,), "a.pkl"), [1.0, 2.0, 3.0])
    with pytest.raises(IngestError, match=r"a\.pkl: field handTrans: non-finite value nan at flat index 1"):
        check_finite("handTrans", [1, np.nan, 3], (3,), "a.pkl")
    with pytest.raises(IngestError, match=r"field handPose: expected shape \(48\), got \(47,\)"):
        check_finite("handPose", np.zeros(47), (48,), "a.pkl")
    with pytest.raises(IngestError, match=r"expected shape \(Nx3\)"):
        check_finite("transl", np.zeros((4, 2)), (None, 3), "a.npz")
    with pytest.raises(IngestError, match="missing"):
        check_finite("handPose", None, (48,), "a.pkl")


def test_reject_from_keys_on_the_grasp_file_and_names_the_broken_one():
    error = IngestError("models/mug/textured_simple.obj", "mesh", "mesh file not found")
    reject = reject_from(error, "ho3d", index=4, source="train/S1/meta/0004.pkl")
    assert reject.sample_id == make_sample_id("ho3d", "train/S1/meta/0004.pkl", 4)
    assert reject.source == "train/S1/meta/0004.pkl" and reject.field == "mesh" and reject.dataset == "ho3d"
    assert "models/mug/textured_simple.obj" in reject.reason and reject.stage == "ingest"


def test_unanticipated_errors_still_name_the_file():
    error = as_ingest_error("grab/s1/a_b_1.npz", ValueError("bad"))
    assert error.field is None and str(error) == "grab/s1/a_b_1.npz: unexpected ValueError: bad"
    original = IngestError("x.pkl", "meta", "truncated")
    assert as_ingest_error("y.pkl", original) is original


def test_raw_sample_row_validates_as_a_sample_once_points_are_added():
    mesh = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    raw = RawSample(sample_id=make_sample_id("grab", "grab/s1/mug_drink_1.npz", 3), dataset="grab", split="train",
                    source_path="grab/s1/mug_drink_1.npz", source_index=3, content_hash=content_hash("ab", "cd"),
                    object_id="mug", object_category="mug", object_vertices=mesh.vertices,
                    object_faces=mesh.faces, hand_pose=np.zeros(48), hand_betas=np.zeros(10),
                    hand_trans=np.zeros(3), intent="drink", hand_template=np.zeros((778, 3)))
    row = raw.row()
    assert "hand_template" not in row and "affordance" not in row
    sample = Sample.model_validate(row | {"object_points": mesh.vertices})
    assert sample.intent == "drink" and sample.source_index == 3


# -- meshes --------------------------------------------------------------------------------------------------
def test_load_mesh_reads_obj_and_ply_and_names_each_failure(tmp_path):
    box = trimesh.creation.box(extents=(0.1, 0.2, 0.3))
    (tmp_path / "box.obj").write_text(format_obj(box.vertices, box.faces))
    box.export(tmp_path / "box.ply")
    for name in ("box.obj", "box.ply"):
        vertices, faces = load_mesh(tmp_path / name)
        np.testing.assert_allclose(vertices, box.vertices, atol=1e-6)
        np.testing.assert_array_equal(faces, box.faces)
    (tmp_path / "open.obj").write_text(format_obj(box.vertices, box.faces[:-1]))
    (tmp_path / "empty.obj").write_text("# no geometry\n")
    nan = box.vertices.copy()
    nan[0, 0] = np.nan
    (tmp_path / "nan.obj").write_text(format_obj(nan, box.faces))
    (tmp_path / "short.obj").write_text(format_obj(box.vertices, box.faces).replace("\nf ", "\nv 1 2\nf ", 1))
    for name, words in [("missing.obj", "not found"), ("open.obj", "not watertight"), ("empty.obj", "empty"),
                        ("nan.obj", "non-finite"), ("short.obj", f"line {len(box.vertices) + 1}:")]:
        with pytest.raises(IngestError, match=words) as caught:
            load_mesh(tmp_path / name, where=f"models/{name}")
        assert caught.value.path == f"models/{name}" and caught.value.field == "mesh"
    assert load_mesh(tmp_path / "open.obj", require_watertight=False)[1].shape == (11, 3)


def test_canonical_mesh_centres_on_volume_centroid_or_vertex_mean(tmp_path):
    cone = trimesh.creation.cone(radius=0.05, height=0.1, sections=16)
    cone.vertices += [0.1, 0.0, 0.0]
    (tmp_path / "cone.obj").write_text(format_obj(cone.vertices, cone.faces))
    mesh = load_canonical_mesh(tmp_path, "cone.obj")
    np.testing.assert_allclose(mesh.centroid, cone.center_mass, atol=1e-9)
    assert abs(mesh.centroid[2] - cone.vertices[:, 2].mean()) > 1e-3  # not the vertex mean for a cone
    np.testing.assert_allclose(mesh.vertices, cone.vertices - cone.center_mass, atol=1e-9)
    (tmp_path / "open.obj").write_text(format_obj(cone.vertices, cone.faces[:-2]))
    open_mesh = load_canonical_mesh(tmp_path, "open.obj", require_watertight=False)
    np.testing.assert_allclose(open_mesh.centroid, cone.vertices.mean(axis=0), atol=1e-9)


def test_mesh_cache_loads_once_evicts_oldest_and_remembers_errors():
    cache = MeshCache(maxsize=2)
    calls: list[str] = []

    def loader(key: str):
        def load() -> CanonicalMesh:
            calls.append(key)
            if key == "bad":
                raise IngestError("bad.obj", "mesh", "mesh file not found")
            return CanonicalMesh(np.zeros((3, 3)), np.zeros((1, 3), int), None, np.zeros(3), key, key)
        return load

    for key in ["a", "a", "b", "a", "c", "b"]:
        cache.get(key, loader(key))
    assert calls == ["a", "b", "c", "b"] and len(cache) == 2  # "b" was evicted by "c" (a used more recently)
    for _ in range(2):
        with pytest.raises(IngestError, match=r"bad\.obj"):
            cache.get("bad", loader("bad"))
    assert calls.count("bad") == 1


def test_touching_closed_shells_count_as_watertight(tmp_path):
    """Two closed boxes sharing an edge: closed as stored, non-manifold once merged; accepted."""
    from tasks.ingest.common import IngestError
    from tasks.ingest.meshes import check_mesh

    a = trimesh.creation.box(extents=(1, 1, 1))
    b = trimesh.creation.box(extents=(1, 1, 1))
    b.apply_translation((1, 1, 0))  # shares the edge x=0.5, y=0.5 with `a`
    vertices = np.concatenate([a.vertices, b.vertices])
    faces = np.concatenate([a.faces, b.faces + len(a.vertices)])
    assert check_mesh(vertices, faces, "two_boxes.obj", require_watertight=True) is not None
    with pytest.raises(IngestError, match="not watertight"):
        check_mesh(vertices, faces[:-1], "two_boxes.obj", require_watertight=True)
