"""Loss of the affordance-map model: focal + dice, as the AffordGrasp supplementary writes it (eqs. 11-13).

    L_focal = -alpha_t (1 - p_t)^gamma log(p_t),  p_t = p where y = 1, else 1 - p   (mean over points)
    L_dice  = mean_b (1.5 - dice_pos - dice_neg),  dice_pos = 2 sum(p y) / (sum p + sum y),
              dice_neg = the same on (1 - p, 1 - y)
    L       = L_focal + L_dice

alpha_t = alpha on positives and 1 - alpha on negatives (RetinaNet's convention); the constant 1.5 only shifts
the value (a perfect map gives -0.5), it does not change the gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

EPS = 1e-6


def focal_loss(logits: Tensor, target: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """logits, target: (B, N) (target in [0, 1]) -> scalar mean focal loss; computed from logits for stability."""
    if not 0.0 <= alpha <= 1.0 or gamma < 0:
        raise ValueError(f"alpha must be in [0, 1] and gamma >= 0, got alpha={alpha}, gamma={gamma}")
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")  # -log(p_t)
    p = torch.sigmoid(logits)
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return (alpha_t * (1 - p_t) ** gamma * ce).mean()


def dice_loss(prob: Tensor, target: Tensor) -> Tensor:
    """prob, target: (B, N) in [0, 1] -> scalar mean over the batch of 1.5 - dice_pos - dice_neg."""
    pos = (2 * (prob * target).sum(1) + EPS) / (prob.sum(1) + target.sum(1) + EPS)
    neg = (2 * ((1 - prob) * (1 - target)).sum(1) + EPS) / ((1 - prob).sum(1) + (1 - target).sum(1) + EPS)
    return (1.5 - pos - neg).mean()


def affordance_loss(logits: Tensor, target: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """L = L_focal + L_dice for logits, target: (B, N)."""
    return focal_loss(logits, target, alpha, gamma) + dice_loss(torch.sigmoid(logits), target)
