"""Object affordance map: (object points, instruction tokens) -> per-point probability v_i in [0, 1].

Point-BERT-style patches with upsampling (the design the AffordGrasp engine names): FPS centres and their
nearest points form patches, a mini-PointNet embeds each patch, and a transformer relates the patches. Then,
`fusion_depth` times, the patches cross-attend to the instruction's tokens (from all-MiniLM-L6-v2) and to each
other (a transformer decoder layer: the text is the memory). Patch features are interpolated back to every point
(inverse distance over the 3 nearest centres, as PointNet++'s feature propagation does), joined with a per-point
embedding of the coordinates, and each point cross-attends to the text tokens once more before a per-point head.

Points are normalised per cloud (centred, unit max radius) inside the model, so callers pass metres.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor, nn

from models.point_bert import Group, TransformerEncoder
from models.presets import Presets
from models.text_encoder import TEXT_DIM


@dataclass(frozen=True)
class AffordanceNetConfig:
    """Widths and sizes; `num_points` is what the data pipeline samples per object (the model takes any N)."""

    num_points: int = 2048  # points per object the data pipeline feeds
    num_group: int = 64  # G patches (FPS centres)
    group_size: int = 32  # S points per patch
    trans_dim: int = 128  # C, patch and text width
    depth: int = 3  # patch self-attention blocks
    fusion_depth: int = 2  # patch <- text cross-attention layers
    num_heads: int = 4
    point_dim: int = 64  # P, per-point width after upsampling
    text_dim: int = TEXT_DIM  # width of the text encoder's tokens

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{f.name} must be a positive int, got {value!r}")
        for name, width in (("trans_dim", self.trans_dim), ("point_dim", self.point_dim)):
            if width % self.num_heads:
                raise ValueError(f"num_heads={self.num_heads} must divide {name}={width}")
        if max(self.num_group, self.group_size) > self.num_points:
            raise ValueError(f"num_group and group_size must be <= num_points={self.num_points}")


# ~1.15 M parameters. Patches of 16 points: the 64 patches then cover a 1,024-point training cloud about once
# instead of twice, and the patch MLP (most of a CPU step) does half the work (BENCHMARKS.md, "Demo training
# budgets", beside `cpu-large-patch`, what `cpu` was before).
CPU = AffordanceNetConfig(group_size=16)
CPU_LARGE_PATCH = AffordanceNetConfig(group_size=32)
# Wider and finer for a GPU: 128 patches, 384-wide like Point-BERT's paper widths.
PAPER = AffordanceNetConfig(num_group=128, group_size=32, trans_dim=384, depth=6, fusion_depth=3, num_heads=6,
                            point_dim=96)
# Seconds to train: tests and CI smoke runs.
TINY = AffordanceNetConfig(num_points=256, num_group=16, group_size=16, trans_dim=32, depth=1, fusion_depth=1,
                           num_heads=2, point_dim=16)
PRESETS: Presets[AffordanceNetConfig] = Presets("affordance-map net", {"cpu": CPU, "cpu-large-patch": CPU_LARGE_PATCH,
                                                                       "paper": PAPER, "tiny": TINY}, default="cpu")


def normalise_cloud(points: Tensor) -> Tensor:
    """points: (B, N, 3) -> centred on their mean, divided by the largest distance from it (unit ball)."""
    centred = points - points.mean(dim=1, keepdim=True)
    radius = centred.norm(dim=-1).amax(dim=1).clamp_min(1e-9)  # (B,)
    return centred / radius[:, None, None]


class PatchEmbed(nn.Module):
    """Mini-PointNet per patch: (B, G, S, 3) -> (B, G, C); shared MLP, max-pool, concat, MLP, max-pool."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.Linear(3, 64), nn.LayerNorm(64), nn.GELU(), nn.Linear(64, 64))
        self.second = nn.Sequential(nn.Linear(128, 128), nn.LayerNorm(128), nn.GELU(), nn.Linear(128, width))

    def forward(self, patches: Tensor) -> Tensor:
        feature = self.first(patches)  # (B, G, S, 64)
        pooled = feature.amax(dim=2, keepdim=True).expand_as(feature)
        return self.second(torch.cat([pooled, feature], dim=-1)).amax(dim=2)  # (B, G, C)


def interpolate(points: Tensor, centres: Tensor, features: Tensor, k: int = 3) -> Tensor:
    """Inverse-distance interpolation of centre features onto points (PointNet++ feature propagation).

    points: (B, N, 3), centres: (B, G, 3), features: (B, G, C) -> (B, N, C); w_j = (1 / d_j) / sum_j (1 / d_j)
    over the k nearest centres (a point on a centre takes that centre's feature).
    """
    dist = torch.cdist(points, centres)  # (B, N, G)
    nearest, index = dist.topk(min(k, centres.shape[1]), dim=-1, largest=False)  # (B, N, k)
    weight = 1.0 / nearest.clamp_min(1e-8)
    weight = weight / weight.sum(dim=-1, keepdim=True)
    batch = torch.arange(points.shape[0], device=points.device)[:, None, None]
    return (features[batch, index] * weight.unsqueeze(-1)).sum(dim=2)  # (B, N, C)


