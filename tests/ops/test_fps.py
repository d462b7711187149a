from itertools import permutations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from ops.fps import fps_fixed, fps_fixed_batch, fps_naive, fps_numpy, fps_open3d, fps_torch


def cloud(seed: int, n: int = 60) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 3))


def test_naive_on_a_hand_checked_line():
    # Points 0..10 on a line from 0: then 10 (farthest), 5 (midway), then 2, the first of 2, 3, 7, 8 at distance 2.
    line = np.column_stack([np.arange(11.0), np.zeros(11), np.zeros(11)])
    np.testing.assert_array_equal(fps_naive(line, 4), [0, 10, 5, 2])
    np.testing.assert_array_equal(fps_naive(line, 2, start=3), [3, 10])


@pytest.mark.parametrize("seed", range(4))
def test_numpy_equals_naive(seed):
    points, start = cloud(seed), seed * 7
    expected = fps_naive(points, 12, start)
    result = fps_numpy(points, 12, start)
    assert result.dtype == np.int64 and result[0] == start
    np.testing.assert_array_equal(result, expected)


def test_torch_equals_naive_per_batch_row():
    batch = np.stack([cloud(seed) for seed in range(3)])
    result = fps_torch(torch.from_numpy(batch), 12, start=5)
    assert result.dtype == torch.long and result.shape == (3, 12)
    for row, points in zip(result.numpy(), batch, strict=True):
        np.testing.assert_array_equal(row, fps_naive(points, 12, start=5))


def test_torch_float32_keeps_device_and_agrees():
    points = torch.from_numpy(cloud(4)).float()[None]
    result = fps_torch(points, 10)
    assert result.device == points.device
    np.testing.assert_array_equal(result[0].numpy(), fps_naive(points[0].double().numpy(), 10))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_on_cuda_matches_cpu():
    points = torch.from_numpy(np.stack([cloud(seed, 2000) for seed in range(4)]))
    result = fps_torch(points.cuda(), 256)
    assert result.device.type == "cuda"
    torch.testing.assert_close(result.cpu(), fps_torch(points, 256))


def test_open3d_picks_the_same_set_as_naive():
    points = cloud(5, 200)
    result = fps_open3d(points, 30, start=3)
    assert result.dtype == np.int64 and len(np.unique(result)) == 30 and result.max() < 200
    assert set(result.tolist()) == set(fps_naive(points, 30, start=3).tolist())


def test_open3d_spread_close_to_naive():
    points = cloud(6, 300)
    spread = pdist(points[fps_open3d(points, 40)]).min()
    assert spread >= 0.9 * pdist(points[fps_naive(points, 40, start=17)]).min()


def test_open3d_maps_duplicates_to_distinct_indices():
    unique = cloud(7, 10)
    points = np.concatenate([unique, unique])  # every point twice
    for n in (8, 10, 14):
        result = fps_open3d(points, n)
        assert len(result) == n and len(np.unique(result)) == n
        assert len({tuple(p) for p in points[result]}) == min(n, 10)  # distinct places first
    np.testing.assert_array_equal(np.sort(fps_open3d(points, 14)), np.sort(fps_numpy(points, 14)))


def test_duplicates_are_never_picked_twice():
    points = np.concatenate([cloud(8, 6)] * 3)
    for result in (fps_naive(points, 15), fps_numpy(points, 15), fps_torch(torch.from_numpy(points)[None], 15)[0]):
        assert len(np.unique(np.asarray(result))) == 15


def test_asking_for_more_than_n_returns_all_points():
    points = cloud(9, 7)
    np.testing.assert_array_equal(np.sort(fps_numpy(points, 20)), np.arange(7))
    np.testing.assert_array_equal(fps_numpy(points, 20), fps_naive(points, 7))
    np.testing.assert_array_equal(fps_open3d(points, 7), np.arange(7))
    assert fps_torch(torch.from_numpy(points)[None], 20).shape == (1, 7)


def test_fixed_size_pads_by_repetition():
    points = cloud(10, 5)
    order = fps_numpy(points, 5, start=2)
    padded = fps_fixed(points, 12, start=2)
    np.testing.assert_array_equal(padded, np.concatenate([order, order, order[:2]]))
    np.testing.assert_array_equal(fps_fixed(cloud(11), 9), fps_numpy(cloud(11), 9))


