"""Synthetic grasps touch their part and barely penetrate it (the figures the ingestion issue asks for)."""

import numpy as np
import pytest

from models.mano import ManoLayer
from models.synthetic_hand import build_synthetic_hand
from tasks.synth.grasps import STYLES, grasp_quality, hand_regions, synthesize_grasps
from tasks.synth.objects import CATEGORIES, make_object

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hand():
    params = build_synthetic_hand("right")
    return params, ManoLayer(params=params, use_pca=False, flat_hand_mean=True)


@pytest.fixture(scope="module")
def sample(hand):
    """One object of every category, one grasp per graspable part: about 30 grasps."""
    params, layer = hand
    rng = np.random.default_rng(7)
    out = []
    for category in CATEGORIES:
        obj = make_object(category, rng, f"{category}-test")
        out += [(obj, g) for g in synthesize_grasps(obj, params, layer, per_part=1, rng=rng, steps=60)]
    return out


def test_every_action_gets_grasps(sample):
    assert {g.affordance for _, g in sample} == set(STYLES)


def test_contact_and_penetration_figures(sample):
    qualities = [grasp_quality(obj, g.verts) for obj, g in sample]
    touching = np.mean([q.touches for q in qualities])
    depth = np.mean([q.penetration_depth_mm for q in qualities])
    print(f"{len(sample)} grasps: {touching:.1%} within 5 mm, mean penetration depth {depth:.2f} mm")
    assert touching >= 0.90
    assert depth < 5.0


def test_grasps_are_consistent_mano_parameters(hand, sample):
    """The stored (pose, betas, trans) reproduce the stored vertices through the MANO layer."""
    import torch

    _, layer = hand
    _obj, grasp = sample[0]
    verts = layer(torch.tensor(grasp.pose[None]), torch.tensor(grasp.betas[None]),
                  torch.tensor(grasp.trans[None]))[0][0].numpy() / 1000
    np.testing.assert_allclose(verts, grasp.verts, atol=1e-5)


def test_styles_differ_in_finger_pose(sample):
    """Finger pose (45) per action: the mean pose of each action is far from every other action's."""
    means = {}
    for _, g in sample:
        means.setdefault(g.affordance, []).append(g.pose[3:])
    centres = {a: np.mean(p, axis=0) for a, p in means.items()}
    names = sorted(centres)
    gaps = [np.linalg.norm(centres[a] - centres[b]) for i, a in enumerate(names) for b in names[i + 1:]]
    assert min(gaps) > 0.3


def test_hand_regions_are_on_the_right_side(hand):
    params, _ = hand
    regions = hand_regions(params)
    assert all(len(ids) for ids in regions.values())
    # The palm region is on the palmar (+y) side of the template.
    assert params.v_template[regions["palm"], 1].mean() > params.v_template[:, 1].mean()
