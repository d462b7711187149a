"""GRAB: write synthetic sequences as GRAB's nested-dict npz files (loaded without np.load's pickle path), read
their frames back into the canonical frame, and turn broken files and frames into Rejects."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import trimesh

from schemas.ids import make_sample_id
from schemas.rows import Reject, Sample
from tasks.ingest.common import GraspRecord, RawSample, split_for
from tasks.ingest.grab import iter_grab, load_npz_safely, write_grab
from tasks.ingest.mano_frame import HandTemplate, rotvec_to_matrix
from tests.tasks.ingest.test_common import (
    _Evil,
    assert_same_rotations,
    centroid_of,
    global_forward,
    in_pca_span,
    make_records,
    make_template,
)

FRAMES = 2


def grab_records(n_sequences: int, template: HandTemplate, seed: int = 0) -> list[GraspRecord]:
    """`n_sequences` sequences of FRAMES frames, one object and one subject (s1, s2, ...) each."""
    rng = np.random.default_rng(seed)
    records = []
    for k, base in enumerate(make_records(n_sequences, template, seed=seed)):
        action = ("drink", "pass", "lift")[k % 3]
        for frame in range(FRAMES):
            records.append(dataclasses.replace(
                base, hand_pose=in_pca_span(rng.normal(scale=0.4, size=48), template),
                hand_trans=base.hand_trans + 0.01 * frame,
                intent=action, subject=f"s{k + 1}", sequence=f"{base.object_id}_{action}_1", frame=frame))
    return records


def _dataset(tmp_path: Path, n_sequences: int) -> tuple[list[GraspRecord], list[Path]]:
    records = grab_records(n_sequences, make_template())
    return records, write_grab(tmp_path, records, np.random.default_rng(1), make_template())


def test_files_mirror_grab_npz_structure(tmp_path):
    records, paths = _dataset(tmp_path, 1)
    assert paths[0].relative_to(tmp_path).as_posix() == "grab/s1/obj000_drink_1.npz"
    data = load_npz_safely(paths[0], "grab/s1/obj000_drink_1.npz")
    assert data["obj_name"] == "obj000" and data["motion_intent"] == "drink" and data["n_frames"] == FRAMES
    assert set(data["rhand"]["params"]) == {"global_orient", "hand_pose", "transl", "fullpose"}
    assert data["rhand"]["params"]["fullpose"].shape == (FRAMES, 45)
    assert data["rhand"]["params"]["hand_pose"].shape == (FRAMES, 24)
    assert data["rhand"]["vtemp"] == "tools/subject_meshes/male/s1_rhand.ply"
    assert data["object"]["object_mesh"] == "tools/object_meshes/contact_meshes/obj000.ply"
    # GRAB's own nesting: 0-d object arrays, which numpy refuses to read without pickles
    with np.load(paths[0], allow_pickle=False) as plain, pytest.raises(ValueError, match="allow_pickle"):
        _ = plain["rhand"]
    vtemp = trimesh.load(tmp_path / data["rhand"]["vtemp"], process=False).vertices
    template = make_template()
    np.testing.assert_allclose(vtemp, template.v_template + template.shapedirs @ records[0].hand_betas, atol=1e-6)


def test_fullpose_is_the_expansion_of_the_24_pca_coefficients(tmp_path):
    """GRAB's code (smplx MANO, use_pca=True, num_pca_comps=24, flat_hand_mean=True) builds the fingers as
    hand_pose @ hands_components[:24] with no mean added; the file's fullpose must be that same pose."""
    records, paths = _dataset(tmp_path, 1)
    params = load_npz_safely(paths[0], "seq.npz")["rhand"]["params"]
    expansion = params["hand_pose"].astype(np.float64) @ make_template().hands_components[:24]
    np.testing.assert_allclose(params["fullpose"], expansion, atol=1e-6)
    np.testing.assert_allclose(expansion, np.stack([r.hand_pose[3:] for r in records]), atol=1e-6)


def test_a_fullpose_that_disagrees_with_hand_pose_is_rejected_by_name(tmp_path):
    _, paths = _dataset(tmp_path, 1)
    data = load_npz_safely(paths[0], "seq.npz")
    data["rhand"]["params"]["fullpose"][1, 7] += 0.1  # frame 1 only
    np.savez(paths[0], **data)
    items = list(iter_grab(tmp_path, make_template()))
    assert [type(i).__name__ for i in items] == ["RawSample", "Reject"]
    assert items[1].field == "rhand.params.fullpose" and "by 0.1000 rad" in items[1].reason


def test_written_poses_follow_grab_object_model(tmp_path):
    """Independent of the loader: GRAB places the object as v @ R(global_orient) + transl (row vectors);
    undoing exactly that must put the hand where the record had it."""
    records, paths = _dataset(tmp_path, 1)
    template = make_template()
    data = load_npz_safely(paths[0], "seq.npz")
    vtemp = template.v_template + template.shapedirs @ records[0].hand_betas
    j0 = template.J_regressor[0] @ vtemp
    for frame, record in enumerate(records):
        hand, obj = data["rhand"]["params"], data["object"]["params"]
        pose = np.concatenate([hand["global_orient"][frame], hand["fullpose"][frame]]).astype(np.float64)
        hand_world = global_forward(vtemp, pose, hand["transl"][frame], j0)
        rot, transl = rotvec_to_matrix(obj["global_orient"][frame]), obj["transl"][frame]
        np.testing.assert_allclose((hand_world - transl) @ rot.T,  # inverse of x @ R + t
                                   global_forward(vtemp, record.hand_pose, record.hand_trans, j0), atol=1e-5)


