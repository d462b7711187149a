"""Hand autoencoder (FastGrasp-style): PointNet over the 778 MANO vertices -> latent -> MLP -> 61 MANO values.

The 61 values, in this order: betas (10), global rotation (3, axis-angle), finger pose (45, full axis-angle of the
15 finger joints), translation (3, metres). The latent is what the diffusion model generates.

    z = max_v MLP(10 h_v)                     (PointNet: shared per-vertex MLP, symmetric max-pool)
    z = MLP(10 [h_1 .. h_778])                (encoder "mlp": the ordered vertices, flattened)
    x = mu + sigma * MLP(z)                   (61 MANO values; mu, sigma per value over the training set)
    L_AE = |(x - x*) / sigma|^2 + w_cd CD(MANO(x), MANO(x*)) [+ w_v2v |MANO(x) - h|] [+ w_kl KL(q(z|h) || N(0, I))]
With rotation "6d" the decoder gives the global rotation as two matrix columns (models/rotations.py) instead of
an axis-angle vector, and the parameter loss compares rotation matrices, |R - R*|_F^2, for that part.
The parameter loss is standardised so that each value counts alike: translations in metres vary by millimetres,
finger angles by tenths of radians, and a raw MSE would let the angles drown the translation.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from models.mano import ManoLayer, axis_angle_to_matrix
from models.rotations import matrix_to_axis_angle, rotation_6d_to_matrix

MANO_DIM = 61
BETAS, GLOBAL_ROT, FINGERS, TRANS = slice(0, 10), slice(10, 13), slice(13, 58), slice(58, 61)
INPUT_SCALE = 10.0  # vertices in metres are ~0.1; decimetres give the first layer O(1) inputs
HAND_VERTS = 778
ENCODERS = ("pointnet", "mlp")  # HandAEConfig.encoder
ROTATIONS = ("axis_angle", "6d")  # HandAEConfig.rotation
_NOT_ROT = [*range(BETAS.stop), *range(FINGERS.start, TRANS.stop)]  # the 58 values besides the global rotation


def mano_vector(pose: Tensor, betas: Tensor, trans: Tensor) -> Tensor:
    """pose (B, 48) global + fingers, betas (B, 10), trans (B, 3) metres -> (B, 61) in the autoencoder's order."""
    return torch.cat([betas, pose[:, :3], pose[:, 3:], trans], 1)


def split_mano(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(B, 61) -> pose (B, 48), betas (B, 10), trans (B, 3): the ManoLayer's inputs."""
    if x.ndim != 2 or x.shape[1] != MANO_DIM:
        raise ValueError(f"MANO vector must be (B, {MANO_DIM}), got {tuple(x.shape)}")
    return torch.cat([x[:, GLOBAL_ROT], x[:, FINGERS]], 1), x[:, BETAS], x[:, TRANS]


def mano_vertices(mano: ManoLayer, x: Tensor) -> Tensor:
    """(B, 61) -> hand vertices (B, 778, 3) in metres, computed in float32 (outside any autocast)."""
    pose, betas, trans = split_mano(x.float())
    with torch.autocast(device_type=x.device.type, enabled=False):
        verts, _ = mano(pose, betas, trans)
    return verts / 1000.0


@dataclass(frozen=True)
class HandAEConfig:
    """Sizes: FastGrasp uses a 768-d latent (`paper`); `tiny` keeps a CPU test to seconds."""

    latent_dim: int = 768
    point_widths: tuple[int, ...] = (64, 128, 256)
    decoder_widths: tuple[int, ...] = (512, 256)
    variational: bool = False  # a KL term on a Gaussian posterior; off by default (FastGrasp's AE is plain)
    # pointnet: FastGrasp's, order-free. mlp: the 778 vertices in MANO's fixed order, flattened, through an MLP of
    # point_widths: it sees which vertex is which, and reconstructs several times closer for the same training time
    # on a CPU (docs/grasp/training.md).
    encoder: str = "pointnet"
    # axis_angle: the decoder regresses MANO's global rotation vector (FastGrasp's). 6d: two rotation-matrix
    # columns, continuous over all rotations (models/rotations.py says why; docs/grasp/training.md has the runs).
    rotation: str = "axis_angle"

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}, got {self.encoder!r}")
        if self.rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {', '.join(ROTATIONS)}, got {self.rotation!r}")
        if not self.point_widths or min(self.point_widths) < 1 or min(self.decoder_widths, default=1) < 1:
            raise ValueError(f"point_widths / decoder_widths must be positive, got {self.point_widths}, "
                             f"{self.decoder_widths}")