def test_deterministic():
    points = cloud(12, 300)
    np.testing.assert_array_equal(fps_open3d(points, 50), fps_open3d(points, 50))
    np.testing.assert_array_equal(fps_numpy(points, 50, 4), fps_numpy(points, 50, 4))


@pytest.mark.parametrize(("num_points", "n", "start"), [(60, 12, 0), (60, 60, 59), (7, 20, 3), (1, 4, 0)])
def test_fixed_batch_equals_fixed_per_row(num_points, n, start):
    batch = np.stack([cloud(seed, num_points) for seed in range(5)])
    result = fps_fixed_batch(batch, n, start)
    assert result.dtype == np.int64 and result.shape == (5, n)
    for row, points in zip(result, batch, strict=True):
        np.testing.assert_array_equal(row, fps_fixed(points, n, start))


def order_sensitive_cloud(triples: int = 20, seed: int = 0) -> np.ndarray:
    """(1 + 6 * triples, 3): the origin, then every permutation of random (a, b, c). From the origin all six of a
    triple are at the same real distance, so which is farthest depends only on how the float sums round."""
    rng = np.random.default_rng(seed)
    return np.array([(0.0, 0.0, 0.0)] + [p for abc in rng.uniform(0.1, 1.0, (triples, 3)) for p in permutations(abc)])


def test_fixed_batch_adds_in_numpys_order():
    points = order_sensitive_cloud()
    squared = points**2
    # The cloud does tell the orders apart: summed as a + (b + c), another point would be picked first.
    assert ((squared[:, 0] + squared[:, 1]) + squared[:, 2]).argmax() != (
        squared[:, 0] + (squared[:, 1] + squared[:, 2])).argmax()
    batch = np.stack([points, points[::-1].copy()])
    for row, cloud_ in zip(fps_fixed_batch(batch, 40), batch, strict=True):
        np.testing.assert_array_equal(row, fps_numpy(cloud_, 40))


def test_fixed_batch_breaks_exact_ties_like_numpy():
    grid = np.stack(np.meshgrid(*[np.arange(3.0)] * 3), -1).reshape(-1, 3)  # integer distances: exact ties
    points = np.concatenate([grid, grid])  # and duplicates at distance 0
    result = fps_fixed_batch(points[None], 60, start=13)[0]
    np.testing.assert_array_equal(result, fps_fixed(points, 60, start=13))
    assert len(np.unique(result[:54])) == 54  # every row once before any repeats


def test_fixed_batch_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        fps_fixed_batch(np.zeros((10, 3)), 2)
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        fps_fixed_batch(np.zeros((2, 0, 3)), 2)
    with pytest.raises(ValueError, match="NaN"):
        fps_fixed_batch(np.array([[[0, 0, np.nan], [1, 1, 1]]]), 1)
    with pytest.raises(ValueError, match="n must be"):
        fps_fixed_batch(cloud(0)[None], 0)
    with pytest.raises(ValueError, match="start"):
        fps_fixed_batch(cloud(0)[None], 3, start=60)


@pytest.mark.parametrize("fps", [fps_naive, fps_numpy, fps_open3d, fps_fixed])
def test_rejects_bad_input(fps):
    with pytest.raises(ValueError, match="points must be"):
        fps(np.zeros((5, 2)), 2)
    with pytest.raises(ValueError, match="points must be"):
        fps(np.zeros((0, 3)), 2)
    with pytest.raises(ValueError, match="NaN"):
        fps(np.array([[0, 0, np.nan], [1, 1, 1]]), 1)
    with pytest.raises(ValueError, match="n must be"):
        fps(cloud(0), 0)
    with pytest.raises(ValueError, match="start"):
        fps(cloud(0), 3, start=60)


def test_torch_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        fps_torch(torch.zeros(10, 3), 2)
    with pytest.raises(ValueError, match="NaN"):
        fps_torch(torch.tensor([[[0.0, 0.0, float("nan")]]]), 1)
    with pytest.raises(ValueError, match="floating"):
        fps_torch(torch.zeros(1, 4, 3, dtype=torch.long), 1)
    with pytest.raises(ValueError, match="n must be"):
        fps_torch(torch.zeros(1, 4, 3), 0)
