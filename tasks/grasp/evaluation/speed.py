"""Inference speed of the grasp generator, in Table 5's layout: seconds per grasp of the one-pass sampler
(diffusion -> DAM -> MANO) and of a test-time-optimisation baseline, one grasp at a time and in a batch.

The baseline samples the same way, then refines the 61 MANO values by gradient descent (Adam, a fixed number of
steps) on GraspTTA's test-time objective as restated in models/grasp_losses.py: the hand-centric contact term
(object points within 2 cm of the hand pull the fingertip pads and palm onto them) plus penetration, and the
instruction's affordance-map term. Times are wall-clock medians over `repeats` runs after one warm-up run.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from models.grasp_losses import affordance_contact_loss, estimate_normals, hand_contact_loss, penetration_loss
from models.hand_autoencoder import mano_vertices
from models.hand_regions import layer_contact_prone
from tasks.grasp.config import CM
from tasks.grasp.evaluation.report import SpeedRow
from tasks.grasp.sample import GraspGenerator, sample_grasps
from tasks.runtime.timing import median_seconds

TTO_STEPS = 100
TTO_LR = 1e-3  # Adam on raw MANO values: 1e-3 rad / metre-scale steps keep the hand's shape plausible


class TTOWeights(NamedTuple):
    """Weights of the test-time objective's terms (losses in centimetres, models/grasp_losses.py)."""

    hand_contact: float = 3.0  # GraspTTA's hand-centric contact (cm^2)
    affordance_contact: float = 0.1  # L_cmap, the DAM's weight
    penetration: float = 0.1  # L_penetr, the DAM's weight


# Chosen on the val objects (bench/bench_tta_weights.py, BENCHMARKS.md "Test-time optimisation: weights compared on
# val objects"): hand contact 3 held the most grasps (95.7 % within 5 mm, the unrefined model's 88.2 %) and moved
# the object least (5.17 cm, unrefined 5.58); without the hand term the objective lost contact (55.7 %).
TTO_WEIGHTS = TTOWeights()


class Refined(NamedTuple):
    mano: np.ndarray  # (K, 61)
    losses: list[float]  # the objective before each step, then after the last: steps + 1 values


def tto_objective(mano_layer, mano: torch.Tensor, points_cm: torch.Tensor, normals: torch.Tensor,
                  values: torch.Tensor, prone: torch.Tensor, weights: TTOWeights = TTO_WEIGHTS) -> torch.Tensor:
    """The weighted test-time objective of MANO vectors (K, 61) against one object: points_cm (K, N, 3)
    centimetres, normals (K, N, 3), affordance map values (K, N), prone (P,) contact-prone vertex ids; () scalar."""
    verts = mano_vertices(mano_layer, mano) * CM
    return (weights.hand_contact * hand_contact_loss(verts, points_cm, prone)
            + weights.affordance_contact * affordance_contact_loss(verts, points_cm, values)
            + weights.penetration * penetration_loss(verts, points_cm, normals))


def refine_grasps(generator: GraspGenerator, mano: np.ndarray, object_points: np.ndarray,
                  affordance_map: np.ndarray, steps: int = TTO_STEPS, lr: float = TTO_LR,
                  normals: np.ndarray | None = None, weights: TTOWeights = TTO_WEIGHTS) -> Refined:
    """Test-time optimisation: `steps` Adam steps on (K, 61) MANO vectors against (N, 3) points / (N,) map."""
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if min(weights) < 0:
        raise ValueError(f"test-time objective weights must be >= 0, got {weights}")
    mano = np.asarray(mano, np.float32)
    if mano.ndim != 2 or mano.shape[1] != 61:
        raise ValueError(f"mano must be (K, 61), got {mano.shape}")
    layer = generator.models.mano
    device = next(generator.models.parameters()).device
    k = len(mano)
    normals = estimate_normals(np.asarray(object_points, np.float32)) if normals is None else normals
    points_cm = torch.as_tensor(object_points * CM, dtype=torch.float32, device=device)[None].expand(k, -1, -1)
    normals_t = torch.as_tensor(normals, dtype=torch.float32, device=device)[None].expand(k, -1, -1)
    values = torch.as_tensor(affordance_map, dtype=torch.float32, device=device)[None].expand(k, -1)
    prone = layer_contact_prone(layer)
    x = torch.tensor(mano, device=device, requires_grad=True)
    optimiser = torch.optim.Adam([x], lr=lr)
    losses: list[torch.Tensor] = []  # detached, read once at the end: no device sync per step

    def objective() -> torch.Tensor:
        return tto_objective(layer, x, points_cm, normals_t, values, prone, weights)

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
               seed: int = 0, guidance: float | None = None, ddim_steps: int | None = None) -> list[SpeedRow]:
    """[TTO baseline, one-pass sampler] as SpeedRows (seconds per grasp, single and batched) for one object:
    object_points (N, 3) metres at the generator's num_points, affordance_map (N,), text_embedding (384,).
    guidance / ddim_steps: the sampler's, default the training config's."""
    if batch_size < 1 or repeats < 1 or tto_steps < 1:
        raise ValueError(f"batch_size, repeats and tto_steps must be >= 1, got {batch_size}, {repeats}, {tto_steps}")
    normals = estimate_normals(np.asarray(object_points, np.float32))  # once per object, as a service would

    def sample(k: int) -> np.ndarray:
        return sample_grasps(generator, object_points, affordance_map, text_embedding, k, seed=seed,
                             ddim_steps=ddim_steps, guidance=guidance).mano

    def tto(k: int) -> np.ndarray:
        return refine_grasps(generator, sample(k), object_points, affordance_map, tto_steps, normals=normals).mano

    rows = []
    for name, fn, times in ((f"Test-time optimisation ({tto_steps} Adam steps)", tto, max(1, repeats // 2)),
                            ("Ours (one pass)", sample, repeats)):
        single = median_seconds(lambda f=fn: f(1), times)
        batched = median_seconds(lambda f=fn: f(batch_size), times) / batch_size
        rows.append(SpeedRow(name, single, batched, batch_size))
    return rows