class AffordanceNet(nn.Module):
    """points (B, N, 3) metres + text tokens (B, L, text_dim) with mask (B, L) -> logits (B, N)."""

    def __init__(self, config: AffordanceNetConfig = CPU) -> None:
        super().__init__()
        self.config = c = config
        self.group = Group(c.num_group, c.group_size)
        self.patch_embed = PatchEmbed(c.trans_dim)
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, c.trans_dim))
        self.patch_blocks = TransformerEncoder(c.trans_dim, c.depth, c.num_heads)
        self.text_proj = nn.Sequential(nn.Linear(c.text_dim, c.trans_dim), nn.LayerNorm(c.trans_dim))
        self.fusion = nn.ModuleList([
            nn.TransformerDecoderLayer(c.trans_dim, c.num_heads, dim_feedforward=2 * c.trans_dim, dropout=0.0,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(c.fusion_depth)])
        self.patch_out = nn.Sequential(nn.LayerNorm(c.trans_dim), nn.Linear(c.trans_dim, c.point_dim))
        self.point_embed = nn.Sequential(nn.Linear(3, 32), nn.GELU(), nn.Linear(32, c.point_dim))
        self.point_mix = nn.Sequential(nn.Linear(2 * c.point_dim, c.point_dim), nn.GELU(),
                                       nn.Linear(c.point_dim, c.point_dim))
        self.text_to_point = nn.Linear(c.trans_dim, c.point_dim)
        self.point_norm = nn.LayerNorm(c.point_dim)
        self.point_attn = nn.MultiheadAttention(c.point_dim, c.num_heads, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(c.point_dim), nn.Linear(c.point_dim, c.point_dim), nn.GELU(),
                                  nn.Linear(c.point_dim, 1))

    def forward(self, points: Tensor, text_tokens: Tensor, text_mask: Tensor) -> Tensor:
        """points: (B, N, 3) finite, N >= max(num_group, group_size); text_tokens: (B, L, text_dim);
        text_mask: (B, L) bool, True at real tokens (at least one per row) -> logits (B, N)."""
        points = self._checked(points, text_tokens, text_mask)
        xyz = normalise_cloud(points)
        patches, centres = self.group(xyz)  # (B, G, S, 3), (B, G, 3)
        pos = self.pos_embed(centres)
        tokens = self.patch_blocks(self.patch_embed(patches), pos)  # (B, G, C)
        text = self.text_proj(text_tokens.to(tokens.dtype))  # (B, L, C)
        padding = ~text_mask
        for layer in self.fusion:  # patches attend to each other, then to the instruction
            tokens = layer(tokens + pos, text, memory_key_padding_mask=padding)
        per_point = interpolate(xyz, centres, self.patch_out(tokens))  # (B, N, P)
        x = self.point_mix(torch.cat([per_point, self.point_embed(xyz)], dim=-1))  # (B, N, P)
        words = self.text_to_point(text)  # (B, L, P)
        attended, _ = self.point_attn(self.point_norm(x), words, words, key_padding_mask=padding, need_weights=False)
        return self.head(x + attended).squeeze(-1)  # (B, N)

    def _checked(self, points: Tensor, text_tokens: Tensor, text_mask: Tensor) -> Tensor:
        smallest = max(self.config.num_group, self.config.group_size)
        if points.ndim != 3 or points.shape[2] != 3 or points.shape[1] < smallest:
            raise ValueError(f"points must be (B, N, 3) with N >= {smallest}, got {tuple(points.shape)}")
        if not torch.isfinite(points).all():
            raise ValueError("points contain NaN or inf")
        batch = points.shape[0]
        if text_tokens.ndim != 3 or text_tokens.shape[0] != batch or text_tokens.shape[2] != self.config.text_dim:
            raise ValueError(f"text_tokens must be ({batch}, L, {self.config.text_dim}), "
                             f"got {tuple(text_tokens.shape)}")
        if text_mask.shape != text_tokens.shape[:2] or text_mask.dtype != torch.bool:
            raise ValueError(f"text_mask must be bool {tuple(text_tokens.shape[:2])}, got {text_mask.dtype} "
                             f"{tuple(text_mask.shape)}")
        if not text_mask.any(dim=1).all():
            raise ValueError("text_mask: every instruction needs at least one real token")
        return points.to(self.head[1].weight.dtype)


def config_dict(config: AffordanceNetConfig) -> dict[str, int]:
    return asdict(config)
