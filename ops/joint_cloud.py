"""The joint hand + object point cloud the affordance classifier reads (4096 points in the paper)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ops.fps import fps_fixed


class JointCloud(NamedTuple):
    """points: (n, 3) float32, object frame, metres; is_hand: (n,) bool, True where a point is a hand vertex;
    source_index: (n,) int64, row of [hand_verts; object_points] each point came from (hand rows first)."""

    points: np.ndarray
    is_hand: np.ndarray
    source_index: np.ndarray


def _check_cloud(name: str, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"{name} must be (N, 3), got shape {points.shape}")
    if len(points) == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(points).all():
        raise ValueError(f"{name} contains NaN or inf")
    return points.astype(np.float64)


def joint_cloud(hand_verts: np.ndarray, object_points: np.ndarray, n: int, seed: int = 0) -> JointCloud:
    """Farthest-point-sample exactly `n` points of hand and object together, flagging hand points.

    hand_verts: (H, 3), object_points: (M, 3), both already in one frame (the object frame, metres).
    FPS starts at a point drawn from `seed`; when H + M < n, all points are kept and indices repeat
    cyclically to fill n. Both parts are always represented when n >= 2: if FPS picked only one part (which
    happens only for small n), the last pick is replaced by the missing part's first row.
    """
    hand = _check_cloud("hand_verts", hand_verts)
    obj = _check_cloud("object_points", object_points)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    union = np.concatenate([hand, obj])
    start = int(np.random.default_rng(seed).integers(len(union)))
    index = fps_fixed(union, n, start)
    index = _ensure_both(index, len(hand), len(union))
    return JointCloud(union[index].astype(np.float32), index < len(hand), index)


def _ensure_both(index: np.ndarray, num_hand: int, num_total: int) -> np.ndarray:
    """Replace the last pick with the first row of the missing part, if FPS picked only one part."""
    is_hand = index < num_hand
    if len(index) < 2 or 0 < is_hand.sum() < len(index):
        return index
    index = index.copy()
    index[-1] = num_hand if is_hand.all() else 0
    return index
