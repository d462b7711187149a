"""MANO hand model as a differentiable torch layer, with manopth's constructor, forward signature and conventions.

    pose coeffs --PCA--> axis-angle (16 joints) --Rodrigues--> R_j
    v_shaped = v_template + shapedirs . betas                    (shape blend shapes)
    J        = J_regressor . v_shaped                            (rest-pose joints)
    v_posed  = v_shaped + posedirs . vec(R_j - I), j = 1..15     (pose blend shapes)
    G_j      = G_parent(j) [R_j | J_j - J_parent(j)]             (forward kinematics)
    v        = sum_k w_k G_k [v_posed - J_k; 1]                  (linear blend skinning)

Everything is computed in metres and returned in millimetres, as manopth does.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor, nn

from models.mano_pickle import (
    NUM_BETAS,
    NUM_JOINTS,
    NUM_PCA_COMPS,
    ManoParams,
    load_mano_pickle,
    mano_file,
)

NUM_OUTPUT_JOINTS = 21
# Fingertip vertices (thumb, index, middle, ring, pinky); manopth takes the left middle tip one vertex over.
TIP_VERTICES = {"right": (745, 317, 444, 556, 673), "left": (745, 317, 445, 556, 673)}
# [16 MANO joints: wrist, index 1-3, middle 4-6, pinky 7-9, ring 10-12, thumb 13-15] + [tips 16-20, order above]
# -> wrist, thumb (4), index (4), middle (4), ring (4), pinky (4), each finger from its base to its tip.
JOINT_ORDER = (0, 13, 14, 15, 16, 1, 2, 3, 17, 4, 5, 6, 18, 10, 11, 12, 19, 7, 8, 9, 20)
_SMALL_ANGLE_SQ = 1e-6  # below this theta^2, Rodrigues' coefficients use their Taylor series


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rotation matrices of axis-angle vectors. axis_angle: (..., 3) radians -> (..., 3, 3).

    R = I + a K + b K^2 with K = [r]x, a = sin(t)/t, b = (1 - cos t)/t^2, t = |r|   (Rodrigues)
    Near t = 0 the coefficients come from their Taylor series, so values and gradients stay finite at r = 0.
    """
    theta_sq = (axis_angle * axis_angle).sum(-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)  # keeps the unused branch free of 0/0
    theta = safe_sq.sqrt()
    a = torch.where(small, 1 - theta_sq / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta_sq / 24, 2 * torch.sin(theta / 2) ** 2 / safe_sq)  # 1-cos t = 2 sin^2(t/2)
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).unflatten(-1, (3, 3))
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a[..., None, None] * skew + b[..., None, None] * (skew @ skew)


