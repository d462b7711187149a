"""Latent diffusion over hand-autoencoder latents, conditioned on object, instruction and affordance map.

Condition fusion (one vector per grasp, plus tokens the DAM attends to):
    l_i = PointNet([10 p_i, v_i])                                  per-point features, v_i the affordance map
    f_obj = W_o max_i l_i;  f_aff = W_a sum_i v_i l_i / sum_i v_i;  f_txt = W_t e      (e: 384-d sentence embedding)
    f = f_obj + f_aff + f_txt
DDPM training (Ho et al.): beta_t linear in [1e-4, 0.02], T = 1000, alpha_bar_t = prod_s (1 - beta_s),
    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,   L = |eps - eps_theta(x_t, t, f)|^2
with f replaced by a learned null vector with probability p (classifier-free guidance). Sampling is DDIM (eta = 0)
over a configurable number of steps with eps = eps_u + w (eps_c - eps_u).
Latents are standardised with per-dimension statistics of the training set (buffers), so x_0 has unit scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from models.hand_autoencoder import INPUT_SCALE, PointNetEncoder, mlp

TEXT_DIM = 384


@dataclass(frozen=True)
class DiffusionConfig:
    latent_dim: int = 768
    cond_dim: int = 256
    point_widths: tuple[int, ...] = (64, 128, 256)
    hidden: int = 1024
    blocks: int = 6
    timesteps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    cond_drop: float = 0.1  # probability a training example sees the null condition (classifier-free guidance)
    cond_tokens: int = 64  # object points (strided) the DAM attends to, besides the three fused tokens
    x0_clip: float = 5.0  # bound on |x0_hat| (standardised): near t = T, 1 / sqrt(alpha_bar_t) ~ 160 amplifies eps

    def __post_init__(self) -> None:
        for name in ("latent_dim", "cond_dim", "hidden", "blocks", "timesteps", "cond_tokens", "x0_clip"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 < self.beta_start < self.beta_end < 1:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {self.beta_start}, {self.beta_end}")
        if not 0 <= self.cond_drop < 1:
            raise ValueError(f"cond_drop must be in [0, 1), got {self.cond_drop}")


class Condition(NamedTuple):
    vector: Tensor  # (B, C): f, what the denoiser is conditioned on
    tokens: Tensor  # (B, 3 + K, C): f_obj, f_aff, f_txt and K per-point features, what the DAM attends to


class ConditionEncoder(nn.Module):
    """(object points (B, N, 3) metres, affordance map (B, N), sentence embedding (B, 384)) -> Condition."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        width = config.point_widths[-1]
        self.points = PointNetEncoder(4, config.point_widths, config.cond_dim)
        self.afford = nn.Linear(width, config.cond_dim)
        self.text = nn.Sequential(nn.Linear(TEXT_DIM, config.cond_dim), nn.SiLU(), nn.Linear(config.cond_dim,
                                                                                              config.cond_dim))
        self.local = nn.Linear(width, config.cond_dim)
        self.cond_tokens = config.cond_tokens

    def forward(self, object_points: Tensor, affordance_map: Tensor, text: Tensor) -> Condition:
        batch, n = object_points.shape[:2]
        if object_points.ndim != 3 or object_points.shape[2] != 3:
            raise ValueError(f"object_points must be (B, N, 3), got {tuple(object_points.shape)}")
        if affordance_map.shape != (batch, n):
            raise ValueError(f"affordance_map must be {(batch, n)}, got {tuple(affordance_map.shape)}")
        if text.shape != (batch, TEXT_DIM):
            raise ValueError(f"text must be {(batch, TEXT_DIM)}, got {tuple(text.shape)}")
        weights = affordance_map.clamp(0, 1)
        f_obj, local = self.points(torch.cat([object_points * INPUT_SCALE, weights[..., None]], -1))
        pooled = (weights[..., None] * local).sum(1) / weights.sum(1, keepdim=True).clamp(min=1e-6)
        f_aff, f_txt = self.afford(pooled), self.text(text)
        stride = max(1, n // self.cond_tokens)
        per_point = self.local(local[:, ::stride][:, : self.cond_tokens])  # (B, K, C)
        tokens = torch.cat([torch.stack([f_obj, f_aff, f_txt], 1), per_point], 1)
        return Condition(f_obj + f_aff + f_txt, tokens)


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of integer timesteps. t: (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    embedding = torch.cat([angles.sin(), angles.cos()], 1)
    return nn.functional.pad(embedding, (0, dim - 2 * half))


class ResidualBlock(nn.Module):
    """h + MLP(LN(h) (1 + s) + b), (s, b) from the time + condition embedding (FiLM / adaLN)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.film = nn.Linear(hidden, 2 * hidden)
        self.mlp = mlp([hidden, 2 * hidden, hidden])
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, h: Tensor, embedding: Tensor) -> Tensor:
        scale, shift = self.film(embedding).chunk(2, dim=1)
        return h + self.mlp(self.norm(h) * (1 + scale) + shift)


class Denoiser(nn.Module):
    """eps_theta(x_t, t, f): x_t (B, D), t (B,) long, f (B, C) -> (B, D)."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        hidden = config.hidden
        self.inp = nn.Linear(config.latent_dim, hidden)
        self.time = mlp([hidden, hidden, hidden])
        self.cond = nn.Linear(config.cond_dim, hidden)
        self.blocks = nn.ModuleList(ResidualBlock(hidden) for _ in range(config.blocks))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, config.latent_dim))
        self.hidden = hidden

    def forward(self, x: Tensor, t: Tensor, f: Tensor) -> Tensor:
        embedding = nn.functional.silu(self.time(timestep_embedding(t, self.hidden)) + self.cond(f))
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, embedding)
        return self.out(h)