def test_round_trip_recovers_every_frame_in_the_object_frame(tmp_path):
    records, _ = _dataset(tmp_path, 3)
    template = make_template()
    loaded = {(s.source_path, s.source_index): s for s in iter_grab(tmp_path, template)}
    assert all(isinstance(s, RawSample) for s in loaded.values()) and len(loaded) == len(records)
    for record in records:
        relative = f"grab/{record.subject}/{record.sequence}.npz"
        sample, centroid = loaded[(relative, record.frame)], centroid_of(record)
        assert sample.sample_id == make_sample_id("grab", relative, record.frame)
        assert sample.intent == record.intent and sample.affordance is None
        assert sample.object_id == record.object_id and sample.split == split_for(record.object_id)
        np.testing.assert_allclose(sample.object_vertices, record.object_vertices - centroid, atol=1e-6)
        np.testing.assert_array_equal(sample.object_faces, record.object_faces)
        assert_same_rotations(sample.hand_pose[:3], record.hand_pose[:3], atol=1e-5)
        np.testing.assert_allclose(sample.hand_pose[3:], record.hand_pose[3:], atol=1e-6)
        np.testing.assert_allclose(sample.hand_trans, record.hand_trans - centroid, atol=1e-5)
        np.testing.assert_array_equal(sample.hand_betas, np.zeros(10))
        shaped = template.v_template + template.shapedirs @ record.hand_betas
        np.testing.assert_allclose(sample.hand_template, shaped, atol=1e-6)
        Sample.model_validate(sample.row() | {"object_points": sample.object_vertices})


def test_frame_step_subsamples_and_ids_keep_the_frame_index(tmp_path):
    records = [dataclasses.replace(r, frame=i) for i, r in enumerate(make_records(1, make_template()) * 5)]
    write_grab(tmp_path, records, np.random.default_rng(0), make_template())
    indices = [s.source_index for s in iter_grab(tmp_path, make_template(), frame_step=2)]
    assert indices == [0, 2, 4]
    with pytest.raises(ValueError, match="frame_step"):
        next(iter_grab(tmp_path, make_template(), frame_step=0))


def _rewrite(path: Path, change) -> None:
    with np.load(path, allow_pickle=True) as archive:  # our own test file: trusted
        data = {key: archive[key].item() if archive[key].dtype == object else archive[key] for key in archive.files}
    change(data)
    np.savez(path, **data)


def _nan_transl(data: dict) -> None:
    data["rhand"]["params"]["transl"][1, 1] = np.nan


def _mesh(root: Path, path: Path) -> Path:
    return root / "tools/object_meshes/contact_meshes" / f"{path.stem.split('_')[0]}.ply"


def _open_mesh(root: Path, path: Path) -> None:
    mesh = trimesh.load(_mesh(root, path), process=False)
    trimesh.Trimesh(mesh.vertices, mesh.faces[:-1], process=False).export(_mesh(root, path))


BREAKAGES = {  # failure mode -> (how, field named in the reject, words in the reason, rejects, samples left)
    "truncated npz": (lambda root, p: p.write_bytes(p.read_bytes()[:300]), "npz", "truncated", 1, 0),
    "nan in one frame": (lambda root, p: _rewrite(p, _nan_transl), "rhand.params.transl", "frame 1:", 1, 1),
    "fullpose of width 44": (lambda root, p: _rewrite(p, lambda d: d["rhand"]["params"].update(
        fullpose=np.zeros((FRAMES, 44)))), "rhand.params.fullpose", "got (2, 44)", 1, 0),
    "missing object mesh": (lambda root, p: _mesh(root, p).unlink(), "mesh", "not found", 1, 0),
    "non-watertight mesh": (_open_mesh, "mesh", "not watertight", 1, 0),
    "empty mesh": (lambda root, p: trimesh.PointCloud(np.zeros((3, 3))).export(_mesh(root, p)), "mesh", "empty",
                   1, 0),
    "pickle that runs code": (lambda root, p: _rewrite(p, lambda d: d["rhand"].update(vtemp=_Evil(root / "pwned"))),
                              "rhand", "refused", 1, 0),
    "missing subject template": (lambda root, p: next((root / "tools/subject_meshes").rglob(
        f"{p.parent.name}_rhand.ply")).unlink(), "rhand.vtemp", "not found", 1, 0),
    "mesh path leaving the root": (lambda root, p: _rewrite(p, lambda d: d["object"].update(
        object_mesh="../../etc/passwd")), "object.object_mesh", "leaves the dataset root", 1, 0),
}


def test_each_broken_file_or_frame_becomes_exactly_the_expected_rejects(tmp_path):
    _, paths = _dataset(tmp_path, len(BREAKAGES) + 2)
    expected = {}
    for path, (mode, (breakage, field, words, _, _)) in zip(paths, BREAKAGES.items(), strict=False):
        breakage(tmp_path, path)
        expected[path.relative_to(tmp_path).as_posix()] = (mode, field, words)
    items = list(iter_grab(tmp_path, make_template()))
    rejects = [item for item in items if isinstance(item, Reject)]
    samples = [item for item in items if isinstance(item, RawSample)]
    assert len(rejects) == sum(b[3] for b in BREAKAGES.values())
    assert len(samples) == sum(b[4] for b in BREAKAGES.values()) + 2 * FRAMES
    inputs = 2 * FRAMES + sum(FRAMES if b[3] + b[4] == FRAMES else 1 for b in BREAKAGES.values())
    assert len(items) == inputs  # unreadable files count once, readable ones once per frame
    for reject in rejects:
        mode, field, words = expected[reject.source]
        assert reject.field == field and f"field {field}" in reject.reason and words in reject.reason, mode
    nan_reject = next(r for r in rejects if r.field == "rhand.params.transl")
    assert nan_reject.sample_id == make_sample_id("grab", nan_reject.source, 1)
    assert not (tmp_path / "pwned").exists()