class ManoLayer(nn.Module):
    """MANO as a layer: pose, shape and translation in; hand vertices and 21 joints out, in millimetres.

    Keyword-compatible with manopth's `ManoLayer`; `params` (a `ManoParams`) replaces reading `mano_root`,
    which is how the generated hand and the tests build it. Only axis-angle rotations are implemented (other
    root_rot_mode / joint_rot_mode values raise NotImplementedError), so robust_rot, a rot6d option, is unused.
    Constants are float32 buffers (`.double()` for float64); inputs are cast to the buffers' dtype and must be
    on their device.
    """

    def __init__(self, center_idx: int | None = None, flat_hand_mean: bool = True, ncomps: int = 6,
                 side: str = "right", mano_root: str | os.PathLike[str] = "mano/models", use_pca: bool = True,
                 root_rot_mode: str = "axisang", joint_rot_mode: str = "axisang", robust_rot: bool = False,
                 params: ManoParams | None = None) -> None:
        super().__init__()
        _check_config(center_idx, ncomps, side, use_pca, root_rot_mode, joint_rot_mode)
        self.center_idx, self.flat_hand_mean, self.side, self.use_pca = center_idx, flat_hand_mean, side, use_pca
        self.ncomps = ncomps if use_pca else NUM_PCA_COMPS
        self.root_rot_mode, self.joint_rot_mode, self.robust_rot = root_rot_mode, joint_rot_mode, robust_rot
        if params is None:
            params = load_mano_pickle(mano_file(mano_root, side))
        self.kintree_parents = params.parents
        self.tip_vertices = list(TIP_VERTICES[side])
        self._register_model(params)

    def _register_model(self, params: ManoParams) -> None:
        """manopth's buffer names and shapes, so code that reads e.g. `th_faces` or `th_selected_comps` works."""
        def buffer(name: str, value: np.ndarray) -> None:
            self.register_buffer(name, torch.tensor(np.asarray(value, dtype=np.float32)))  # a copy

        buffer("th_v_template", params.v_template[None])  # (1, 778, 3)
        buffer("th_shapedirs", params.shapedirs)  # (778, 3, 10)
        buffer("th_posedirs", params.posedirs)  # (778, 3, 135)
        buffer("th_J_regressor", params.J_regressor)  # (16, 778)
        buffer("th_weights", params.weights)  # (778, 16)
        buffer("th_comps", params.hands_components)  # (45, 45)
        buffer("th_selected_comps", params.hands_components[: self.ncomps])  # (ncomps, 45)
        mean = np.zeros_like(params.hands_mean) if self.flat_hand_mean else params.hands_mean
        buffer("th_hands_mean", mean[None])  # (1, 45)
        self.register_buffer("th_faces", torch.tensor(params.f, dtype=torch.long))  # (1538, 3)

    def forward(self, th_pose_coeffs: Tensor, th_betas: Tensor | None = None,
                th_trans: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Posed hand vertices and joints.

        th_pose_coeffs: (B, 3 + ncomps) with use_pca (global axis-angle + PCA coefficients), else (B, 48)
            (global axis-angle + 15 joints x 3). The finger pose is hands_mean (unless flat_hand_mean)
            + coeffs @ hands_components[:ncomps], or + the 45 given values.
        th_betas: (B, 10) shape, zeros when None.     th_trans: (B, 3) metres, zeros when None.
        Returns verts (B, 778, 3) and joints (B, 21, 3), float, millimetres; joints ordered wrist, thumb,
        index, middle, ring, pinky (4 each, base to tip).

        Placement follows manopth exactly, in metres, then scales: if th_trans is None or all zero (over the
        whole batch) and center_idx is set, joint center_idx is moved to the origin; otherwise th_trans is added
        and center_idx is ignored. Then everything is multiplied by 1000.
        """
        pose, betas, trans = self._check_inputs(th_pose_coeffs, th_betas, th_trans)
        rots = axis_angle_to_matrix(self._full_pose(pose).unflatten(1, (NUM_JOINTS, 3)))  # (B, 16, 3, 3)
        v_shaped = self._shaped_vertices(betas)  # (B, 778, 3)
        rest_joints = torch.einsum("jv,bvc->bjc", self.th_J_regressor, v_shaped)  # (B, 16, 3)
        v_posed = v_shaped + self._pose_offsets(rots)
        world = self._forward_kinematics(rots, rest_joints)  # (B, 16, 4, 4)
        verts = self._skin(world, rest_joints, v_posed)
        joints = torch.cat([world[:, :, :3, 3], verts[:, self.tip_vertices]], 1)[:, JOINT_ORDER]  # (B, 21, 3)
        verts, joints = self._place(verts, joints, trans)
        return verts * 1000, joints * 1000

    def root_joint(self, th_betas: Tensor) -> Tensor:
        """Rest-pose wrist joint for these shapes, metres: J_regressor[0] @ (v_template + shapedirs . betas).

        th_betas: (B, 10) -> (B, 3). The global rotation turns the hand about this point, which is what callers
        need to move MANO parameters (global rotation + trans) from one coordinate frame to another.
        """
        betas = _checked("th_betas", th_betas, (None, NUM_BETAS))
        v_shaped = self._shaped_vertices(betas.to(self.th_v_template.dtype))
        return torch.einsum("v,bvc->bc", self.th_J_regressor[0], v_shaped)

    def _check_inputs(self, pose: Tensor, betas: Tensor | None,
                      trans: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        dtype = self.th_v_template.dtype
        pose = _checked("th_pose_coeffs", pose, (None, 3 + self.ncomps)).to(dtype)
        batch = pose.shape[0]
        betas = pose.new_zeros(batch, NUM_BETAS) if betas is None else _checked("th_betas", betas, (batch, NUM_BETAS))
        if trans is not None:
            trans = _checked("th_trans", trans, (batch, 3)).to(dtype)
        return pose, betas.to(dtype), trans

    def _full_pose(self, pose: Tensor) -> Tensor:
        """(B, 3 + ncomps) -> (B, 48) axis-angle: global rotation, then hands_mean + finger pose."""
        fingers = pose[:, 3:] @ self.th_selected_comps if self.use_pca else pose[:, 3:]  # (B, 45)
        return torch.cat([pose[:, :3], self.th_hands_mean + fingers], 1)

    def _shaped_vertices(self, betas: Tensor) -> Tensor:
        """v_shaped = v_template + shapedirs . betas. betas: (B, 10) -> (B, 778, 3) metres."""
        return self.th_v_template + torch.einsum("vcs,bs->bvc", self.th_shapedirs, betas)

    def _pose_offsets(self, rots: Tensor) -> Tensor:
        """posedirs . vec(R_j - I) over the 15 non-root joints. rots: (B, 16, 3, 3) -> (B, 778, 3)."""
        eye = torch.eye(3, dtype=rots.dtype, device=rots.device)
        features = (rots[:, 1:] - eye).flatten(1)  # (B, 135), joint-major then row-major, as manopth
        return torch.einsum("vcp,bp->bvc", self.th_posedirs, features)

    def _forward_kinematics(self, rots: Tensor, joints: Tensor) -> Tensor:
        """World transform of each joint. rots: (B, 16, 3, 3), joints: (B, 16, 3) rest pose -> (B, 16, 4, 4).

        G_0 = [R_0 | J_0];  G_j = G_parent(j) [R_j | J_j - J_parent(j)]  (parents come before children)
        """
        parent_pos = torch.cat([torch.zeros_like(joints[:, :1]), joints[:, self.kintree_parents[1:]]], 1)
        local = _homogeneous(rots, joints - parent_pos)  # (B, 16, 4, 4)
        world = [local[:, 0]]
        for joint in range(1, NUM_JOINTS):
            world.append(world[self.kintree_parents[joint]] @ local[:, joint])
        return torch.stack(world, 1)

    def _skin(self, world: Tensor, joints: Tensor, v_posed: Tensor) -> Tensor:
        """Linear blend skinning. world: (B, 16, 4, 4), joints: (B, 16, 3), v_posed: (B, 778, 3) -> (B, 778, 3).

        A_k v = R_k (v - J_k) + t_k  (G_k applied to v relative to its rest joint);  v' = sum_k w_k A_k v  (LBS)
        """
        rot, shift = world[:, :, :3, :3], world[:, :, :3, 3]
        shift = shift - (rot @ joints.unsqueeze(-1)).squeeze(-1)  # t_k - R_k J_k
        blend_rot = torch.einsum("vk,bkij->bvij", self.th_weights, rot)  # (B, 778, 3, 3)
        blend_shift = torch.einsum("vk,bki->bvi", self.th_weights, shift)  # (B, 778, 3)
        return (blend_rot @ v_posed.unsqueeze(-1)).squeeze(-1) + blend_shift

    def _place(self, verts: Tensor, joints: Tensor, trans: Tensor | None) -> tuple[Tensor, Tensor]:
        """manopth's rule: centre on center_idx only when there is no (non-zero) translation; else translate."""
        if trans is None or not bool((trans != 0).any()):
            if self.center_idx is None:
                return verts, joints
            center = joints[:, self.center_idx : self.center_idx + 1]
            return verts - center, joints - center
        return verts + trans[:, None], joints + trans[:, None]


def _homogeneous(rot: Tensor, trans: Tensor) -> Tensor:
    """[R | t; 0 0 0 1]. rot: (..., 3, 3), trans: (..., 3) -> (..., 4, 4)."""
    top = torch.cat([rot, trans.unsqueeze(-1)], -1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1
    return torch.cat([top, bottom], -2)


def _checked(name: str, value: Tensor, shape: tuple[int | None, ...]) -> Tensor:
    """`value` if it is a finite float tensor of `shape` (None: any batch size); else ValueError naming it."""
    expected = "(" + ", ".join("B" if n is None else str(n) for n in shape) + ")"
    if not isinstance(value, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape {expected}, got {type(value).__name__}")
    if value.ndim != len(shape) or any(n is not None and n != got for n, got in zip(shape, value.shape, strict=True)):
        raise ValueError(f"{name}: expected shape {expected}, got {tuple(value.shape)}")
    if not value.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got {value.dtype}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return value


def _check_config(center_idx: int | None, ncomps: int, side: str, use_pca: bool, root_rot_mode: str,
                  joint_rot_mode: str) -> None:
    if root_rot_mode != "axisang" or joint_rot_mode != "axisang":
        raise NotImplementedError(f"ManoLayer implements axis-angle rotations only (root_rot_mode='axisang', "
                                  f"joint_rot_mode='axisang'); got root_rot_mode={root_rot_mode!r}, "
                                  f"joint_rot_mode={joint_rot_mode!r}")
    if side not in TIP_VERTICES:
        raise ValueError(f"side: expected 'right' or 'left', got {side!r}")
    if use_pca and not 1 <= ncomps <= NUM_PCA_COMPS:
        raise ValueError(f"ncomps: expected 1..{NUM_PCA_COMPS} with use_pca, got {ncomps}")
    if center_idx is not None and not 0 <= center_idx < NUM_OUTPUT_JOINTS:
        raise ValueError(f"center_idx: expected None or 0..{NUM_OUTPUT_JOINTS - 1}, got {center_idx}")
