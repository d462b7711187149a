"""DAM: refine the diffusion model's coarse latent h_c by cross-attending to the condition tokens.

    q = split(W_q h_c) into L query tokens of width C      (B, L, C)
    q' = q + MHA(LN(q), f_tokens, f_tokens)                  heads in {1, 2, 4}
    q'' = q' + FFN(LN(q'))
    h_p = h_c + W_o flatten(q'')                             (residual: starts as the identity, W_o = 0)
    mesh = MANO(AE.decode(h_p))

Trained with L = l1 L_param + l2 L_mesh + l3 L_consist + l4 L_cmap + l5 L_penetr (models/grasp_losses.py), the
diffusion model and the autoencoder frozen. Inference is one pass: no test-time optimisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from models.hand_autoencoder import mlp

HEADS = (1, 2, 4)


@dataclass(frozen=True)
class DAMConfig:
    latent_dim: int = 768
    cond_dim: int = 256
    heads: int = 4
    queries: int = 8  # query tokens the latent is split into
    layers: int = 2

    def __post_init__(self) -> None:
        if self.heads not in HEADS:
            raise ValueError(f"heads must be one of {HEADS}, got {self.heads}")
        if self.cond_dim % self.heads:
            raise ValueError(f"cond_dim ({self.cond_dim}) must be divisible by heads ({self.heads})")
        for name in ("latent_dim", "queries", "layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


class CrossAttentionLayer(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.norm_q, self.norm_kv, self.norm_ff = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ff = mlp([width, 2 * width, width])

    def forward(self, queries: Tensor, tokens: Tensor) -> Tensor:
        """queries (B, L, C), tokens (B, S, C) -> (B, L, C)."""
        kv = self.norm_kv(tokens)
        queries = queries + self.attention(self.norm_q(queries), kv, kv, need_weights=False)[0]
        return queries + self.ff(self.norm_ff(queries))


class DAM(nn.Module):
    """h_c (B, D), condition tokens (B, S, C) -> h_p (B, D)."""

    def __init__(self, config: DAMConfig) -> None:
        super().__init__()
        self.config = config
        self.to_queries = nn.Linear(config.latent_dim, config.queries * config.cond_dim)
        self.layers = nn.ModuleList(CrossAttentionLayer(config.cond_dim, config.heads) for _ in range(config.layers))
        self.out = nn.Linear(config.queries * config.cond_dim, config.latent_dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, coarse: Tensor, tokens: Tensor) -> Tensor:
        if coarse.ndim != 2 or coarse.shape[1] != self.config.latent_dim:
            raise ValueError(f"coarse latent must be (B, {self.config.latent_dim}), got {tuple(coarse.shape)}")
        if tokens.ndim != 3 or tokens.shape[0] != coarse.shape[0] or tokens.shape[2] != self.config.cond_dim:
            raise ValueError(f"tokens must be ({coarse.shape[0]}, S, {self.config.cond_dim}), "
                             f"got {tuple(tokens.shape)}")
        queries = self.to_queries(coarse).unflatten(1, (self.config.queries, self.config.cond_dim))
        for layer in self.layers:
            queries = layer(queries, tokens)
        return coarse + self.out(queries.flatten(1))
