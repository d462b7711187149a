"""Grasp diversity: k-means over whitened hand features (GraspTTA / FastGrasp convention).

Features per grasp: the 21 joints (63 values) and the translation (3), metres. Each feature is divided by its
standard deviation over the grasps (scipy's `whiten`; a feature that never varies is left unscaled instead of
dividing by 0). k-means with k = 20 clusters; then
    entropy      = -sum_c p_c ln p_c,  p_c = n_c / N      (natural log, scipy.stats.entropy: at most ln 20 = 3.00)
    cluster size = mean over grasps of the distance to their cluster centre, in whitened units
                   (what GraspTTA and FastGrasp report as "cluster size": np.mean of vq's distances)
and, for reading the table, samples per cluster = N / (non-empty clusters).
With fewer than k distinct feature rows, k drops to that count (k-means cannot place more distinct centres
than there are distinct points): identical grasps give one cluster, entropy 0 and cluster size 0.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.stats import entropy as scipy_entropy
from sklearn.cluster import KMeans

NUM_CLUSTERS = 20


class Diversity(NamedTuple):
    entropy: float  # nats
    cluster_size: float  # mean distance to the assigned centre, whitened units
    samples_per_cluster: float
    k: int  # clusters used: min(requested k, distinct grasps)


def grasp_features(joints: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """joints: (N, 21, 3) metres, trans: (N, 3) metres -> (N, 66) float64 features [joints | trans]."""
    joints = np.asarray(joints, dtype=np.float64)
    trans = np.asarray(trans, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (21, 3):
        raise ValueError(f"joints must be (N, 21, 3), got shape {joints.shape}")
    if trans.shape != (len(joints), 3):
        raise ValueError(f"trans must be ({len(joints)}, 3) to match joints, got shape {trans.shape}")
    features = np.concatenate([joints.reshape(len(joints), 63), trans], axis=1)
    if not np.isfinite(features).all():
        raise ValueError("joints or trans contain NaN or inf")
    return features


def whiten(features: np.ndarray) -> np.ndarray:
    """(N, D) -> (N, D): each column divided by its standard deviation; zero-std columns are left as they are."""
    std = features.std(axis=0)
    return features / np.where(std > 0, std, 1.0)


def cluster_entropy(labels: np.ndarray, k: int) -> float:
    """Natural-log entropy of the cluster-size histogram of `labels` (N,) in [0, k)."""
    return float(scipy_entropy(np.bincount(labels, minlength=k)))


def diversity(joints: np.ndarray, trans: np.ndarray, k: int = NUM_CLUSTERS, seed: int = 0) -> Diversity:
    """Entropy and cluster size of N grasps. joints: (N, 21, 3), trans: (N, 3), metres; N >= 1."""
    features = grasp_features(joints, trans)
    if len(features) == 0:
        raise ValueError("diversity needs at least one grasp, got none")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    white = whiten(features)
    k = min(k, len(np.unique(white, axis=0)))
    if k == 1:  # one distinct grasp: a single cluster with every grasp on its centre
        return Diversity(0.0, 0.0, float(len(white)), 1)
    model = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(white)
    distance = np.linalg.norm(white - model.cluster_centers_[model.labels_], axis=1)  # (N,)
    used = len(np.unique(model.labels_))
    return Diversity(cluster_entropy(model.labels_, k), float(distance.mean()), len(white) / used, k)
