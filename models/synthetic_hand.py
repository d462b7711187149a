"""A procedurally built hand saved in the MANO pickle format, standing in for the licensed MANO_RIGHT.pkl.

It has MANO's fields, shapes, joint order and fingertip vertex ids, so code written for the real MANO runs on it.

Template frame of the RIGHT hand (metres, right-handed axes):
    +x  from the wrist toward the fingertips; the wrist (root) joint J0 is at ROOT_JOINT_M, about where the real
        MANO_RIGHT.pkl has it ((95.7, 6.4, 6.2) mm for zero betas), so code that forgets MANO's rotation about J0
        (OakInk's tsl, HO-3D's frame change, a center_idx) fails its tests here as it would on the real model
    +y  the palm normal: the palm faces +y, the back of the hand faces -y
    +z  the radial (thumb) side; the pinky is on the -z side
With +x forward and +y up, +z points to the right: the thumb is on the right of an upturned palm, as on a right
hand. The left hand is the mirror image across the x = 0 plane (its fingers point along -x).

Flexion: rotating non-root joint k (MANO order 1..15) by a positive angle about FLEXION_AXES[k - 1] curls that
joint toward the palm. For a finger the axis is finger_direction x (+y), close to +z; for the thumb it is
perpendicular to the thumb and to its pad, which faces the index finger and the palm. MANO's local joint frames
are the template's axes, so these vectors are also the axis-angle directions of the pose.

Mesh: a palm tube (rings of vertices from the wrist to the knuckles) whose last ring is the four finger base
rings joined by three web quads; a thumb tube leaves a hole on the palm's radial side; every digit is a tube of
10-vertex rings closed by a 5-vertex ring and an apex. One open loop of 16 edges is left at the wrist, so
faces = 2 * 778 - 2 - 16 = 1538, as in MANO. Vertex budget: palm sections 16 + 34 + 5 * 40 - 2 (the thumb
hole's middle) = 248; each finger 10 (knuckle ring) + 9 rings * 10 + 5 + 1 = 106; thumb 10 rings * 10 + 5 + 1
= 106 (its base ring belongs to the palm): 248 + 4 * 106 + 106 = 778.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from models.mano_pickle import MODEL_FILES, ManoParams, save_mano_pickle
from models.synthetic_hand_mesh import _build_mesh, _with_tip_ids
from models.synthetic_hand_pose import mirror_pose
from models.synthetic_hand_rig import (
    _joint_regressor,
    _kintree_table,
    _orthonormal_rows,
    _pose_correctives,
    _relaxed_pose,
    _shape_directions,
    _skinning_weights,
    _synergies,
)
from models.synthetic_hand_spec import FLEXION_AXES, OPPOSITION_AXIS, PARENTS, SIDES

ROOT_JOINT_M = np.array([0.0957, 0.0064, 0.0062])  # J0 of the real right MANO model at zero betas, metres
ROOT_SHIFT_PER_BETA0 = 0.02  # J0 = ROOT_JOINT_M * (1 + 0.02 betas[0]) (the rest of J0 does not move with shape)

"""(15, 3) float64 unit axes, template frame: +angle about row k-1 curls MANO joint k toward the palm."""
FLEXION_AXES.setflags(write=False)

"""(3,) unit axis of thumb opposition at the CMC joint: swings the thumb in front of the palm, toward the fingers."""
OPPOSITION_AXIS.setflags(write=False)


# ---- pose helpers ---------------------------------------------------------------------------------------------


# ---- mesh building --------------------------------------------------------------------------------------------


# ---- skinning, joint regressor, blend shapes ------------------------------------------------------------------


# ---- the model ------------------------------------------------------------------------------------------------


def build_synthetic_hand(side: str = "right") -> ManoParams:
    """The generated hand as MANO parameters (deterministic): template in metres, frame in the module doc."""
    if side not in SIDES:
        raise ValueError(f"side: expected one of {SIDES}, got {side!r}")
    mesh = _with_tip_ids(_build_mesh())
    weights = _skinning_weights(mesh)
    # The mesh is built around a wrist at the origin; the model is moved so J0 sits where MANO's does, and the
    # first shape direction also scales that offset (J0 moves ROOT_SHIFT_PER_BETA0 of it per unit betas[0]), so
    # J0 depends on the shape as in MANO.
    shapedirs = _shape_directions(mesh)
    shapedirs[:, :, 0] += ROOT_SHIFT_PER_BETA0 * ROOT_JOINT_M
    right = ManoParams(v_template=mesh.vertices + ROOT_JOINT_M, f=mesh.faces, J_regressor=_joint_regressor(mesh),
                       weights=weights, kintree_table=_kintree_table(), shapedirs=shapedirs,
                       posedirs=_pose_correctives(mesh, weights),
                       hands_components=_orthonormal_rows(_synergies(), complete_to=45), hands_mean=_relaxed_pose())
    return right if side == "right" else mirror_hand(right)


def mirror_hand(params: ManoParams) -> ManoParams:
    """The mirror image of a hand model across the x = 0 plane (right <-> left).

    Positions and shape directions negate x; faces reverse their winding so normals still point outward;
    axis-angle poses map (x, y, z) -> (x, -y, -z). A pose feature (R - I)[r, c] of the mirrored hand equals
    m_r m_c (R - I)[r, c] of this one (R' = M R M, M = diag(-1, 1, 1)), so posedirs columns whose entry mixes
    x with y or z change sign as well.
    """
    flip = np.array([-1.0, 1.0, 1.0])
    feature_sign = np.tile(np.outer(flip, flip).reshape(9), len(PARENTS) - 1)
    return ManoParams(v_template=params.v_template * flip, f=params.f[:, ::-1], J_regressor=params.J_regressor,
                      weights=params.weights, kintree_table=params.kintree_table,
                      shapedirs=params.shapedirs * flip[None, :, None],
                      posedirs=params.posedirs * flip[None, :, None] * feature_sign[None, None, :],
                      hands_components=mirror_pose(params.hands_components), hands_mean=mirror_pose(params.hands_mean))


def write_synthetic_mano(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write MANO_RIGHT.pkl and MANO_LEFT.pkl (its mirror image) into `folder`, creating it if needed.

    Returns {'right': path, 'left': path}. Each file is replaced atomically (see `save_mano_pickle`).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    right = build_synthetic_hand("right")
    paths = {}
    for side, params in (("right", right), ("left", mirror_hand(right))):
        paths[side] = folder / MODEL_FILES[side]
        save_mano_pickle(paths[side], params)
    return paths
