"""Contact ratio: far hands give 0 %, touching hands 100 %, the 5 mm threshold is where it switches."""

import numpy as np
import pytest
import torch
import trimesh

from models.mano import ManoLayer
from models.synthetic_hand import build_synthetic_hand
from tasks.grasp.evaluation.contact import contact_distance, contact_ratio, in_contact, object_mesh, vertex_distances


@pytest.fixture(scope="module")
def hand_verts():
    params = build_synthetic_hand("right")
    return ManoLayer(params=params, use_pca=False)(torch.zeros(1, 48))[0][0].numpy().astype(np.float64) / 1000


@pytest.fixture(scope="module")
def obj():
    cube = trimesh.creation.box((0.04, 0.04, 0.04))
    return object_mesh(cube.vertices, cube.faces)


def beside(hand_verts: np.ndarray, gap_m: float) -> np.ndarray:
    """The hand moved so its lowest-x vertex is `gap_m` beyond the cube's +x face (x = 2 cm), at the cube's
    mid-height: the closest vertex is then exactly `gap_m` from the surface."""
    low = hand_verts[hand_verts[:, 0].argmin()]
    return hand_verts + (np.array([0.02 + gap_m, 0.0, 0.0]) - low)


@pytest.mark.parametrize("gap_mm, touching", [(100.0, False), (7.0, False), (4.0, True), (0.5, True), (-3.0, True)])
def test_contact_switches_at_5_mm(hand_verts, obj, gap_mm, touching):
    distances = vertex_distances(beside(hand_verts, gap_mm / 1000), obj)
    assert in_contact(distances) is touching
    if gap_mm > 0:
        assert contact_distance(distances) == pytest.approx(gap_mm / 1000, abs=1e-9)
    else:
        assert distances.inside.any() and contact_distance(distances) == 0.0


def test_ratio_of_far_and_touching_hands(hand_verts, obj):
    far = [in_contact(vertex_distances(beside(hand_verts, 0.1 + i / 100), obj)) for i in range(3)]
    near = [in_contact(vertex_distances(beside(hand_verts, 0.001 * i), obj)) for i in range(3)]
    assert contact_ratio(far) == 0.0
    assert contact_ratio(near) == 100.0
    assert contact_ratio(far[:1] + near[:1]) == 50.0


def test_bad_inputs_are_rejected(obj):
    with pytest.raises(ValueError, match="at least one grasp"):
        contact_ratio([])
    with pytest.raises(ValueError, match="points must be"):
        vertex_distances(np.zeros((5, 2)), obj)
    with pytest.raises(ValueError, match="threshold_m"):
        in_contact(vertex_distances(np.zeros((1, 3)), obj), threshold_m=-1.0)
