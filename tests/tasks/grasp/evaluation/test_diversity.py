"""Diversity: identical grasps give entropy 0; well-separated groups give ln(groups); scipy conventions."""

import numpy as np
import pytest
from scipy.cluster.vq import whiten as scipy_whiten
from scipy.stats import entropy

from tasks.grasp.evaluation.diversity import cluster_entropy, diversity, grasp_features, whiten


def grasps(centres: np.ndarray, per_group: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """per_group grasps around each of the (G, 66) centres: joints (N, 21, 3) and trans (N, 3)."""
    rng = np.random.default_rng(seed)
    features = np.repeat(centres, per_group, axis=0) + rng.normal(scale=spread, size=(len(centres) * per_group, 66))
    return features[:, :63].reshape(-1, 21, 3), features[:, 63:]


def test_identical_grasps_have_zero_entropy():
    joints, trans = grasps(np.ones((1, 66)), per_group=30, spread=0.0)
    result = diversity(joints, trans)
    assert result == (0.0, 0.0, 30.0, 1)


def test_twenty_separated_groups_fill_twenty_clusters_evenly():
    centres = np.random.default_rng(1).normal(scale=1.0, size=(20, 66))
    joints, trans = grasps(centres, per_group=5, spread=1e-3)
    result = diversity(joints, trans)
    assert result.k == 20
    assert result.entropy == pytest.approx(np.log(20))
    assert result.samples_per_cluster == pytest.approx(5.0)
    assert result.cluster_size < 0.05  # whitened units: the groups' own spread, far below their separation


def test_fewer_distinct_grasps_than_k_uses_one_cluster_each():
    joints, trans = grasps(np.random.default_rng(2).normal(size=(7, 66)), per_group=1, spread=0.0)
    result = diversity(joints, trans)
    assert result.k == 7 and result.entropy == pytest.approx(np.log(7)) and result.cluster_size == pytest.approx(0)


def test_cluster_size_is_mean_distance_to_centre():
    # Two groups of two, mirrored: each grasp lies half the pair's distance from its centre.
    centres = np.zeros((2, 66))
    centres[1, 0] = 100.0
    joints, trans = grasps(centres, per_group=2, spread=0.0)
    joints[1, 0, 1] = joints[3, 0, 1] = 1.0  # second grasp of each group differs in one feature
    features = whiten(grasp_features(joints, trans))
    result = diversity(joints, trans, k=2)
    half_gap = abs(features[0, 1] - features[1, 1]) / 2
    assert result.cluster_size == pytest.approx(half_gap)
    assert result.entropy == pytest.approx(np.log(2))


def test_whiten_matches_scipy_and_leaves_constant_columns():
    features = np.random.default_rng(3).normal(size=(40, 5)) * [1, 2, 3, 4, 5]
    np.testing.assert_allclose(whiten(features), scipy_whiten(features))
    features[:, 2] = 7.0
    assert np.all(whiten(features)[:, 2] == 7.0)


def test_entropy_is_scipy_natural_log():
    labels = np.array([0, 0, 1, 2, 2, 2])
    assert cluster_entropy(labels, 4) == pytest.approx(entropy([2, 1, 3, 0]))


@pytest.mark.parametrize("joints, trans, match", [
    (np.zeros((3, 20, 3)), np.zeros((3, 3)), "joints must be"),
    (np.zeros((3, 21, 3)), np.zeros((2, 3)), "trans must be"),
    (np.full((3, 21, 3), np.nan), np.zeros((3, 3)), "NaN"),
    (np.zeros((0, 21, 3)), np.zeros((0, 3)), "at least one"),
])
def test_bad_inputs_are_rejected(joints, trans, match):
    with pytest.raises(ValueError, match=match):
        diversity(joints, trans)
