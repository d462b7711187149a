"""Point-BERT's fine-tuning classifier ("PointTransformer"), with the official module and parameter names, so a
state dict of the official repository (lulutang0608/Point-BERT) loads into it.

    points (B, N, 3) --FPS + kNN--> neighbourhoods (B, G, S, 3) re-centred on their centres (B, G, 3)
    tokens  = reduce_dim(Encoder(neighbourhoods))                  (B, G, C)   mini-PointNet per patch
    x_0     = [cls_token; tokens],  pos = [cls_pos; pos_embed(centres)]          (B, 1 + G, C)
    x_l     = Block_l(x_{l-1} + pos)                               pre-norm blocks, pos added before EVERY block
    logits  = cls_head_finetune([norm(x)_cls ; max_g norm(x)_g])   (B, cls_dim)

Grouping is deterministic (FPS from point 0, exact kNN), so eval-mode inference is a pure function of the weights.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.presets import Presets
from ops.fps import fps_torch

# Top-level modules of the backbone: a checkpoint key under one of these that the model lacks, or whose shape
# differs, means another architecture (e.g. a deeper or wider transformer), not a head to drop.
BACKBONE_PREFIXES = ("encoder", "reduce_dim", "cls_token", "cls_pos", "pos_embed", "blocks", "norm")
HEAD_PREFIX = "cls_head_finetune."
# Wrappers the official scripts put around keys: DistributedDataParallel ("module."), the pretraining model's
# query transformer ("transformer_q.", see Point_BERT.load_model_from_ckpt) and "base_model.".
_KEY_PREFIXES = ("module.", "transformer_q.", "base_model.")
_MIN_BACKBONE_COVERAGE = 0.5  # below this fraction of backbone tensors found, the file is not a Point-BERT backbone


@dataclass(frozen=True)
class PointBertConfig:
    """The `model:` block of the official finetune cfgs (e.g. cfgs/ModelNet_models/PointTransformer.yaml), plus
    `num_points` (the cfg's `npoints`: how many points each cloud is FPS-sampled to before the model)."""

    trans_dim: int  # transformer width C
    depth: int  # number of blocks
    drop_path_rate: float  # stochastic depth of the last block; block l gets l / (depth - 1) of it
    num_heads: int  # attention heads; must divide trans_dim
    group_size: int  # S, points per neighbourhood (patch)
    num_group: int  # G, patches (FPS centres) per cloud
    encoder_dims: int  # width of the mini-PointNet's pooled feature
    num_points: int  # N the data pipeline feeds (the model itself takes any N >= max(G, S))
    cls_dim: int = 9  # classes: no-affordance + 8 affordances
    # W, the mini-PointNet's inner width: 3 -> W/2 -> W per point, then 2W -> 2W -> encoder_dims. The official
    # model has W = 256 (its 512 x 512 layer over every point of every patch is most of a CPU training step).
    patch_width: int = 256

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "drop_path_rate" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{f.name} must be a positive int, got {value!r}")
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {self.drop_path_rate!r}")
        if self.trans_dim % self.num_heads:
            raise ValueError(f"num_heads must divide trans_dim={self.trans_dim}, got {self.num_heads}")
        if self.patch_width % 2:
            raise ValueError(f"patch_width must be even (its first layer is patch_width / 2 wide), "
                             f"got {self.patch_width}")
        if self.cls_dim < 2:
            raise ValueError(f"cls_dim must be >= 2, got {self.cls_dim}")
        for name in ("group_size", "num_group"):
            if getattr(self, name) > self.num_points:
                raise ValueError(f"{name} must be <= num_points={self.num_points}, got {getattr(self, name)}")


# The official ModelNet finetune widths (trans_dim 384, depth 12, 6 heads, encoder_dims 256, groups of 32) at the
# paper's 4096 points. num_group=64 is the official 1024-point value; the official 4096-point cfg uses 256 groups
# (4x the compute in the encoder). The group count changes no parameter shape, so weights load either way.
PAPER = PointBertConfig(trans_dim=384, depth=12, drop_path_rate=0.1, num_heads=6, group_size=32, num_group=64,
                        encoder_dims=256, num_points=4096)
# Trains for a demo or CI on two CPU cores. The patch MLP is half the official width: its 512 x 512 layer over
# every point of every patch was most of a training step; at 128 an epoch takes under half the time and held-out
# accuracy stayed above the demo's floor (BENCHMARKS.md block `demo_budgets`).
CPU_SMALL = PointBertConfig(trans_dim=128, depth=4, drop_path_rate=0.1, num_heads=4, group_size=16, num_group=32,
                            encoder_dims=128, num_points=1024, patch_width=128)
# The CPU sizes with the official patch MLP: what `cpu` was before, for comparison and for its checkpoints.
CPU_WIDE = replace(CPU_SMALL, patch_width=256)
PRESETS: Presets[PointBertConfig] = Presets("classifier (Point-BERT)",
                                            {"paper": PAPER, "cpu": CPU_SMALL, "cpu-wide": CPU_WIDE}, default="cpu")


class Groups(NamedTuple):
    """Output of `Group`; unpacks like the official (neighborhood, center) tuple."""

    neighborhood: Tensor  # (B, G, S, 3) neighbours minus their centre
    center: Tensor  # (B, G, 3) FPS centres, rows of the input


class Group(nn.Module):
    """Patches: `num_group` FPS centres (from point 0, deterministic), each with its `group_size` nearest points."""

    def __init__(self, num_group: int, group_size: int) -> None:
        super().__init__()
        self.num_group, self.group_size = num_group, group_size

    def forward(self, xyz: Tensor) -> Groups:
        """xyz: (B, N, 3) float, N >= num_group and group_size -> Groups((B, G, S, 3), (B, G, 3))."""
        batch = xyz.shape[0]
        with torch.no_grad():  # indices only; gradients reach the points through the gathers below
            center_idx = fps_torch(xyz.detach(), self.num_group)  # (B, G)
        rows = torch.arange(batch, device=xyz.device)
        center = xyz[rows[:, None], center_idx]  # (B, G, 3)
        # Exact distances (no |a|^2 + |b|^2 - 2ab shortcut): a centre's distance to itself is exactly 0, so it is
        # always in its own patch, and near-ties do not flip with rounding.
        dist = torch.cdist(center.detach(), xyz.detach(), compute_mode="donot_use_mm_for_euclid_dist")  # (B, G, N)
        knn_idx = dist.topk(self.group_size, dim=-1, largest=False, sorted=True).indices  # (B, G, S)
        neighborhood = xyz[rows[:, None, None], knn_idx]  # (B, G, S, 3)
        return Groups(neighborhood - center.unsqueeze(2), center)


class Encoder(nn.Module):
    """Mini-PointNet per patch: shared MLP, max-pool, concat the pooled feature to every point, MLP, max-pool."""

    def __init__(self, encoder_channel: int, width: int = 256) -> None:
        """width W: 3 -> W/2 -> W, concat the pooled W, then 2W -> 2W -> encoder_channel (official: W = 256)."""
        super().__init__()
        self.encoder_channel = encoder_channel
        half, double = width // 2, 2 * width
        self.first_conv = nn.Sequential(
            nn.Conv1d(3, half, 1), nn.BatchNorm1d(half), nn.ReLU(inplace=True), nn.Conv1d(half, width, 1))
        self.second_conv = nn.Sequential(
            nn.Conv1d(double, double, 1), nn.BatchNorm1d(double), nn.ReLU(inplace=True),
            nn.Conv1d(double, encoder_channel, 1))

    def forward(self, point_groups: Tensor) -> Tensor:
        """point_groups: (B, G, S, 3) -> (B, G, encoder_channel); invariant to point order within a patch.

        The kernel-1 convolutions run as matrix products on channel-last features: the same parameters and the
        same math as Conv1d on (BG, C, S), about 30 % faster to train on CPU (oneDNN's conv backward is slow)."""
        batch, groups, size, _ = point_groups.shape
        first, second = self.first_conv, self.second_conv
        patches = point_groups.reshape(batch * groups, size, 3)
        feature = _pointwise(patches, first[0], first[1], first[3])  # (BG, S, W)
        pooled = feature.max(dim=1, keepdim=True).values  # (BG, 1, W)
        feature = torch.cat([pooled.expand(-1, size, -1), feature], dim=2)  # (BG, S, 2W), global first
        feature = _pointwise(feature, second[0], second[1], second[3])  # (BG, S, C)
        return feature.max(dim=1).values.reshape(batch, groups, self.encoder_channel)


def _pointwise(x: Tensor, conv_in: nn.Conv1d, norm: nn.BatchNorm1d, conv_out: nn.Conv1d) -> Tensor:
    """conv_out(ReLU(norm(conv_in(x)))) for kernel-1 convolutions on channel-last x: (N, S, C_in) -> (N, S, C_out).
    BatchNorm statistics are taken over all N * S positions, as BatchNorm1d does on (N, C, S)."""
    hidden = F.linear(x, conv_in.weight.squeeze(-1), conv_in.bias)
    shape = hidden.shape
    # In training BatchNorm1d counts batches and uses its momentum (None: cumulative average), as its forward does.
    momentum = norm.momentum
    if norm.training and norm.track_running_stats:
        norm.num_batches_tracked.add_(1)
        if momentum is None:
            momentum = 1.0 / float(norm.num_batches_tracked)
    hidden = F.batch_norm(hidden.reshape(-1, shape[-1]), norm.running_mean, norm.running_var, norm.weight, norm.bias,
                          norm.training or not norm.track_running_stats, momentum or 0.0, norm.eps).reshape(shape)
    return F.linear(F.relu(hidden), conv_out.weight.squeeze(-1), conv_out.bias)


class DropPath(nn.Module):
    """Stochastic depth: in training, zero a residual branch for a random drop_prob of the samples and scale the
    kept ones by 1 / (1 - drop_prob), so the expectation is unchanged; identity in eval."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob!r}")
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, ...) -> same shape."""
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)  # one draw per sample
        return x * mask / keep


