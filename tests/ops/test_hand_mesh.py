"""Closing the MANO mesh at the wrist: watertight, consistently wound, original vertices untouched."""

import numpy as np
import pytest
import torch
import trimesh

from models.mano import ManoLayer
from models.synthetic_hand import build_synthetic_hand
from ops.hand_mesh import boundary_loops, check_hand_verts, close_mesh, closed_hand
from ops.mesh_check import check_mesh


@pytest.fixture(scope="module")
def hand():
    params = build_synthetic_hand("right")
    layer = ManoLayer(params=params, use_pca=False)
    pose = torch.zeros(1, 48)
    pose[0, 3:] = 0.3  # curled fingers: closing must not depend on the flat pose
    verts = layer(pose)[0][0].numpy() / 1000  # millimetres -> metres
    return verts, layer.th_faces.numpy()


def test_mano_mesh_is_open_at_the_wrist(hand):
    verts, faces = hand
    assert not trimesh.Trimesh(verts, faces, process=False).is_watertight
    loops = boundary_loops(faces)
    assert len(loops) == 1 and len(loops[0]) == 16  # 1538 = 2 * 778 - 4 - (16 - 2)


def test_closed_hand_is_watertight_with_positive_volume(hand):
    verts, faces = hand
    closed = close_mesh(verts, faces)
    mesh = closed.trimesh()
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert 50e-6 < mesh.volume < 1000e-6  # m^3: an adult hand is a few hundred cm^3
    assert closed.vertices.shape == (779, 3) and closed.faces.shape == (1554, 3)
    np.testing.assert_array_equal(closed.vertices[:778], verts)


def test_capping_restores_a_box_with_a_missing_side():
    box = trimesh.creation.box((0.02, 0.03, 0.04))
    keep = np.abs(box.face_normals[:, 2] - 1.0) > 1e-9  # drop the two +z triangles
    closed = closed_hand(box.vertices, box.faces[keep])
    assert closed.is_watertight and closed.is_winding_consistent
    assert closed.volume == pytest.approx(0.02 * 0.03 * 0.04, rel=1e-9)


def test_watertight_mesh_comes_back_unchanged():
    box = trimesh.creation.box((0.01, 0.01, 0.01))
    closed = close_mesh(box.vertices, box.faces)
    np.testing.assert_array_equal(closed.faces, box.faces)
    assert len(closed.vertices) == len(box.vertices)


@pytest.mark.parametrize("verts, faces, match", [
    (np.zeros((0, 3)), np.zeros((1, 3), int), "hand is empty: 0 vertices"),
    (np.zeros((4, 2)), np.zeros((1, 3), int), "vertices must be"),
    (np.zeros((4, 3)), np.zeros((0, 3), int), "hand is empty: 4 vertices, 0 faces"),
    (np.zeros((4, 3)), np.array([[0, 1, 9]]), "faces index outside"),
    (np.full((4, 3), np.nan), np.array([[0, 1, 2]]), "NaN"),
    (np.zeros((4, 3)), np.array([[0.0, 1.0, 2.0]]), "integer"),
])
def test_bad_meshes_are_rejected(verts, faces, match):
    with pytest.raises(ValueError, match=match):
        check_mesh("hand", verts, faces)


def test_hand_verts_shape_is_checked():
    with pytest.raises(ValueError, match=r"\(778, 3\)"):
        check_hand_verts(np.zeros((777, 3)))
    assert check_hand_verts(np.zeros((778, 3))).dtype == np.float64
