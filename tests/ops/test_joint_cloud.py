import numpy as np
import pytest

from ops.fps import fps_naive
from ops.joint_cloud import JointCloud, joint_cloud, joint_clouds


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


def mixed_samples(seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hands and objects of several union sizes: 30 + 90 (three of them), 10 + 110 (same union size, another
    hand size), 3 + 4 (fewer points than asked for: padded), a hand and object of repeated grid points (exact
    ties and duplicates), and a tiny hand inside its object (FPS skips it: the both-parts rule)."""
    sizes = [(30, 90), (30, 90), (10, 110), (3, 4), (30, 90), (12, 40)]
    hands, objects = zip(*(hand_and_object(h, m, seed + i) for i, (h, m) in enumerate(sizes)), strict=True)
    grid = np.stack(np.meshgrid(*[np.arange(4.0)] * 3), -1).reshape(-1, 3) * 0.01  # 64 points 1 cm apart
    tiny_hand, obj = np.zeros((3, 3), np.float32), hand_and_object(10, 117, seed)[1]
    return [*hands, grid[:20], tiny_hand], [*objects, np.concatenate([grid, grid]), obj]


def assert_same_cloud(got: JointCloud, expected: JointCloud) -> None:
    for name in JointCloud._fields:
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
        assert getattr(got, name).dtype == getattr(expected, name).dtype, name


@pytest.mark.parametrize(("n", "seed", "batch_size", "workers"), [(64, 0, 32, 1), (64, 5, 2, 2), (2, 1, 3, 2),
                                                                   (200, 2, 32, 2)])
def test_batched_equals_per_sample(n, seed, batch_size, workers):
    hands, objects = mixed_samples(seed)
    clouds = joint_clouds(hands, objects, n, seed=seed, batch_size=batch_size, workers=workers)
    assert len(clouds) == len(hands)
    for got, hand, obj in zip(clouds, hands, objects, strict=True):
        assert_same_cloud(got, joint_cloud(hand, obj, n, seed=seed))


def test_bad_samples_are_returned_as_their_error_and_the_rest_go_on():
    hands, objects = mixed_samples()
    bad = {1: (np.full((30, 3), np.nan), objects[1]), 4: (hands[4], np.zeros((0, 3))),
           5: (hands[5], np.ones((40, 2)))}
    for i, (hand, obj) in bad.items():
        hands[i], objects[i] = hand, obj
    clouds = joint_clouds(hands, objects, 64, batch_size=2, workers=2)
    for i, (got, hand, obj) in enumerate(zip(clouds, hands, objects, strict=True)):
        if i not in bad:
            assert_same_cloud(got, joint_cloud(hand, obj, 64))
            continue
        assert isinstance(got, ValueError)
        with pytest.raises(ValueError) as expected:
            joint_cloud(hand, obj, 64)
        assert str(got) == str(expected.value)
    assert [str(clouds[i]) for i in bad] == ["hand_verts contains NaN or inf", "object_points is empty",
                                             "object_points must be (N, 3), got shape (40, 2)"]


def test_batched_takes_no_samples():
    assert joint_clouds([], [], 16) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": 0}, "n must be >= 1, got 0"),
    ({"batch_size": 0}, "batch_size must be >= 1, got 0"),
    ({"workers": 0}, "workers must be >= 1, got 0"),
])
def test_batched_rejects_bad_arguments(kwargs, message):
    hands, objects = mixed_samples()
    with pytest.raises(ValueError, match=message):
        joint_clouds(hands, objects, **{"n": 8} | kwargs)
    with pytest.raises(ValueError, match="same length, got 8 and 7"):
        joint_clouds(hands, objects[:-1], 8)
