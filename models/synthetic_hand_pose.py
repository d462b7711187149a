"""Finger poses of the generated hand: curling the digits about their flexion axes, opposing the thumb, and
mirroring a pose to the other hand."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from models.synthetic_hand_spec import DIGITS, FLEXION_AXES, OPPOSITION_AXIS, SIDES


def curl_pose(finger_curl: dict[str, float] | float, thumb_opposition: float = 0.0, side: str = "right") -> np.ndarray:
    """Axis-angle finger pose (45,) float64: MANO joints 1..15, three values each, template frame.

    finger_curl: radians of flexion at every joint, the same for all five digits (a float), or per digit
        ({'index': 0.8, 'thumb': (0.1, 0.3, 0.5)}: a float for each joint of that digit, or one per joint from
        base to tip); digits not named stay straight. 1.0 on every joint makes a fist.
    thumb_opposition: radians of rotation about OPPOSITION_AXIS at the thumb's CMC joint, applied after the
        thumb's own CMC flexion; about 1.0 with {'index': 0.7, 'thumb': 0.2} makes a tip pinch.
    side: 'left' returns the mirror image of the right-hand pose, for the left model.
    """
    if side not in SIDES:
        raise ValueError(f"side: expected one of {SIDES}, got {side!r}")
    if not np.isfinite(thumb_opposition):
        raise ValueError(f"thumb_opposition: expected a finite angle, got {thumb_opposition}")
    rotvecs = FLEXION_AXES * _curl_table(finger_curl).reshape(15, 1)
    if thumb_opposition:
        cmc = Rotation.from_rotvec(OPPOSITION_AXIS * thumb_opposition) * Rotation.from_rotvec(rotvecs[12])
        rotvecs[12] = cmc.as_rotvec()
    pose = rotvecs.reshape(45)
    return mirror_pose(pose) if side == "left" else pose


def _curl_table(finger_curl: dict[str, float] | float) -> np.ndarray:
    """(5, 3) radians per joint, rows in DIGITS order."""
    if isinstance(finger_curl, dict):
        unknown = sorted(set(finger_curl) - set(DIGITS))
        if unknown:
            raise ValueError(f"finger_curl: unknown digits {unknown}; expected names from {DIGITS}")
        table = np.zeros((5, 3))
        for name, value in finger_curl.items():
            table[DIGITS.index(name)] = _joint_angles(name, value)
    else:
        table = np.full((5, 3), _joint_angles("all", finger_curl))
    return table


def _joint_angles(name: str, value: object) -> np.ndarray:
    """(3,) radians for one digit's joints, base to tip, from one angle or three."""
    try:
        angles = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        angles = np.full(2, np.nan)  # reported below
    if angles.shape not in ((), (3,)) or not np.isfinite(angles).all():
        raise ValueError(f"finger_curl[{name!r}]: expected a finite angle or three, got {value!r}")
    return np.broadcast_to(angles, (3,))


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """Axis-angle pose (..., 3k) mirrored across the x = 0 plane: each (x, y, z) becomes (x, -y, -z).

    Rotations are pseudo-vectors: reflecting by M = diag(-1, 1, 1) maps an axis-angle w to det(M) M w.
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1] % 3:
        raise ValueError(f"pose: expected a last dimension divisible by 3, got shape {pose.shape}")
    return (pose.reshape(*pose.shape[:-1], -1, 3) * np.array([1.0, -1.0, -1.0])).reshape(pose.shape)

