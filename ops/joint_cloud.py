"""The joint hand + object point cloud the affordance classifier reads (4096 points in the paper)."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch

from ops.fps import fps_fixed, fps_fixed_batch

# Samples per batched FPS call. Measured on 2826-point unions sampled to 1024 (bench/bench_cloud_prep.py, chunk
# table): throughput is flat from 8 to 64 and falls by ~20 % at 128 and ~35 % at 256, where one call's six (B, N)
# float64 arrays (17 MiB at 128) no longer stay in cache. 32 (~4 MiB per worker) sits on the flat part and gives a
# 256-row read (classifier_data.ROW_BATCH) eight chunks to share between workers.
FPS_BATCH = 32


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
    index = fps_fixed(union, n, _start(seed, len(union)))
    return _cloud(union, len(hand), index)


def joint_clouds(hands: Sequence[np.ndarray], objects: Sequence[np.ndarray], n: int, seed: int = 0,
                 batch_size: int = FPS_BATCH, workers: int | None = None) -> list[JointCloud | ValueError]:
    """`joint_cloud` of many samples, farthest-point sampled together: entry i is equal, index for index, to
    `joint_cloud(hands[i], objects[i], n, seed)`, or is the ValueError it would raise (same text) for a bad
    sample (NaN, wrong shape, empty part), which does not stop the others.

    hands[i]: (H_i, 3), objects[i]: (M_i, 3). Samples are grouped by union size N = H_i + M_i (one size per
    dataset: MANO's 778 vertices plus the object points ingest samples), since one FPS call needs one N and the
    same start; each group runs `fps_fixed_batch` in chunks of `batch_size` samples, on `workers` threads
    (default: torch.get_num_threads(), the CPU budget the entry point gave this process).
    """
    if len(hands) != len(objects):
        raise ValueError(f"hands and objects must have the same length, got {len(hands)} and {len(objects)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    workers = torch.get_num_threads() if workers is None else workers
    for name, value in (("batch_size", batch_size), ("workers", workers)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    results: dict[int, JointCloud | ValueError] = {}
    unions: dict[int, tuple[np.ndarray, int]] = {}  # sample -> ((H + M, 3) float64 union, H)
    for i, (hand_verts, object_points) in enumerate(zip(hands, objects, strict=True)):
        try:
            hand, obj = _check_cloud("hand_verts", hand_verts), _check_cloud("object_points", object_points)
        except ValueError as exc:  # joint_cloud's error for this sample; the others go on
            results[i] = exc
            continue
        unions[i] = (np.concatenate([hand, obj]), len(hand))

    def sample(chunk: list[int]) -> list[JointCloud]:
        stacked = np.stack([unions[i][0] for i in chunk])  # (B, N, 3): one N per chunk
        index = fps_fixed_batch(stacked, n, _start(seed, stacked.shape[1]))  # (B, n)
        return [_cloud(*unions[i], row) for i, row in zip(chunk, index, strict=True)]

    chunks = _chunks(unions, batch_size)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(chunks)))) as pool:
        for chunk, clouds in zip(chunks, pool.map(sample, chunks), strict=True):
            results.update(zip(chunk, clouds, strict=True))
    return [results[i] for i in range(len(hands))]


def _chunks(unions: dict[int, tuple[np.ndarray, int]], batch_size: int) -> list[list[int]]:
    """Samples in chunks of at most `batch_size`, each chunk of one union size N, in input order within a size."""
    by_size: dict[int, list[int]] = {}
    for i, (union, _) in unions.items():
        by_size.setdefault(len(union), []).append(i)
    return [members[first:first + batch_size] for members in by_size.values()
            for first in range(0, len(members), batch_size)]


def _start(seed: int, num_points: int) -> int:
    """The FPS start drawn from `seed`: the same for every union of `num_points` points."""
    return int(np.random.default_rng(seed).integers(num_points))


def _cloud(union: np.ndarray, num_hand: int, index: np.ndarray) -> JointCloud:
    """The JointCloud of FPS indices (n,) into union (H + M, 3) float64, both parts represented."""
    index = _ensure_both(index, num_hand, len(union))
    return JointCloud(union[index].astype(np.float32), index < num_hand, index)


def _ensure_both(index: np.ndarray, num_hand: int, num_total: int) -> np.ndarray:
    """Replace the last pick with the first row of the missing part, if FPS picked only one part."""
    is_hand = index < num_hand
    if len(index) < 2 or 0 < is_hand.sum() < len(index):
        return index
    index = index.copy()
    index[-1] = num_hand if is_hand.all() else 0
    return index
