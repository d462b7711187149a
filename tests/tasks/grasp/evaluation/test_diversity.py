"""Diversity: the published arithmetic (FastGrasp `evaluation/displacement.py`), n/a below 5 x k grasps."""

import numpy as np
import pytest
import scipy.cluster.vq
from scipy.stats import entropy

from tasks.grasp.evaluation.diversity import (
    MIN_GRASPS_PER_CLUSTER,
    NUM_CLUSTERS,
    cluster_entropy,
    diversity,
    grasp_features,
    whiten,
)


def published_diversity(params: np.ndarray, cls_num: int, rng: np.random.Generator) -> tuple[float, float]:
    """FastGrasp's `diversity(params_list, cls_num=20)`, restated: whiten with scipy, scipy k-means with cls_num
    codes, assign every row to its nearest code with vq, histogram the assignments into len(codes) bins, and
    return (scipy entropy of the counts, mean distance to the assigned code). Its features (eval_ho3d.py) are the
    21 MANO joints plus the translation, i.e. the joints in the object frame, flattened to 63 values."""
    white = scipy.cluster.vq.whiten(params)
    codes, _ = scipy.cluster.vq.kmeans(white, cls_num, rng=rng)
    assigned, dist = scipy.cluster.vq.vq(white, codes)
    counts, _ = np.histogram(assigned, len(codes))
    return float(entropy(counts)), float(np.mean(dist))


def structured_grasps(groups: int, per_group: int, spread: float, seed: int = 0) -> np.ndarray:
    """(groups * per_group, 21, 3) joints: a hand-like skeleton placed around `groups` random centres."""
    rng = np.random.default_rng(seed)
    skeleton = rng.normal(scale=0.03, size=(21, 3))
    centres = rng.normal(scale=0.05, size=(groups, 1, 3))
    joints = skeleton[None] + np.repeat(centres, per_group, axis=0)
    return joints + rng.normal(scale=spread, size=joints.shape)


def test_matches_the_published_arithmetic_on_200_grasps():
    joints = structured_grasps(groups=20, per_group=10, spread=0.004)
    ours = diversity(joints, seed=3)
    reference = published_diversity(joints.reshape(len(joints), 63), NUM_CLUSTERS, np.random.default_rng(3))
    assert ours.entropy == pytest.approx(reference[0], rel=0.01)
    assert ours.cluster_size == pytest.approx(reference[1], rel=0.01)
    # Another k-means start on well-separated groups lands on the same partition.
    other = published_diversity(joints.reshape(len(joints), 63), NUM_CLUSTERS, np.random.default_rng(11))
    assert ours.entropy == pytest.approx(other[0], rel=0.01)


def test_features_are_the_63_joint_values():
    joints = structured_grasps(groups=1, per_group=3, spread=0.01)
    np.testing.assert_array_equal(grasp_features(joints), joints.reshape(3, 63))


def test_too_few_grasps_are_not_scored():
    # 19 grasps, each its own cluster, would score ln 19 whatever they are: the figure is refused, with why.
    needed = MIN_GRASPS_PER_CLUSTER * NUM_CLUSTERS
    result = diversity(structured_grasps(groups=19, per_group=1, spread=0.0))
    assert result.entropy is None and result.cluster_size is None
    assert "19 grasps" in result.note and str(needed) in result.note
    assert diversity(structured_grasps(groups=1, per_group=needed - 1, spread=0.01)).entropy is None
    assert diversity(structured_grasps(groups=1, per_group=needed, spread=0.01)).entropy is not None


def test_identical_grasps_have_zero_entropy():
    result = diversity(structured_grasps(groups=1, per_group=120, spread=0.0))
    assert result[:4] == (0.0, 0.0, 120.0, 1)


def test_near_identical_and_spread_grasps_differ():
    tight = diversity(structured_grasps(groups=1, per_group=200, spread=1e-6), seed=0)
    spread = diversity(structured_grasps(groups=20, per_group=10, spread=0.004), seed=0)
    # k-means from random starts may merge two of the 20 groups (a local optimum, as published): close to ln 20.
    assert np.log(16) < spread.entropy <= np.log(20)
    # Whitening scales the tight blob up to unit variance, so its grasps sit far from any of 20 codes, while the
    # 20 groups sit close to theirs: cluster size reads the spread *within* clusters, in whitened units.
    assert spread.cluster_size < tight.cluster_size


def test_whiten_matches_scipy_and_leaves_constant_columns():
    features = np.random.default_rng(3).normal(size=(40, 5)) * [1, 2, 3, 4, 5]
    np.testing.assert_allclose(whiten(features), scipy.cluster.vq.whiten(features))
    features[:, 2] = 7.0
    assert np.all(whiten(features)[:, 2] == 7.0)


def test_entropy_is_scipy_natural_log():
    labels = np.array([0, 0, 1, 2, 2, 2])
    assert cluster_entropy(labels, 4) == pytest.approx(entropy([2, 1, 3, 0]))


@pytest.mark.parametrize("joints, match", [
    (np.zeros((3, 20, 3)), "joints must be"),
    (np.full((3, 21, 3), np.nan), "NaN"),
    (np.zeros((0, 21, 3)), "at least one"),
])
def test_bad_inputs_are_rejected(joints, match):
    with pytest.raises(ValueError, match=match):
        diversity(joints)