class Mlp(nn.Module):
    """fc1 -> GELU -> dropout -> fc2 -> dropout."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Attention(nn.Module):
    """Multi-head self-attention, softmax(q k^T / sqrt(d)) v, with one fused `qkv` projection (no bias, as the
    official default qkv_bias=False) and an output `proj`."""

    def __init__(self, dim: int, num_heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        self.num_heads, self.attn_drop = num_heads, attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        batch, tokens, dim = x.shape
        head_dim = dim // self.num_heads
        # (B, T, 3C) -> (3, B, H, T, d): the official split, so pretrained qkv weights mean the same q, k, v.
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, head_dim).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0,
                                             scale=head_dim**-0.5)  # (B, H, T, d), fused but the same math
        return self.proj_drop(self.proj(out.transpose(1, 2).reshape(batch, tokens, dim)))


class Block(nn.Module):
    """Pre-norm transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(MLP(LN(x)))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        # The official module uses nn.Identity at rate 0; neither has parameters, so state dicts agree.
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.attn = Attention(dim, num_heads)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, T, C) -> (B, T, C)."""
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class TransformerEncoder(nn.Module):
    """A stack of `Block`s; the position embedding is added to the input of every block, not only the first."""

    def __init__(self, embed_dim: int, depth: int, num_heads: int, drop_path_rate: list[float] | float = 0.0,
                 mlp_ratio: float = 4.0) -> None:
        super().__init__()
        rates = drop_path_rate if isinstance(drop_path_rate, list) else [drop_path_rate] * depth
        if len(rates) != depth:
            raise ValueError(f"drop_path_rate must have depth={depth} entries, got {len(rates)}")
        self.blocks = nn.ModuleList([Block(embed_dim, num_heads, mlp_ratio, rate) for rate in rates])

    def forward(self, x: Tensor, pos: Tensor) -> Tensor:
        """x, pos: (B, T, C) -> (B, T, C)."""
        for block in self.blocks:
            x = block(x + pos)
        return x


class PointTransformer(nn.Module):
    """Point-BERT classifier: points (B, N, 3) -> logits (B, cls_dim). Attribute names are the official ones."""

    def __init__(self, config: PointBertConfig) -> None:
        super().__init__()
        self.config = config
        self.trans_dim, self.cls_dim = config.trans_dim, config.cls_dim
        self.group_divider = Group(config.num_group, config.group_size)
        self.encoder = Encoder(config.encoder_dims, config.patch_width)
        self.reduce_dim = nn.Linear(config.encoder_dims, config.trans_dim)
        # Initialised as the official finetune model does: a zero CLS token, a standard-normal CLS position.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.trans_dim))
        self.cls_pos = nn.Parameter(torch.randn(1, 1, config.trans_dim))
        self.pos_embed = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, config.trans_dim))
        rates = torch.linspace(0, config.drop_path_rate, config.depth).tolist()  # deeper blocks drop more
        self.blocks = TransformerEncoder(config.trans_dim, config.depth, config.num_heads, rates)
        self.norm = nn.LayerNorm(config.trans_dim)
        self.cls_head_finetune = nn.Sequential(
            nn.Linear(config.trans_dim * 2, 256), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(256, config.cls_dim))

    def reset_head(self) -> None:
        """Re-initialise the classifier head (PyTorch's default init), e.g. after loading another task's weights."""
        for layer in self.cls_head_finetune:
            if isinstance(layer, nn.Linear):
                layer.reset_parameters()

    def forward(self, points: Tensor) -> Tensor:
        """points: (B, N, 3) float, finite, N >= max(num_group, group_size) -> logits (B, cls_dim)."""
        x = self.blocks(*self._tokens(self._checked(points)))  # (B, 1 + G, C)
        x = self.norm(x)
        feature = torch.cat([x[:, 0], x[:, 1:].max(dim=1).values], dim=-1)  # (B, 2C): CLS ; max over patches
        return self.cls_head_finetune(feature)

    def _tokens(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """points: (B, N, 3) -> input tokens and position embeddings, both (B, 1 + G, C), CLS first."""
        neighborhood, center = self.group_divider(points)
        tokens = self.reduce_dim(self.encoder(neighborhood))  # (B, G, C)
        batch = tokens.shape[0]
        x = torch.cat([self.cls_token.expand(batch, -1, -1), tokens], dim=1)
        pos = torch.cat([self.cls_pos.expand(batch, -1, -1), self.pos_embed(center)], dim=1)
        return x, pos

    def _checked(self, points: Tensor) -> Tensor:
        """Rejects what the grouping cannot take; casts to the weights' dtype (the device must already match)."""
        smallest = max(self.config.num_group, self.config.group_size)
        if not isinstance(points, Tensor) or not points.is_floating_point():
            raise ValueError(f"points must be a floating-point tensor, got {type(points).__name__}")
        if points.ndim != 3 or points.shape[2] != 3 or points.shape[0] < 1 or points.shape[1] < smallest:
            raise ValueError(f"points must be (B, N, 3) with B >= 1 and N >= {smallest}, got {tuple(points.shape)}")
        if not torch.isfinite(points).all():
            raise ValueError("points contain NaN or inf")
        return points.to(self.reduce_dim.weight.dtype)


