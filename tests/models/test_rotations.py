"""models/rotations.py, with models.mano.axis_angle_to_matrix, against scipy's Rotation (an independent code)."""

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from models.mano import axis_angle_to_matrix
from models.rotations import matrix_to_axis_angle, rotation_6d_to_matrix


def test_axis_angle_and_matrix_agree_with_scipy_including_angles_near_pi():
    rotations = Rotation.concatenate([Rotation.random(500, random_state=0),
                                      Rotation.from_rotvec([[0, 0, np.pi - 1e-6], [np.pi, 0, 0], [0, 1e-7, 0]])])
    vectors = torch.tensor(rotations.as_rotvec(), dtype=torch.float64)
    matrices = torch.tensor(rotations.as_matrix(), dtype=torch.float64)
    np.testing.assert_allclose(axis_angle_to_matrix(vectors).numpy(), matrices.numpy(), atol=1e-12)
    back = matrix_to_axis_angle(matrices)
    # the same rotation (a vector of angle pi may come back as its negative, which is the same rotation)
    np.testing.assert_allclose(axis_angle_to_matrix(back).numpy(), matrices.numpy(), atol=1e-9)
    assert float(back.norm(dim=-1).max()) <= np.pi + 1e-9


def test_6d_gives_a_rotation_whose_first_columns_follow_the_two_vectors():
    six = torch.randn(64, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    matrix = rotation_6d_to_matrix(six)
    eye = torch.eye(3, dtype=torch.float64).expand(64, 3, 3)
    np.testing.assert_allclose((matrix.transpose(1, 2) @ matrix).numpy(), eye.numpy(), atol=1e-12)
    np.testing.assert_allclose(torch.linalg.det(matrix).numpy(), np.ones(64), atol=1e-12)
    first = six[:, :3] / six[:, :3].norm(dim=-1, keepdim=True)
    np.testing.assert_allclose(matrix[..., 0].numpy(), first.numpy(), atol=1e-12)
    # the same two columns as 6 values give the matrix back
    np.testing.assert_allclose(rotation_6d_to_matrix(torch.cat([matrix[..., 0], matrix[..., 1]], -1)).numpy(),
                               matrix.numpy(), atol=1e-12)
