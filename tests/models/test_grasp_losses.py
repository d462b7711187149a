"""Grasp losses against naive loops on tiny inputs: nearest neighbours, chamfer, contact maps, consistency,
affordance contact, penetration through estimated normals; gradients are finite; bad shapes are refused."""

import numpy as np
import pytest
import torch

from models.grasp_losses import (
    affordance_contact_loss,
    chamfer_distance,
    contact_consistency_loss,
    contact_map,
    estimate_normals,
    nearest,
    penetration_loss,
)
from tests.grasp_factories import single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


def _clouds(seed=0, b=2, s=7, t=5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, s, 3, generator=g, dtype=torch.float64), torch.randn(b, t, 3, generator=g,
                                                                               dtype=torch.float64)


def _naive_min(source, target):
    pairs = zip(source, target, strict=True)
    return np.array([[min(((p - q) ** 2).sum() for q in tgt) for p in src] for src, tgt in pairs])


def test_nearest_matches_a_naive_loop():
    a, b = _clouds()
    squared, index = nearest(a, b)
    np.testing.assert_allclose(squared.numpy(), _naive_min(a.numpy(), b.numpy()), rtol=1e-10)
    chosen = torch.gather(b, 1, index[..., None].expand(-1, -1, 3))
    np.testing.assert_allclose(((a - chosen) ** 2).sum(-1).numpy(), squared.numpy())


def test_chamfer_is_symmetric_zero_on_itself_and_matches_naive():
    a, b = _clouds(1)
    naive = (_naive_min(a.numpy(), b.numpy()).mean(1) + _naive_min(b.numpy(), a.numpy()).mean(1)).mean()
    assert chamfer_distance(a, b).item() == pytest.approx(naive, rel=1e-10)
    assert chamfer_distance(b, a).item() == pytest.approx(naive, rel=1e-10)
    assert chamfer_distance(a, a).item() == 0.0


def test_gradients_are_finite_even_on_coincident_points():
    a, b = _clouds(2)
    hand = a.clone().requires_grad_(True)
    points = torch.cat([a[:, :2].detach(), b], 1)  # two object points exactly on hand vertices
    loss = (chamfer_distance(hand, points) + contact_map(hand, points).sum()
            + affordance_contact_loss(hand, points, torch.ones(points.shape[:2], dtype=torch.float64)))
    loss.backward()
    assert torch.isfinite(hand.grad).all() and hand.grad.abs().sum() > 0


def test_contact_map_is_one_at_touch_and_fades_with_distance():
    hand = torch.zeros(1, 1, 3)
    points = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]]])
    c = contact_map(hand, points, scale=1.0)[0]
    np.testing.assert_allclose(c.numpy(), np.exp([0.0, -1.0, -3.0]), rtol=1e-5)
    with pytest.raises(ValueError, match="scale"):
        contact_map(hand, points, scale=0)


def test_consistency_is_zero_for_the_true_hand_and_positive_for_a_moved_one():
    hand, points = _clouds(3)
    assert contact_consistency_loss(hand, hand, points).item() == 0.0
    assert contact_consistency_loss(hand + 2.0, hand, points).item() > 0


def test_affordance_contact_weights_points_by_the_map_and_clamps():
    hand = torch.zeros(1, 1, 3)
    points = torch.tensor([[[1.0, 0, 0], [5.0, 0, 0]]])
    assert affordance_contact_loss(hand, points, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(1.0)
    assert affordance_contact_loss(hand, points, torch.tensor([[0.0, 1.0]]), max_distance=2.0).item() == \
        pytest.approx(2.0)
    with pytest.raises(ValueError, match="affordance_map"):
        affordance_contact_loss(hand, points, torch.ones(1, 3))


def _sphere(n=400, radius=1.0, seed=0):
    p = np.random.default_rng(seed).normal(size=(n, 3))
    return (p / np.linalg.norm(p, axis=1, keepdims=True) * radius).astype(np.float32)


def test_estimated_normals_of_a_sphere_point_outward():
    points = _sphere()
    normals = estimate_normals(points)
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-5)
    assert (np.sum(normals * points, axis=1) > 0.95).all()
    with pytest.raises(ValueError, match="points"):
        estimate_normals(np.zeros((2, 3)))


def test_penetration_is_the_depth_inside_and_zero_outside():
    points = _sphere(2000)
    normals = torch.from_numpy(estimate_normals(points))[None]
    points = torch.from_numpy(points)[None]
    inside = torch.tensor([[[0.0, 0.0, 0.5], [0.4, 0.0, 0.0]]])
    depth = penetration_loss(inside, points, normals).item()
    assert depth == pytest.approx(0.5 + 0.6, abs=0.08)  # summed over the hand's vertices
    assert penetration_loss(inside * 3, points, normals).item() == 0.0
    with pytest.raises(ValueError, match="object_normals"):
        penetration_loss(inside, points, normals[:, :10])


def test_bad_shapes_are_refused_by_name():
    with pytest.raises(ValueError, match="source"):
        nearest(torch.zeros(2, 3), torch.zeros(1, 2, 3))
    with pytest.raises(ValueError, match="batch sizes"):
        chamfer_distance(torch.zeros(2, 3, 3), torch.zeros(1, 3, 3))
