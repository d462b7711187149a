"""Farthest point sampling (FPS): a reference loop, numpy (one cloud, or a batch with the same picks), open3d and
batched torch versions.

Each step picks the point farthest (Euclidean) from those already picked; ties go to the lowest index.
Asking for n >= N points returns every point, so the result has min(n, N) indices (in FPS order for the
loop, numpy and torch versions; in index order for open3d). Indices never repeat: with duplicate points,
once every distinct point is picked the rest tie at distance 0 and go in index order. Classifier inputs
need exactly n points: `fps_fixed` pads by repeating indices.
"""

from __future__ import annotations

import numpy as np
import open3d as o3d
import torch


def _check_points(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise ValueError(f"points must be (N, 3) with N >= 1, got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("points contain NaN or inf")
    _check_counts(len(points), n, start)
    return points.astype(np.float64)


def _check_counts(num_points: int, n: int, start: int) -> None:
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= start < num_points:
        raise ValueError(f"start must be in [0, {num_points}), got {start}")


def fps_naive(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Reference loop, O(N n^2): points (N, 3) -> (min(n, N),) int64 indices, the first being `start`."""
    pts = _check_points(points, n, start).tolist()
    chosen = [start]
    while len(chosen) < min(n, len(pts)):
        best, best_dist = -1, -1.0
        for i, p in enumerate(pts):
            if i in chosen:
                continue
            dist = min(sum((p[k] - pts[j][k]) ** 2 for k in range(3)) for j in chosen)
            if dist > best_dist:
                best, best_dist = i, dist
        chosen.append(best)
    return np.array(chosen, np.int64)


def fps_numpy(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Vectorised FPS, O(N n): points (N, 3) -> (min(n, N),) int64 indices, the first being `start`."""
    pts = _check_points(points, n, start)
    # One contiguous array per axis and in-place ufuncs: about 5x faster than ((pts - p) ** 2).sum(1) on an
    # (N, 3) array, with the same sums in the same order ((dx^2 + dy^2) + dz^2), so the same picks.
    x, y, z = (np.ascontiguousarray(pts[:, axis]) for axis in range(3))
    count = min(n, len(pts))
    chosen = np.empty(count, np.int64)
    nearest = np.full(len(pts), np.inf)  # (N,) squared distance to the nearest chosen point
    dist, term = np.empty(len(pts)), np.empty(len(pts))
    chosen[0] = start
    for i in range(1, count):
        last = chosen[i - 1]
        np.subtract(x, x[last], out=dist)
        np.multiply(dist, dist, out=dist)
        for axis in (y, z):
            np.subtract(axis, axis[last], out=term)
            np.multiply(term, term, out=term)
            np.add(dist, term, out=dist)
        np.minimum(nearest, dist, out=nearest)
        nearest[last] = -1.0  # never pick a point twice, even among duplicates at distance 0
        chosen[i] = nearest.argmax()
    return chosen


def fps_fixed(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """Exactly n indices: FPS when N >= n, else all N in FPS order repeated cyclically to length n."""
    chosen = fps_numpy(points, n, start)
    return chosen[np.arange(n) % len(chosen)]


def fps_open3d(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """FPS by open3d's `farthest_point_down_sample` (CPU): points (N, 3) -> (min(n, N),) int64 indices.

    The same set as `fps_numpy` with the same start (up to ties), but in increasing index order: open3d
    returns the sampled points, not their indices, in input order. They are exact copies of input rows, so
    each is matched back by its exact coordinates; duplicate points map to distinct indices, lowest first.
    open3d collapses repeated picks, which happen once every distinct point is taken (duplicates in the
    input); the remaining picks, all at distance 0, are then the lowest unpicked indices, as in `fps_numpy`.
    """
    pts = _check_points(points, n, start)
    if n >= len(pts):
        return np.arange(len(pts), dtype=np.int64)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts))
    sampled = np.asarray(cloud.farthest_point_down_sample(n, start).points)
    chosen = _match_rows(pts, sampled)
    if len(chosen) < n:
        rest = np.setdiff1d(np.arange(len(pts)), chosen)[: n - len(chosen)]
        chosen = np.sort(np.concatenate([chosen, rest]))
    return chosen


def _match_rows(points: np.ndarray, sampled: np.ndarray) -> np.ndarray:
    """(K,) int64 rows of `points` (N, 3) equal to each row of `sampled` (K, 3); each row used at most once."""
    by_coords: dict[bytes, list[int]] = {}
    for i in range(len(points) - 1, -1, -1):  # reversed, so pop() hands out the lowest index first
        by_coords.setdefault(points[i].tobytes(), []).append(i)
    try:
        return np.array([by_coords[p.tobytes()].pop() for p in sampled], np.int64)
    except (KeyError, IndexError):
        raise RuntimeError("open3d returned a point that is not an input point") from None


def fps_torch(points: torch.Tensor, n: int, start: int = 0) -> torch.Tensor:
    """Batched FPS on the input's device: points (B, N, 3) float -> (B, min(n, N)) long, each row from `start`."""
    if points.ndim != 3 or points.shape[2] != 3 or points.shape[1] == 0:
        raise ValueError(f"points must be (B, N, 3) with N >= 1, got shape {tuple(points.shape)}")
    if not points.is_floating_point() or not torch.isfinite(points).all():
        raise ValueError("points must be a floating-point tensor without NaN or inf")
    batch, num_points, _ = points.shape
    _check_counts(num_points, n, start)
    count = min(n, num_points)
    rows = torch.arange(batch, device=points.device)
    chosen = torch.empty(batch, count, dtype=torch.long, device=points.device)
    nearest = torch.full((batch, num_points), float("inf"), dtype=points.dtype, device=points.device)
    chosen[:, 0] = start
    for i in range(1, count):
        last = points[rows, chosen[:, i - 1]]  # (B, 3)
        nearest = torch.minimum(nearest, ((points - last[:, None]) ** 2).sum(-1))
        nearest[rows, chosen[:, i - 1]] = -1.0  # never pick a point twice
        chosen[:, i] = nearest.argmax(-1)  # first maximum: ties go to the lowest index
    return chosen


def fps_fixed_batch(points: np.ndarray, n: int, start: int = 0) -> np.ndarray:
    """`fps_fixed` of B clouds at once: points (B, N, 3) -> (B, n) int64, row b equal, index for index, to
    `fps_fixed(points[b], n, start)`.

    Equal, not close: the loop is `fps_numpy`'s with a batch axis, the same float64 operations in the same order,
    ((dx^2 + dy^2) + dz^2), so picks agree even among ties. The order matters: a + (b + c) differs from
    (a + b) + c in the last bit for about a fifth of random distances, enough to swap two near-tied picks.
    numpy, not torch, though torch float64 would pick the same: on (64, 2826) float64, torch's CPU argmax along rows
    took ~700 us against numpy's ~25 us, and with 2 intra-op threads on a 2-core machine where another process held
    one core, the ~10 small steps per pick (each a fork and join of the threads) fell to ~3 samples/s against ~130
    with one thread. Single-threaded; callers run chunks on worker threads (numpy releases the GIL in each step).
    """
    pts = np.asarray(points)
    if pts.ndim != 3 or pts.shape[2] != 3 or pts.shape[1] == 0:
        raise ValueError(f"points must be (B, N, 3) with N >= 1, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or inf")
    _check_counts(pts.shape[1], n, start)
    chosen = _fps_rows(pts.astype(np.float64), min(n, pts.shape[1]), start)
    return chosen[:, np.arange(n) % chosen.shape[1]]  # cyclic padding when N < n, as fps_fixed


def _fps_rows(points: np.ndarray, count: int, start: int) -> np.ndarray:
    """(B, count) int64 FPS indices of points (B, N, 3) float64, each row from `start`: fps_numpy's loop, batched."""
    batch, num_points, _ = points.shape
    x, y, z = (np.ascontiguousarray(points[..., axis]) for axis in range(3))  # 3 x (B, N)
    row_start = np.arange(batch) * num_points  # flat offset of each row: picks are gathered from ravel()
    chosen = np.empty((batch, count), np.int64)
    nearest = np.full((batch, num_points), np.inf)  # squared distance to the nearest chosen point
    dist, term = np.empty_like(nearest), np.empty_like(nearest)
    chosen[:, 0] = start
    for i in range(1, count):
        last = row_start + chosen[:, i - 1]  # (B,) flat index of the previous pick
        np.subtract(x, x.ravel()[last][:, None], out=dist)
        np.multiply(dist, dist, out=dist)
        for axis in (y, z):  # dist = (dx^2 + dy^2) + dz^2, fps_numpy's order
            np.subtract(axis, axis.ravel()[last][:, None], out=term)
            np.multiply(term, term, out=term)
            np.add(dist, term, out=dist)
        np.minimum(nearest, dist, out=nearest)
        nearest.ravel()[last] = -1.0  # never pick a point twice, even among duplicates at distance 0
        chosen[:, i] = nearest.argmax(axis=1)  # first maximum: ties go to the lowest index
    return chosen
