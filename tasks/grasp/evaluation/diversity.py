"""Grasp diversity: k-means over whitened hand joints, the FastGrasp / GraspTTA convention.

Source: FastGrasp `evaluation/displacement.py` (diversity) with its features built in `eval_ho3d.py`; GraspTTA
computes the same. Restated:
    features     = the 21 MANO joints in the object frame (translation included), flattened: (N, 63)
    whitened     = each feature divided by its standard deviation over the N grasps (scipy.cluster.vq.whiten;
                   a feature that never varies is left unscaled, as scipy does)
    codes        = scipy.cluster.vq.kmeans(whitened, k = 20)        (20 iterations; empty clusters are dropped)
    labels, dist = scipy.cluster.vq.vq(whitened, codes)             (nearest code and the distance to it)
    entropy      = -sum_c p_c ln p_c over the histogram of labels    (natural log: at most ln 20 = 3.00)
    cluster size = mean(dist)                                        (whitened units)
and, for reading the table, samples per cluster = N / (non-empty clusters).

With few grasps the figures say nothing: when N <= k every grasp is its own cluster, so entropy = ln N and
cluster size = 0 whatever the grasps. Below MIN_GRASPS_PER_CLUSTER x k grasps (100 for k = 20) both are
reported as n/a with the reason. k-means starts from a seeded generator, so a run is reproducible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.cluster.vq import kmeans, vq
from scipy.stats import entropy as scipy_entropy

NUM_CLUSTERS = 20
MIN_GRASPS_PER_CLUSTER = 5  # below 5 x k grasps, entropy and cluster size are n/a


class Diversity(NamedTuple):
    entropy: float | None  # nats; None when there are too few grasps (see `note`)
    cluster_size: float | None  # mean distance to the assigned code, whitened units
    samples_per_cluster: float | None
    k: int  # codes k-means returned (at most the requested k)
    note: str = ""  # why the figures are n/a, when they are


def grasp_features(joints: np.ndarray) -> np.ndarray:
    """joints: (N, 21, 3) metres, object frame -> (N, 63) float64 features."""
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (21, 3):
        raise ValueError(f"joints must be (N, 21, 3), got shape {joints.shape}")
    features = joints.reshape(len(joints), 63)
    if not np.isfinite(features).all():
        raise ValueError("joints contain NaN or inf")
    return features


def whiten(features: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D): each column divided by its standard deviation; zero-std columns are left as they are."""
    std = features.std(axis=0)
    return features / np.where(std > 0, std, 1.0)


def cluster_entropy(labels: np.ndarray, k: int) -> float:
    """Natural-log entropy of the cluster-size histogram of `labels` (N,) in [0, k)."""
    return float(scipy_entropy(np.bincount(labels, minlength=k)))


def diversity(joints: np.ndarray, k: int = NUM_CLUSTERS, seed: int = 0) -> Diversity:
    """Entropy and cluster size of N grasps. joints: (N, 21, 3) metres in the object frame; N >= 1."""
    features = grasp_features(joints)
    if len(features) == 0:
        raise ValueError("diversity needs at least one grasp, got none")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    needed = MIN_GRASPS_PER_CLUSTER * k
    if len(features) < needed:
        return Diversity(None, None, None, k, f"n/a: {len(features)} grasps, k-means with k = {k} needs at "
                                              f"least {needed} ({MIN_GRASPS_PER_CLUSTER} per cluster)")
    white = whiten(features)
    if np.all(white == white[0]):  # one distinct grasp: a single cluster with every grasp on its code
        return Diversity(0.0, 0.0, float(len(white)), 1)
    codes, _ = kmeans(white, k, rng=np.random.default_rng(seed))
    labels, distance = vq(white, codes)
    used = len(np.unique(labels))
    return Diversity(cluster_entropy(labels, len(codes)), float(distance.mean()), len(white) / used, len(codes))
