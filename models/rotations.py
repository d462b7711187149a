"""Rotations in torch, differentiable: matrix -> axis-angle, and the continuous 6D representation (axis-angle ->
matrix is models.mano.axis_angle_to_matrix).

Why a 6D head: the hand autoencoder regressed MANO's global rotation as an axis-angle vector, which is
discontinuous (a rotation by nearly pi about n and one about -n are neighbours, their vectors 2 pi apart). Grasps
come from every side of an object (a quarter of the generator set's global rotations are over 2.5 rad), so the
decoder could not fit it, and the hand's translation, which MANO applies after rotating about the wrist, went wrong
with it. Zhou et al., "On the Continuity of Rotation Representations in Neural Networks" (CVPR 2019), show that
two columns of the rotation matrix (6 values, Gram-Schmidt-orthonormalised) are continuous; bench/
bench_generator_ae.py compares the two heads.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def rotation_6d_to_matrix(six: Tensor) -> Tensor:
    """(..., 6): two 3-vectors a, b -> (..., 3, 3) with columns x = a/|a|, y = b orthogonalised to x, z = x cross y."""
    a, b = six[..., :3], six[..., 3:]
    x = F.normalize(a, dim=-1)
    y = F.normalize(b - (x * b).sum(-1, keepdim=True) * x, dim=-1)
    return torch.stack([x, y, torch.cross(x, y, dim=-1)], -1)


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """(..., 3, 3) rotation -> (..., 3) axis-angle with angle in [0, pi], through the unit quaternion (computed
    from the largest of its four components, so it stays accurate near pi, where the trace formula does not)."""
    m = matrix
    trace = m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2]
    # 4 |q_i|^2 for w, x, y, z; the largest picks the numerically safe formula
    squares = torch.stack([1 + trace, 1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
                           1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
                           1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2]], -1)
    big = squares.clamp(min=1e-12).sqrt()  # 2 |q_i|
    zy, xz, yx = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    xy, xz_, yz = m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1]
    candidates = torch.stack([  # each row: 2 q (w, x, y, z) from one pivot component, divided by 2 |q_pivot|
        torch.stack([big[..., 0] ** 2, zy, xz, yx], -1) / big[..., 0:1],
        torch.stack([zy, big[..., 1] ** 2, xy, xz_], -1) / big[..., 1:2],
        torch.stack([xz, xy, big[..., 2] ** 2, yz], -1) / big[..., 2:3],
        torch.stack([yx, xz_, yz, big[..., 3] ** 2], -1) / big[..., 3:4],
    ], -2)
    pivot = squares.argmax(-1)
    quat = candidates.gather(-2, pivot[..., None, None].expand(*pivot.shape, 1, 4)).squeeze(-2)
    quat = F.normalize(torch.where(quat[..., :1] < 0, -quat, quat), dim=-1)
    half = torch.atan2(quat[..., 1:].norm(dim=-1), quat[..., 0])
    return F.normalize(quat[..., 1:], dim=-1, eps=1e-12) * (2 * half)[..., None]
