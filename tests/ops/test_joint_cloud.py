import numpy as np
import pytest

from ops.fps import fps_naive
from ops.joint_cloud import joint_cloud


def hand_and_object(num_hand: int = 50, num_object: int = 200, seed: int = 0):
    rng = np.random.default_rng(seed)
    obj = rng.normal(scale=0.04, size=(num_object, 3))
    hand = rng.normal(scale=0.03, size=(num_hand, 3)) + np.array([0.0, -0.08, 0.0])  # beside the object, metres
    return hand.astype(np.float32), obj.astype(np.float32)


def test_exact_count_and_dtypes():
    hand, obj = hand_and_object()
    cloud = joint_cloud(hand, obj, 64)
    assert cloud.points.shape == (64, 3) and cloud.points.dtype == np.float32
    assert cloud.is_hand.shape == (64,) and cloud.is_hand.dtype == np.bool_
    assert len(np.unique(cloud.source_index)) == 64


def test_flags_match_the_source_arrays():
    hand, obj = hand_and_object()
    cloud = joint_cloud(hand, obj, 64, seed=3)
    hand_rows, obj_rows = {tuple(p) for p in hand.tolist()}, {tuple(p) for p in obj.tolist()}
    for point, is_hand in zip(cloud.points.tolist(), cloud.is_hand, strict=True):
        assert (tuple(point) in hand_rows) == is_hand and (tuple(point) in obj_rows) != is_hand
    np.testing.assert_array_equal(cloud.points[cloud.is_hand], hand[cloud.source_index[cloud.is_hand]])
    np.testing.assert_array_equal(cloud.points[~cloud.is_hand], obj[cloud.source_index[~cloud.is_hand] - 50])


def test_is_farthest_point_sampling_of_the_union():
    hand, obj = hand_and_object(20, 80)
    cloud = joint_cloud(hand, obj, 30, seed=1)
    union = np.concatenate([hand, obj]).astype(np.float64)
    np.testing.assert_array_equal(cloud.source_index, fps_naive(union, 30, start=int(cloud.source_index[0])))


def test_both_parts_represented():
    hand, obj = hand_and_object()
    cloud = joint_cloud(hand, obj, 64)
    assert 0 < cloud.is_hand.sum() < 64
    # A tiny hand inside the object's spread: FPS from an object point picks objects only, so the last pick
    # is handed to the hand.
    tiny_hand = np.zeros((3, 3), np.float32)
    for seed in range(5):
        small = joint_cloud(tiny_hand, obj, 2, seed=seed)
        assert small.is_hand.sum() == 1


def test_pads_by_repetition_when_short():
    hand, obj = hand_and_object(3, 4)
    cloud = joint_cloud(hand, obj, 20)
    assert cloud.points.shape == (20, 3)
    order = cloud.source_index[:7]
    assert sorted(order.tolist()) == list(range(7))  # every point once, then repeats in the same order
    np.testing.assert_array_equal(cloud.source_index, np.resize(order, 20))


def test_deterministic_for_a_seed():
    hand, obj = hand_and_object()
    first, again = joint_cloud(hand, obj, 64, seed=7), joint_cloud(hand, obj, 64, seed=7)
    np.testing.assert_array_equal(first.points, again.points)
    np.testing.assert_array_equal(first.is_hand, again.is_hand)
    assert first.source_index[0] != joint_cloud(hand, obj, 64, seed=8).source_index[0]


@pytest.mark.parametrize(
    ("hand", "obj", "message"),
    [
        (np.zeros((0, 3)), np.ones((5, 3)), "hand_verts is empty"),
        (np.ones((5, 3)), np.zeros((0, 3)), "object_points is empty"),
        (np.ones((5, 2)), np.ones((5, 3)), "hand_verts must be"),
        (np.ones((5, 3)), np.ones(15), "object_points must be"),
        (np.full((5, 3), np.nan), np.ones((5, 3)), "hand_verts contains NaN"),
        (np.ones((5, 3)), np.full((5, 3), np.inf), "object_points contains NaN or inf"),
    ],
)
def test_rejects_bad_input(hand, obj, message):
    with pytest.raises(ValueError, match=message):
        joint_cloud(hand, obj, 8)


def test_rejects_bad_n():
    hand, obj = hand_and_object()
    with pytest.raises(ValueError, match="n must be"):
        joint_cloud(hand, obj, 0)
