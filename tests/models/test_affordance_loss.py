"""Focal + dice loss against per-point loops written from the equations."""

import math

import numpy as np
import pytest
import torch

from models.affordance_loss import affordance_loss, dice_loss, focal_loss


def _naive_focal(logits: np.ndarray, target: np.ndarray, alpha: float, gamma: float) -> float:
    total = 0.0
    for z, y in zip(logits.ravel(), target.ravel(), strict=True):
        p = 1 / (1 + math.exp(-z))
        p_t, a_t = (p, alpha) if y == 1 else (1 - p, 1 - alpha)
        total += -a_t * (1 - p_t) ** gamma * math.log(p_t)
    return total / logits.size


def _naive_dice(prob: np.ndarray, target: np.ndarray) -> float:
    values = []
    for p, y in zip(prob, target, strict=True):
        pos = 2 * sum(p * y) / (sum(p) + sum(y))
        neg = 2 * sum((1 - p) * (1 - y)) / (sum(1 - p) + sum(1 - y))
        values.append(1.5 - pos - neg)
    return float(np.mean(values))


@pytest.mark.parametrize(("alpha", "gamma"), [(0.25, 2.0), (0.5, 0.0), (0.9, 1.0)])
def test_focal_matches_the_equation(alpha: float, gamma: float) -> None:
    rng = np.random.default_rng(0)
    logits, target = rng.normal(0, 2, (3, 40)), (rng.random((3, 40)) < 0.3).astype(np.float64)
    got = focal_loss(torch.tensor(logits), torch.tensor(target), alpha, gamma).item()
    assert got == pytest.approx(_naive_focal(logits, target, alpha, gamma), rel=1e-9)


def test_focal_with_gamma_zero_and_half_alpha_is_half_bce() -> None:
    logits, target = torch.randn(2, 10, dtype=torch.float64), (torch.rand(2, 10) < 0.5).double()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert focal_loss(logits, target, 0.5, 0.0).item() == pytest.approx(0.5 * bce.item(), rel=1e-12)


def test_dice_matches_the_equation_and_bounds() -> None:
    rng = np.random.default_rng(1)
    prob, target = rng.random((4, 30)), (rng.random((4, 30)) < 0.4).astype(np.float64)
    got = dice_loss(torch.tensor(prob), torch.tensor(target)).item()
    assert got == pytest.approx(_naive_dice(prob, target), rel=1e-5)
    perfect = torch.tensor(target)
    assert dice_loss(perfect, perfect).item() == pytest.approx(-0.5, abs=1e-5)
    assert dice_loss(1 - perfect, perfect).item() == pytest.approx(1.5, abs=1e-5)


def test_loss_falls_as_the_map_gets_right_and_rejects_bad_parameters() -> None:
    target = (torch.rand(2, 50) < 0.3).float()
    good, bad = (target * 2 - 1) * 4, -(target * 2 - 1) * 4
    zero = torch.zeros_like(target)
    assert affordance_loss(good, target) < affordance_loss(zero, target) < affordance_loss(bad, target)
    with pytest.raises(ValueError, match="alpha must be in"):
        focal_loss(good, target, alpha=1.5)