class GraspDiffusion(nn.Module):
    """Condition encoder + denoiser + noise schedule + latent statistics + the null condition."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        self.condition = ConditionEncoder(config)
        self.denoiser = Denoiser(config)
        self.null = nn.Parameter(torch.zeros(config.cond_dim))
        betas = torch.linspace(config.beta_start, config.beta_end, config.timesteps, dtype=torch.float64)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0).float())  # (T,)
        self.register_buffer("latent_mean", torch.zeros(config.latent_dim))
        self.register_buffer("latent_std", torch.ones(config.latent_dim))

    def set_latent_stats(self, latents: Tensor) -> None:
        """Standardise with these training latents (M, D): per-dimension mean and std (floored at 1e-3)."""
        self.latent_mean.copy_(latents.mean(0))
        self.latent_std.copy_(latents.std(0).clamp(min=1e-3) if len(latents) > 1 else torch.ones_like(latents[0]))

    def normalise(self, latent: Tensor) -> Tensor:
        return (latent - self.latent_mean) / self.latent_std

    def denormalise(self, x: Tensor) -> Tensor:
        return x * self.latent_std + self.latent_mean

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps. x0, noise: (B, D), t: (B,) -> (B, D)."""
        a = self.alpha_bar[t][:, None]
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def drop_condition(self, f: Tensor, p: float) -> Tensor:
        """Each row of f (B, C) replaced by the null vector with probability p (training only)."""
        keep = (torch.rand(f.shape[0], 1, device=f.device) >= p).to(f.dtype)
        return keep * f + (1 - keep) * self.null.to(f.dtype)

    def loss(self, latent: Tensor, condition: Condition) -> Tensor:
        """DDPM epsilon loss on raw AE latents (B, D), with condition dropout at config.cond_drop. -> ()"""
        x0 = self.normalise(latent)
        t = torch.randint(0, self.config.timesteps, (x0.shape[0],), device=x0.device)
        noise = torch.randn_like(x0)
        f = self.drop_condition(condition.vector, self.config.cond_drop)
        return (self.denoiser(self.q_sample(x0, t, noise), t, f) - noise).float().square().mean()

    def guided_eps(self, x: Tensor, t: Tensor, f: Tensor, guidance: float) -> Tensor:
        """eps_u + w (eps_c - eps_u), both from one batched call (w = 1: the conditional model alone)."""
        if guidance == 1.0:
            return self.denoiser(x, t, f)
        null = self.null.to(f.dtype).expand_as(f)
        eps_c, eps_u = self.denoiser(torch.cat([x, x]), torch.cat([t, t]), torch.cat([f, null])).chunk(2)
        return eps_u + guidance * (eps_c - eps_u)

    def predict_x0(self, x: Tensor, t: Tensor, f: Tensor, guidance: float = 1.0) -> Tensor:
        """x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), in normalised latent space, clipped."""
        a = self.alpha_bar[t][:, None]
        x0 = (x - (1 - a).sqrt() * self.guided_eps(x, t, f, guidance).float()) / a.sqrt()
        return x0.clamp(-self.config.x0_clip, self.config.x0_clip)

    def ddim_timesteps(self, steps: int) -> list[int]:
        """`steps` timesteps, descending from T - 1 to 0, evenly spaced."""
        if not 1 <= steps <= self.config.timesteps:
            raise ValueError(f"ddim steps must be in [1, {self.config.timesteps}], got {steps}")
        grid = torch.linspace(self.config.timesteps - 1, 0, steps).round().long()
        return list(dict.fromkeys(int(t) for t in grid))

    @torch.no_grad()
    def sample(self, condition: Condition, steps: int = 50, guidance: float = 2.0,
               generator: torch.Generator | None = None) -> Tensor:
        """DDIM (eta = 0) from x_T ~ N(0, I) drawn with `generator` (CPU; deterministic) -> raw latents (B, D).

        x0_hat = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t);   x_s = sqrt(a_s) x0_hat + sqrt(1 - a_s) eps   (s < t)
        x0_hat is clipped to +-x0_clip, and eps re-derived from the clipped x0_hat so the two stay consistent.
        """
        f = condition.vector
        x = torch.randn(f.shape[0], self.config.latent_dim, generator=generator).to(f.device)
        times = self.ddim_timesteps(steps)
        for i, step in enumerate(times):
            t = torch.full((f.shape[0],), step, device=f.device, dtype=torch.long)
            eps = self.guided_eps(x, t, f, guidance).float()
            a_t = self.alpha_bar[step]
            x0 = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-self.config.x0_clip, self.config.x0_clip)
            eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()
            a_s = self.alpha_bar[times[i + 1]] if i + 1 < len(times) else torch.ones_like(a_t)
            x = a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps
        return self.denormalise(x)