def mlp(widths: list[int], final_activation: bool = False) -> nn.Sequential:
    """Linear layers between consecutive widths, SiLU between them (and after the last with final_activation)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(widths) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class PointNetEncoder(nn.Module):
    """Shared per-point MLP then max-pool. points: (B, N, C_in) -> (B, C_out) global, (B, N, widths[-1]) local."""

    def __init__(self, in_dim: int, widths: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        self.local = mlp([in_dim, *widths], final_activation=True)
        self.head = nn.Linear(widths[-1], out_dim)

    def forward(self, points: Tensor) -> tuple[Tensor, Tensor]:
        local = self.local(points)
        return self.head(local.max(dim=1).values), local


class VertexMLPEncoder(nn.Module):
    """The ordered vertices flattened through an MLP. points: (B, 778, 3) -> (B, C_out), and None (no local
    features)."""

    def __init__(self, widths: tuple[int, ...], out_dim: int) -> None:
        super().__init__()
        self.net = mlp([HAND_VERTS * 3, *widths, out_dim])

    def forward(self, points: Tensor) -> tuple[Tensor, None]:
        return self.net(points.flatten(1)), None



class AEOutput(NamedTuple):
    mano: Tensor  # (B, 61)
    latent: Tensor  # (B, D): the sample (variational) or the mean
    mean: Tensor  # (B, D)
    logvar: Tensor | None  # (B, D) when variational


class HandAutoencoder(nn.Module):
    """encode: hand vertices (B, 778, 3) metres -> latent (B, D); decode: latent -> MANO vector (B, 61)."""

    def __init__(self, config: HandAEConfig) -> None:
        super().__init__()
        self.config = config
        out = 2 * config.latent_dim if config.variational else config.latent_dim
        self.encoder = (PointNetEncoder(3, config.point_widths, out) if config.encoder == "pointnet"
                        else VertexMLPEncoder(config.point_widths, out))
        self.decoder = mlp([config.latent_dim, *config.decoder_widths, MANO_DIM + 3 * (config.rotation == "6d")])
        self.register_buffer("param_mean", torch.zeros(MANO_DIM))
        self.register_buffer("param_std", torch.ones(MANO_DIM))

    def set_param_stats(self, vectors: Tensor) -> None:
        """mu, sigma of the training MANO vectors (M, 61); sigma floored at 1e-4 (constant values, one sample)."""
        if vectors.ndim != 2 or vectors.shape[1] != MANO_DIM or len(vectors) == 0:
            raise ValueError(f"vectors must be (M, {MANO_DIM}) with M >= 1, got {tuple(vectors.shape)}")
        self.param_mean.copy_(vectors.mean(0))
        std = vectors.std(0) if len(vectors) > 1 else torch.ones_like(vectors[0])
        self.param_std.copy_(std.clamp(min=1e-4))

    def param_loss(self, predicted: Tensor, target: Tensor) -> Tensor:
        """Standardised MSE: mean(((x - x*) / sigma)^2). (B, 61), (B, 61) -> (). With rotation "6d": that mean over
        the 58 other values, plus mean |R(x) - R(x*)|_F^2 for the global rotation (in [0, 8])."""
        if self.config.rotation != "6d":
            return ((predicted.float() - target) / self.param_std).square().mean()
        other = ((predicted.float()[:, _NOT_ROT] - target[:, _NOT_ROT]) / self.param_std[_NOT_ROT]).square().mean()
        rotation = axis_angle_to_matrix(predicted.float()[:, GLOBAL_ROT]) - axis_angle_to_matrix(target[:, GLOBAL_ROT])
        return other + rotation.square().sum((1, 2)).mean()

    def encode_stats(self, hand_verts: Tensor) -> tuple[Tensor, Tensor | None]:
        """(mean (B, D), logvar (B, D) or None)."""
        if hand_verts.ndim != 3 or hand_verts.shape[1:] != (HAND_VERTS, 3):
            raise ValueError(f"hand_verts must be (B, {HAND_VERTS}, 3), got {tuple(hand_verts.shape)}")
        code, _ = self.encoder(hand_verts * INPUT_SCALE)
        if not self.config.variational:
            return code, None
        mean, logvar = code.chunk(2, dim=1)
        return mean, logvar.clamp(-10, 10)

    def encode(self, hand_verts: Tensor) -> Tensor:
        """The latent the diffusion model learns: the posterior mean (deterministic). (B, 778, 3) -> (B, D)."""
        return self.encode_stats(hand_verts)[0]

    def decode(self, latent: Tensor) -> Tensor:
        """(B, D) -> (B, 61): mu + sigma * MLP(z); with rotation "6d" the global rotation comes from the 6 values
        after the betas (decoder output (B, 64)), as axis-angle."""
        out = self.decoder(latent).float()
        if self.config.rotation != "6d":
            return self.param_mean + self.param_std * out
        rotation = matrix_to_axis_angle(rotation_6d_to_matrix(out[:, BETAS.stop:BETAS.stop + 6]))
        other = self.param_mean[_NOT_ROT] + self.param_std[_NOT_ROT] * torch.cat([out[:, BETAS], out[:, 16:]], 1)
        return torch.cat([other[:, BETAS], rotation, other[:, BETAS.stop:]], 1)

    def forward(self, hand_verts: Tensor) -> AEOutput:
        mean, logvar = self.encode_stats(hand_verts)
        latent = mean if logvar is None or not self.training else mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        return AEOutput(self.decode(latent), latent, mean, logvar)


def kl_divergence(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mean, exp(logvar)) || N(0, I)), summed over latent dims, averaged over the batch."""
    return (-0.5 * (1 + logvar - mean.square() - logvar.exp()).sum(1)).mean()
