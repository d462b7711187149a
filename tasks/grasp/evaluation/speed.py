"""Inference speed of the grasp generator, in Table 5's layout: seconds per grasp of the one-pass sampler
(diffusion -> DAM -> MANO) and of a test-time-optimisation baseline, one grasp at a time and in a batch.

The baseline samples the same way, then refines the 61 MANO values by gradient descent on the contact and
penetration losses of models/grasp_losses.py (Adam, a fixed number of steps), the way GraspTTA-style methods
trade time for contact. Times are wall-clock medians over `repeats` runs after one warm-up run.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from models.grasp_losses import affordance_contact_loss, estimate_normals, penetration_loss
from models.hand_autoencoder import mano_vertices
from tasks.grasp.config import CM
from tasks.grasp.evaluation.report import SpeedRow
from tasks.grasp.sample import GraspGenerator, sample_grasps
from tasks.runtime.timing import median_seconds

TTO_STEPS = 100
TTO_LR = 1e-3  # Adam on raw MANO values: 1e-3 rad / metre-scale steps keep the hand's shape plausible


class Refined(NamedTuple):
    mano: np.ndarray  # (K, 61)
    losses: list[float]  # the objective before each step, then after the last: steps + 1 values


def tto_objective(mano_layer, mano: torch.Tensor, points_cm: torch.Tensor, normals: torch.Tensor,
                  values: torch.Tensor, w_contact: float, w_penetr: float) -> torch.Tensor:
    """w_c L_cmap + w_p L_penetr of MANO vectors (K, 61) against one object: points_cm (K, N, 3) centimetres,
    normals (K, N, 3), affordance map values (K, N); () scalar."""
    verts = mano_vertices(mano_layer, mano) * CM
    return (w_contact * affordance_contact_loss(verts, points_cm, values)
            + w_penetr * penetration_loss(verts, points_cm, normals))


def refine_grasps(generator: GraspGenerator, mano: np.ndarray, object_points: np.ndarray,
                  affordance_map: np.ndarray, steps: int = TTO_STEPS, lr: float = TTO_LR,
                  normals: np.ndarray | None = None) -> Refined:
    """Test-time optimisation: `steps` Adam steps on (K, 61) MANO vectors against (N, 3) points / (N,) map.
    Weights are the DAM stage's (w_cmap, w_penetr) from the checkpoint's training config."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    mano = np.asarray(mano, np.float32)
    if mano.ndim != 2 or mano.shape[1] != 61:
        raise ValueError(f"mano must be (K, 61), got {mano.shape}")
    layer, config = generator.models.mano, generator.train_config
    device = next(generator.models.parameters()).device
    k = len(mano)
    normals = estimate_normals(np.asarray(object_points, np.float32)) if normals is None else normals
    points_cm = torch.as_tensor(object_points * CM, dtype=torch.float32, device=device)[None].expand(k, -1, -1)
    normals_t = torch.as_tensor(normals, dtype=torch.float32, device=device)[None].expand(k, -1, -1)
    values = torch.as_tensor(affordance_map, dtype=torch.float32, device=device)[None].expand(k, -1)
    x = torch.tensor(mano, device=device, requires_grad=True)
    optimiser = torch.optim.Adam([x], lr=lr)
    losses: list[torch.Tensor] = []  # detached, read once at the end: no device sync per step

    def objective() -> torch.Tensor:
        return tto_objective(layer, x, points_cm, normals_t, values, config.w_cmap, config.w_penetr)

    with torch.enable_grad():
        for _ in range(steps):
            loss = objective()
            losses.append(loss.detach())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        losses.append(objective().detach())
    return Refined(x.detach().cpu().numpy(), torch.stack(losses).cpu().tolist())


def speed_rows(generator: GraspGenerator, object_points: np.ndarray, affordance_map: np.ndarray,
               text_embedding: np.ndarray, batch_size: int = 8, tto_steps: int = TTO_STEPS, repeats: int = 3,
               seed: int = 0) -> list[SpeedRow]:
    """[TTO baseline, one-pass sampler] as SpeedRows (seconds per grasp, single and batched) for one object:
    object_points (N, 3) metres at the generator's num_points, affordance_map (N,), text_embedding (384,)."""
    if batch_size < 1 or repeats < 1 or tto_steps < 1:
        raise ValueError(f"batch_size, repeats and tto_steps must be >= 1, got {batch_size}, {repeats}, {tto_steps}")
    normals = estimate_normals(np.asarray(object_points, np.float32))  # once per object, as a service would

    def sample(k: int) -> np.ndarray:
        return sample_grasps(generator, object_points, affordance_map, text_embedding, k, seed=seed).mano

    def tto(k: int) -> np.ndarray:
        return refine_grasps(generator, sample(k), object_points, affordance_map, tto_steps, normals=normals).mano

    rows = []
    for name, fn, times in ((f"Test-time optimisation ({tto_steps} Adam steps)", tto, max(1, repeats // 2)),
                            ("Ours (one pass)", sample, repeats)):
        single = median_seconds(lambda f=fn: f(1), times)
        batched = median_seconds(lambda f=fn: f(batch_size), times) / batch_size
        rows.append(SpeedRow(name, single, batched, batch_size))
    return rows
