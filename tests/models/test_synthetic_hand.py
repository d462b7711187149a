"""The generated MANO stand-in: MANO's fields and topology, fingertip ids, a hand's proportions, how it poses
through ManoLayer (rest, fist, pinch), the pickle round trip, and the mirrored left hand."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from models.mano import ManoLayer
from models.mano_pickle import FIELDS, ManoParams, load_mano_pickle
from models.synthetic_hand import (
    ROOT_JOINT_M,
    ROOT_SHIFT_PER_BETA0,
    build_synthetic_hand,
    mirror_hand,
    write_synthetic_mano,
)
from models.synthetic_hand_pose import curl_pose
from models.synthetic_hand_spec import DIGITS, FLEXION_AXES, OPPOSITION_AXIS

TIPS = {"thumb": 745, "index": 317, "middle": 444, "ring": 556, "pinky": 673}
CHAINS = {name: (3 * k + 1, 3 * k + 2, 3 * k + 3) for k, name in enumerate(DIGITS)}  # MANO joints per digit
PARENTS = [0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14]  # of joints 1..15


@pytest.fixture(scope="module")
def hand() -> ManoParams:
    return build_synthetic_hand("right")


@pytest.fixture(scope="module")
def layer(hand: ManoParams) -> ManoLayer:
    return ManoLayer(params=hand, use_pca=False, flat_hand_mean=True).double()


def posed(layer: ManoLayer, finger_pose: np.ndarray) -> np.ndarray:
    """(778, 3) vertices in metres for a (45,) finger pose, no global rotation."""
    verts, _ = layer(torch.tensor(np.r_[np.zeros(3), finger_pose][None], dtype=torch.float64))
    return verts[0].numpy() / 1000


def rest_joints(hand: ManoParams) -> np.ndarray:
    return hand.J_regressor @ hand.v_template  # (16, 3)


def directed_edges(faces: np.ndarray) -> Counter:
    return Counter((int(a), int(b)) for face in faces for a, b in zip(face, np.roll(face, -1), strict=True))


def signed_volume_closed_at_wrist(verts: np.ndarray, faces: np.ndarray) -> float:
    """Volume of the mesh with its open loops capped by fans to their centroid: > 0 when faces wind outward."""
    edges = directed_edges(faces)
    open_edges = [edge for edge in edges if edge[::-1] not in edges]
    centre = verts[np.unique(open_edges)].mean(axis=0)
    corners = verts[faces]
    volume = np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum()
    volume += sum(np.dot(verts[b], np.cross(verts[a], centre)) for a, b in open_edges)  # cap triangle (b, a, c)
    return float(volume / 6)


# ---- fields ---------------------------------------------------------------------------------------------------


def test_every_field_has_mano_shape_and_dtype_kind(hand: ManoParams) -> None:
    for name, (shape, dtype) in FIELDS.items():
        value = getattr(hand, name)
        assert value.shape == shape, name
        assert value.dtype.kind == np.dtype(dtype).kind, name
        assert np.isfinite(value).all(), name


def test_regressor_and_weights_are_convex_combinations(hand: ManoParams) -> None:
    for name in ("J_regressor", "weights"):
        rows = getattr(hand, name)
        assert rows.min() >= 0, name
        np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-12, err_msg=name)


def test_kintree_table_matches_the_official_file(hand: ManoParams) -> None:
    assert hand.kintree_table[0].tolist() == [2**32 - 1, *PARENTS]
    assert hand.kintree_table[1].tolist() == list(range(16))


def test_hands_components_are_orthonormal_and_lead_with_a_fist(hand: ManoParams) -> None:
    components = hand.hands_components
    np.testing.assert_allclose(components @ components.T, np.eye(45), atol=1e-12)
    curl = components[0].reshape(15, 3)[:12]  # the four fingers
    assert (np.einsum("ij,ij->i", curl, FLEXION_AXES[:12]) > 0.1).all()  # component 0 curls every finger joint
    cmc = components[1].reshape(15, 3)[12]
    assert cmc @ OPPOSITION_AXIS > 0.5  # component 1: thumb opposition


def test_hands_mean_is_a_slight_curl(hand: ManoParams) -> None:
    per_joint = np.einsum("ij,ij->i", hand.hands_mean.reshape(15, 3), FLEXION_AXES)
    assert (per_joint[:12] > 0.05).all() and (per_joint < 0.5).all()


def test_blend_shapes_are_small_and_orthogonal(hand: ManoParams) -> None:
    shapedirs = hand.shapedirs.copy()
    shapedirs[:, :, 0] -= ROOT_SHIFT_PER_BETA0 * ROOT_JOINT_M  # the part that moves J0 with betas[0]
    shape = shapedirs.reshape(-1, 10)
    gram = shape.T @ shape
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0, atol=1e-12)
    largest = np.linalg.norm(hand.shapedirs, axis=1).max(axis=0)  # metres per unit beta
    assert ((largest > 0.001) & (largest < 0.01)).all()
    assert 0 < np.abs(hand.posedirs).max() < 0.005


def test_pose_correctives_stay_near_their_joint(hand: ManoParams) -> None:
    for joint, parent in enumerate(PARENTS, start=1):
        moved = np.abs(hand.posedirs[:, :, 9 * (joint - 1) : 9 * joint]).max(axis=(1, 2)) > 0
        blended = (hand.weights[:, joint] > 0) & (hand.weights[:, parent] > 0)
        assert moved.any() and not (moved & ~blended).any(), joint


def test_build_is_deterministic(hand: ManoParams) -> None:
    again = build_synthetic_hand()
    for name in FIELDS:
        assert np.array_equal(getattr(hand, name), getattr(again, name)), name


def test_build_rejects_unknown_side() -> None:
    with pytest.raises(ValueError, match="side"):
        build_synthetic_hand("middle")


# ---- topology -------------------------------------------------------------------------------------------------


def test_one_wrist_boundary_loop_of_16_edges(hand: ManoParams) -> None:
    assert hand.v_template.shape == (778, 3) and hand.f.shape == (1538, 3)
    assert len(np.unique(hand.f)) == 778  # no stray vertex
    undirected = Counter(tuple(sorted(edge)) for edge in directed_edges(hand.f))
    boundary = [edge for edge, uses in undirected.items() if uses == 1]
    assert set(undirected.values()) == {1, 2}
    assert len(boundary) == 16
    neighbours: dict[int, list[int]] = {}
    for a, b in boundary:
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    assert len(neighbours) == 16 and all(len(n) == 2 for n in neighbours.values())
    loop, previous = [boundary[0][0]], None  # walk it: a single loop visits all 16 vertices
    while len(loop) < 17:
        step = next(n for n in neighbours[loop[-1]] if n != previous)
        previous = loop[-1]
        loop.append(step)
    assert loop[-1] == loop[0] and len(set(loop)) == 16
    assert np.abs(hand.v_template[loop, 0] - ROOT_JOINT_M[0]).max() < 0.01  # it is the wrist


def test_winding_is_consistent_and_outward(hand: ManoParams) -> None:
    assert max(directed_edges(hand.f).values()) == 1  # neighbours traverse a shared edge in opposite directions
    assert signed_volume_closed_at_wrist(hand.v_template, hand.f) > 1e-4  # > 100 cm^3


# ---- anatomy --------------------------------------------------------------------------------------------------


def test_tip_vertices_are_the_most_distal_of_their_digit(hand: ManoParams) -> None:
    joints = rest_joints(hand)
    for name, tip in TIPS.items():
        chain = CHAINS[name]
        on_digit = np.flatnonzero(hand.weights[:, list(chain)].sum(axis=1) > 0.5)
        direction = joints[chain[2]] - joints[chain[0]]
        reach = (hand.v_template[on_digit] - joints[chain[0]]) @ direction
        assert on_digit[np.argmax(reach)] == tip, name
        distance = np.linalg.norm(hand.v_template[on_digit] - joints[0], axis=1)
        assert on_digit[np.argmax(distance)] == tip, name


def test_joints_lie_inside_the_hand_in_order_along_each_digit(hand: ManoParams) -> None:
    joints = rest_joints(hand)
    low, high = hand.v_template.min(axis=0), hand.v_template.max(axis=0)
    # The wrist sits exactly on the template's back face (x = min x); the regressor's weighted sum may round it a
    # unit in the last place outside, depending on the CPU's summation order.
    assert ((joints >= low - 1e-9) & (joints <= high + 1e-9)).all()
    np.testing.assert_allclose(joints[0], ROOT_JOINT_M, atol=1e-9)  # the wrist where real MANO has it
    for name, tip in TIPS.items():
        chain = CHAINS[name]
        points = np.vstack([joints[0], joints[list(chain)], hand.v_template[tip]])
        direction = points[-1] - points[1]
        assert (np.diff(points @ direction) > 0.01 * np.linalg.norm(direction)).all(), name  # >= ~1 cm apart


def test_proportions_of_an_adult_hand(hand: ManoParams) -> None:
    joints = rest_joints(hand)
    assert 0.17 <= hand.v_template[TIPS["middle"], 0] - hand.v_template[:, 0].min() <= 0.20
    extent = hand.v_template.max(axis=0) - hand.v_template.min(axis=0)
    assert 0.17 <= extent[0] <= 0.20
    palm = hand.v_template[np.flatnonzero(hand.weights[:, 0] >= 0.5)]  # moves mostly with the wrist
    assert 0.07 <= palm[:, 2].max() - palm[:, 2].min() <= 0.09  # width
    assert 0.025 <= palm[:, 1].max() - palm[:, 1].min() <= 0.035  # thickness
    for name in ("index", "middle", "ring", "pinky"):
        length = np.linalg.norm(hand.v_template[TIPS[name]] - joints[CHAINS[name][0]])
        assert 0.068 <= length <= 0.092, name  # 7-9 cm


def test_it_is_a_right_hand(hand: ManoParams, layer: ManoLayer) -> None:
    """Fingers x palm side (where curling fingers go) points to the thumb side on a right hand."""
    joints = rest_joints(hand)
    fingers = hand.v_template[TIPS["middle"]] - joints[CHAINS["middle"][0]]
    palm_side = posed(layer, curl_pose({"middle": 0.3}))[TIPS["middle"]] - hand.v_template[TIPS["middle"]]
    thumb_side = hand.v_template[TIPS["thumb"]] - joints[CHAINS["middle"][0]]
    assert np.cross(fingers, palm_side) @ thumb_side > 0
    assert palm_side[1] > 0 and thumb_side[2] > 0 and fingers[0] > 0  # the documented axes: +y palm, +z thumb


def test_flexion_axes_are_unit_and_across_their_segment(hand: ManoParams) -> None:
    joints = rest_joints(hand)
    np.testing.assert_allclose(np.linalg.norm(FLEXION_AXES, axis=1), 1.0)
    for name, chain in CHAINS.items():
        ends = [*joints[list(chain[1:])], hand.v_template[TIPS[name]]]  # where each joint's segment ends
        for joint, end in zip(chain, ends, strict=True):
            segment = (end - joints[joint]) / np.linalg.norm(end - joints[joint])
            assert abs(segment @ FLEXION_AXES[joint - 1]) < 0.05, (name, joint)


# ---- posing through ManoLayer ---------------------------------------------------------------------------------


def test_zero_pose_reproduces_the_template_in_millimetres(hand: ManoParams, layer: ManoLayer) -> None:
    verts, _ = layer(torch.zeros(1, 48, dtype=torch.float64))
    np.testing.assert_allclose(verts[0].numpy(), hand.v_template * 1000, atol=1e-6)


def test_a_full_curl_closes_every_finger_without_tearing(hand: ManoParams, layer: ManoLayer) -> None:
    joints = rest_joints(hand)
    palm_centre = joints[[0, 1, 4, 7, 10]].mean(axis=0)
    verts = posed(layer, curl_pose(1.0))
    for name in ("index", "middle", "ring", "pinky"):
        before = np.linalg.norm(hand.v_template[TIPS[name]] - palm_centre)
        after = np.linalg.norm(verts[TIPS[name]] - palm_centre)
        assert before - after > 0.03, name
    assert np.linalg.norm(verts - hand.v_template, axis=1).max() < 0.2
    edge_before = np.linalg.norm(np.diff(hand.v_template[hand.f], axis=1), axis=2)
    edge_after = np.linalg.norm(np.diff(verts[hand.f], axis=1), axis=2)
    assert (edge_after < 3 * edge_before + 0.002).all()  # no edge stretched into a tear


def test_curling_one_finger_moves_its_tip_toward_the_palm_side(hand: ManoParams, layer: ManoLayer) -> None:
    for name, tip in TIPS.items():
        verts = posed(layer, curl_pose({name: 0.5}))
        assert verts[tip, 1] - hand.v_template[tip, 1] > 0.01, name  # +y is the palm side
        others = [t for other, t in TIPS.items() if other != name]
        np.testing.assert_allclose(verts[others], hand.v_template[others], atol=1e-9)


def test_opposition_pose_brings_the_thumb_to_the_index(hand: ManoParams, layer: ManoLayer) -> None:
    rest_gap = np.linalg.norm(hand.v_template[TIPS["thumb"]] - hand.v_template[TIPS["index"]])
    verts = posed(layer, curl_pose({"index": 0.7, "thumb": 0.2}, thumb_opposition=1.0))
    assert rest_gap > 0.05
    assert np.linalg.norm(verts[TIPS["thumb"]] - verts[TIPS["index"]]) < 0.03


def test_curl_pose_layout_and_checks() -> None:
    pose = curl_pose({"ring": (0.1, 0.2, 0.3)}).reshape(15, 3)
    np.testing.assert_allclose(pose[9:12], FLEXION_AXES[9:12] * [[0.1], [0.2], [0.3]])
    assert not np.delete(pose, [9, 10, 11], axis=0).any()
    np.testing.assert_allclose(curl_pose(0.4, side="left"), curl_pose(0.4) * np.tile([1.0, -1.0, -1.0], 15))
    for bad in ({"thumbs": 1.0}, {"index": (1.0, 2.0)}, {"index": float("nan")}):
        with pytest.raises(ValueError, match="finger_curl"):
            curl_pose(bad)
    with pytest.raises(ValueError, match="side"):
        curl_pose(0.1, side="both")


# ---- files and the left hand ----------------------------------------------------------------------------------


def test_write_and_load_round_trip_is_exact(tmp_path, hand: ManoParams) -> None:
    paths = write_synthetic_mano(tmp_path / "mano")
    assert {side: path.name for side, path in paths.items()} == {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}
    right, left = load_mano_pickle(paths["right"]), load_mano_pickle(paths["left"])
    expected_left = mirror_hand(hand)
    for name in FIELDS:
        assert np.array_equal(getattr(right, name), getattr(hand, name)), name
        assert np.array_equal(getattr(left, name), getattr(expected_left, name)), name


def test_left_hand_is_the_mirror_image_and_winds_outward(hand: ManoParams) -> None:
    left = build_synthetic_hand("left")
    np.testing.assert_array_equal(left.v_template, hand.v_template * [-1.0, 1.0, 1.0])
    np.testing.assert_array_equal(left.J_regressor, hand.J_regressor)
    assert signed_volume_closed_at_wrist(left.v_template, left.f) > 1e-4
    assert max(directed_edges(left.f).values()) == 1


def test_left_hand_poses_as_the_mirror_of_the_right(hand: ManoParams) -> None:
    """Same PCA coefficients and betas on both models: the left result is the right one with x negated, which
    checks the mirrored posedirs, shapedirs, hands_components and hands_mean together."""
    generator = torch.Generator().manual_seed(0)
    coeffs = torch.randn(2, 3 + 12, generator=generator, dtype=torch.float64) * 0.6
    coeffs[:, :3] = 0  # the global rotation mirrors too, but it is the layer's business, not the model's
    betas = torch.randn(2, 10, generator=generator, dtype=torch.float64)
    outputs = {}
    for side, params in (("right", hand), ("left", build_synthetic_hand("left"))):
        layer = ManoLayer(params=params, side=side, use_pca=True, ncomps=12, flat_hand_mean=False).double()
        outputs[side] = layer(coeffs, betas)[0].numpy()
    assert np.abs(outputs["right"] - hand.v_template * 1000).max() > 10  # the pose did something
    np.testing.assert_allclose(outputs["left"], outputs["right"] * [-1.0, 1.0, 1.0], atol=1e-9)


def test_the_root_joint_sits_off_the_origin_and_moves_with_shape(hand: ManoParams) -> None:
    """Real MANO_RIGHT.pkl has J0 at about (95.7, 6.4, 6.2) mm and moves it with betas; so does this hand, so a
    frame change that forgets MANO rotates about J0 shows up in tests."""
    def root(betas: np.ndarray) -> np.ndarray:
        return hand.J_regressor[0] @ (hand.v_template + hand.shapedirs @ betas)

    np.testing.assert_allclose(root(np.zeros(10)) * 1000, (95.7, 6.4, 6.2), atol=1e-9)
    moved = root(np.eye(10)[0] * 2.0) - root(np.zeros(10))
    np.testing.assert_allclose(moved, 2.0 * ROOT_SHIFT_PER_BETA0 * ROOT_JOINT_M, atol=1e-12)
    assert np.linalg.norm(moved) > 0.003  # millimetres, not rounding
