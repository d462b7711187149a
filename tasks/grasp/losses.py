"""The training loss of each stage: autoencoder, latent diffusion, DAM (L_DAM = sum of l1 .. l5)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from models.grasp_losses import (
    affordance_contact_loss,
    chamfer_distance,
    contact_consistency_loss,
    hand_contact_loss,
    penetration_loss,
)
from models.hand_autoencoder import kl_divergence, mano_vertices
from models.hand_regions import layer_contact_prone
from tasks.grasp.config import CM, GraspTrainConfig
from tasks.grasp.model import GraspModels


def autoencoder_loss(models: GraspModels, batch: dict[str, Tensor], config: GraspTrainConfig) -> dict[str, Tensor]:
    """L_AE = MSE(x, x*) + w_cd CD_cm(MANO(x), hand) + w_v2v mean_v |MANO(x)_v - hand_v|_cm [+ w_kl KL]."""
    out = models.ae(batch["hand_verts"])
    param = models.ae.param_loss(out.mano, batch["mano"])
    k = config.vertex_stride
    decoded, target = mano_vertices(models.mano, out.mano)[:, ::k] * CM, batch["hand_verts"][:, ::k] * CM
    terms = {"param": param}
    loss = param
    if config.ae_chamfer > 0:
        terms["mesh"] = chamfer_distance(decoded, target)
        loss = loss + config.ae_chamfer * terms["mesh"]
    if config.ae_v2v > 0:
        terms["v2v"] = (decoded - target).norm(dim=-1).mean()
        loss = loss + config.ae_v2v * terms["v2v"]
    if out.logvar is not None and config.ae_kl > 0:
        terms["kl"] = kl_divergence(out.mean.float(), out.logvar.float())
        loss = loss + config.ae_kl * terms["kl"]
    return {"loss": loss, **terms}


def diffusion_loss(models: GraspModels, batch: dict[str, Tensor], config: GraspTrainConfig) -> dict[str, Tensor]:
    """DDPM epsilon loss on the frozen AE's latents, condition dropped with probability cond_drop."""
    with torch.no_grad():
        latent = models.ae.encode(batch["hand_verts"])
    condition = models.diffusion.condition(batch["object_points"], batch["affordance_map"], batch["text"])
    return {"loss": models.diffusion.loss(latent, condition)}


def coarse_latents(models: GraspModels, batch: dict[str, Tensor], config: GraspTrainConfig):
    """h_c for DAM training: the frozen diffusion model's one-step x0 estimate from x_t, t < dam_noise * T.

    Running full DDIM per training step would cost ddim_steps denoiser passes; the one-step estimate spans the
    same range, from near the true latent (small t) to the conditional mean (t -> T), so the DAM learns to
    correct coarse latents of every quality from the condition tokens. Measured on the tiny overfit set: with
    t < T/2 the coarse latents are already near the AE's floor and the DAM has little left to learn.
    """
    with torch.no_grad():
        diffusion = models.diffusion
        latent = models.ae.encode(batch["hand_verts"])
        condition = diffusion.condition(batch["object_points"], batch["affordance_map"], batch["text"])
        x0 = diffusion.normalise(latent)
        t = torch.randint(0, max(1, int(config.dam_noise * diffusion.config.timesteps)), (len(x0),), device=x0.device)
        x_t = diffusion.q_sample(x0, t, torch.randn_like(x0))
        coarse = diffusion.denormalise(diffusion.predict_x0(x_t, t, condition.vector, config.guidance).float())
    return coarse, condition


def dam_terms(models: GraspModels, hand_cm: Tensor, mano: Tensor, batch: dict[str, Tensor],
              stride: int = 1) -> dict[str, Tensor]:
    """The DAM loss terms of a predicted MANO vector (B, 61) and its vertices (B, 778 / stride, 3) in cm: the
    paper's five and the hand-centric contact term (`hand`, weighted by w_hand, 0 unless a preset sets it)."""
    points = batch["object_points"] * CM
    true_cm = batch["hand_verts"][:, ::stride] * CM
    return {
        "param": models.ae.param_loss(mano, batch["mano"]),
        "mesh": chamfer_distance(hand_cm, true_cm),
        "consist": contact_consistency_loss(hand_cm, true_cm, points),
        "cmap": affordance_contact_loss(hand_cm, points, batch["affordance_map"]),
        "penetr": penetration_loss(hand_cm, points, batch["object_normals"]),
        "hand": hand_contact_loss(hand_cm, points, layer_contact_prone(models.mano, stride)),
    }


def dam_loss(models: GraspModels, batch: dict[str, Tensor], config: GraspTrainConfig) -> dict[str, Tensor]:
    """L = l1 L_param + l2 L_mesh + l3 L_consist + l4 L_cmap + l5 L_penetr [+ w_hand L_hand], diffusion and AE
    frozen. A term of weight 0 stays out of the sum (it is still logged)."""
    coarse, condition = coarse_latents(models, batch, config)
    mano = models.ae.decode(models.dam(coarse, condition.tokens.detach()))
    k = config.vertex_stride
    terms = dam_terms(models, mano_vertices(models.mano, mano)[:, ::k] * CM, mano, batch, k)
    weights = {"param": config.w_param, "mesh": config.w_mesh, "consist": config.w_consist, "cmap": config.w_cmap,
               "penetr": config.w_penetr, "hand": config.w_hand}
    loss = sum(w * terms[name] for name, w in weights.items() if w)
    return {"loss": loss, **terms}


STAGE_LOSSES: dict[str, Callable[[GraspModels, dict[str, Tensor], GraspTrainConfig], dict[str, Tensor]]] = {
    "autoencoder": autoencoder_loss, "diffusion": diffusion_loss, "dam": dam_loss}

