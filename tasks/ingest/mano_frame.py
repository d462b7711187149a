"""Rotations and the MANO root joint: moving a hand's global rotation and translation between frames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation


# -- rotations -----------------------------------------------------------------------------------------------
def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    rotvec = np.asarray(rotvec, dtype=np.float64)
    return Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(*rotvec.shape[:-1], 3, 3)


def matrix_to_rotvec(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi]."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return Rotation.from_matrix(matrix.reshape(-1, 3, 3)).as_rotvec().reshape(*matrix.shape[:-2], 3)


def quat_wxyz_to_matrix(quat: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions, scalar first (w, x, y, z) -> (..., 3, 3). Normalised first."""
    quat = np.asarray(quat, dtype=np.float64)
    rot = Rotation.from_quat(quat.reshape(-1, 4), scalar_first=True)
    return rot.as_matrix().reshape(*quat.shape[:-1], 3, 3)


def matrix_to_quat_wxyz(matrix: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 4) unit quaternions (w, x, y, z)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return Rotation.from_matrix(matrix.reshape(-1, 3, 3)).as_quat(scalar_first=True).reshape(*matrix.shape[:-2], 4)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """(3, 3) rotation drawn uniformly from SO(3)."""
    return Rotation.random(random_state=rng).as_matrix()


# -- MANO frame changes --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HandTemplate:
    """The MANO arrays needed to place the root joint: v_template (778, 3), shapedirs (778, 3, 10),
    J_regressor (16, 778) (dense, or scipy sparse as in the MANO pickle); faces (1538, 3) optional;
    hands_components (45, 45), the finger-pose PCA basis (rows), for datasets that store PCA coefficients (GRAB)."""

    v_template: np.ndarray
    shapedirs: np.ndarray
    J_regressor: Any  # MANO pickle spelling, so a loaded MANO dict maps onto it field by field
    faces: np.ndarray | None = None
    hands_components: np.ndarray | None = None

    @classmethod
    def from_mano(cls, params: Any) -> HandTemplate:
        """From anything carrying MANO's field names as keys or attributes (a MANO pickle dict, ManoParams)."""
        def get(name: str) -> Any:
            return params.get(name) if isinstance(params, dict) else getattr(params, name, None)
        return cls(get("v_template"), get("shapedirs"), get("J_regressor"), get("f"), get("hands_components"))

    def pca_basis(self, count: int) -> np.ndarray:
        """(count, 45) the first `count` rows of hands_components; ValueError when the model has none."""
        if self.hands_components is None:
            raise ValueError("this MANO model has no hands_components (the finger-pose PCA basis)")
        return np.asarray(self.hands_components, np.float64)[:count]

    def root_joint(self, betas: np.ndarray, v_template: np.ndarray | None = None) -> np.ndarray:
        """(3,) rest-pose root joint J0 for `betas`; `v_template` overrides the template (GRAB's vtemp)."""
        template = self.v_template if v_template is None else v_template
        return root_joint(template, self.shapedirs, self.J_regressor, betas)


def root_joint(v_template: np.ndarray, shapedirs: np.ndarray, j_regressor: Any, betas: np.ndarray) -> np.ndarray:
    """J0 = J_regressor[0] @ (v_template + shapedirs @ betas).
    v_template: (778, 3); shapedirs: (778, 3, 10); j_regressor: (16, 778); betas: (10,) -> (3,)."""
    first_row = j_regressor[0]
    first_row = np.asarray(first_row.toarray() if hasattr(first_row, "toarray") else first_row, np.float64)
    shaped = np.asarray(v_template, np.float64) + np.asarray(shapedirs, np.float64) @ np.asarray(betas, np.float64)
    return first_row.reshape(-1) @ shaped


def rigid_transform_mano(pose48: np.ndarray, trans: np.ndarray, j0: np.ndarray, rotation: np.ndarray,
                         translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MANO parameters after the change of frame x' = rotation @ x + translation.

    pose48: (48,) axis-angle; trans, j0, translation: (3,); rotation: (3, 3) -> (pose48', trans').
    """
    rotation = np.asarray(rotation, np.float64)
    j0 = np.asarray(j0, np.float64)
    new_pose = np.array(pose48, dtype=np.float64, copy=True)
    new_pose[:3] = matrix_to_rotvec(rotation @ rotvec_to_matrix(new_pose[:3]))  # R_root' = R R_root
    new_trans = rotation @ (j0 + np.asarray(trans, np.float64)) + np.asarray(translation, np.float64) - j0
    return new_pose, new_trans

