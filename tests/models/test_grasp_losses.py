"""Grasp losses against naive loops on tiny inputs: nearest neighbours, chamfer, contact maps, consistency,
affordance contact, hand-centric contact (GraspTTA's arithmetic), penetration through estimated normals; gradients
are finite; bad shapes are refused."""

import numpy as np
import pytest
import torch

from models.grasp_losses import (
    affordance_contact_loss,
    chamfer_distance,
    contact_consistency_loss,
    contact_map,
    estimate_normals,
    hand_contact_loss,
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


def _graspTTA_contact(hand, points, prone, radius):
    """GraspTTA's hand-centric term for one grasp (hwjiang1510/GraspTTA utils/loss.py Contact_loss), restated:
    the object points whose nearest hand vertex is closer than `radius` are selected; the loss is the mean over them
    of the squared distance to the nearest vertex of the prior (contact-prone) set. (GraspTTA works in metres with a
    2 cm radius and scales the result by 3000 x 2.5; the weight is ours to choose.)"""
    to_hand = _naive_min(points[None], hand[None])[0]
    to_prone = _naive_min(points[None], hand[prone][None])[0]
    near = to_hand < radius ** 2
    return to_prone[near].sum() / max(near.sum(), 1)


def test_hand_contact_matches_the_published_arithmetic():
    g = torch.Generator().manual_seed(3)
    hand = torch.randn(2, 30, 3, generator=g, dtype=torch.float64)
    points = torch.randn(2, 50, 3, generator=g, dtype=torch.float64) * 1.5
    prone = torch.tensor([0, 4, 9, 17, 29])
    expected = np.mean([_graspTTA_contact(hand[b].numpy(), points[b].numpy(), prone.numpy(), 1.0) for b in range(2)])
    assert expected > 0
    assert hand_contact_loss(hand, points, prone, radius=1.0).item() == pytest.approx(expected, rel=1e-9)


def test_hand_contact_ignores_far_points_and_pulls_the_prone_vertices_in():
    hand = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0]]], requires_grad=True)  # vertex 1 is the prone one
    points = torch.tensor([[[0.0, 0, 0.5], [10.0, 0, 0]]])  # the second point is 9 units from the hand: ignored
    loss = hand_contact_loss(hand, points, torch.tensor([1]), radius=2.0)
    assert loss.item() == pytest.approx(1.0 + 0.25)  # |(1, 0, 0) - (0, 0, 0.5)|^2
    loss.backward()
    assert hand.grad[0, 0].abs().sum() == 0  # only the prone vertex moves, towards the near point
    assert hand.grad[0, 1, 0] > 0 and hand.grad[0, 1, 2] < 0
    far = torch.tensor([[[0.0, 0, 0], [1.0, 0, 0]]]) + 5.0
    assert hand_contact_loss(far, points, torch.tensor([1]), radius=2.0).item() == 0.0  # nothing near: no pull


def test_hand_contact_refuses_bad_prone_ids():
    hand, points = torch.zeros(1, 4, 3), torch.ones(1, 5, 3)
    with pytest.raises(ValueError, match="prone ids must index the 4 hand vertices"):
        hand_contact_loss(hand, points, torch.tensor([4]))
    with pytest.raises(ValueError, match="prone"):
        hand_contact_loss(hand, points, torch.tensor([], dtype=torch.long))


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
