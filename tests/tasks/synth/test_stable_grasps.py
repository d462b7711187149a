"""Keeping the steadiest synthetic grasps: per part, the candidates that move the object least in the drop test,
in their original order; the drop test itself tells a hand holding the object from one that does not touch it."""

import numpy as np
import pytest

from models.mano import ManoLayer
from models.synthetic_hand import build_synthetic_hand
from tasks.synth.grasps import SynthGrasp, synthesize_grasps
from tasks.synth.objects import make_object
from tasks.synth.stable_grasps import FAILED_CM, drop_displacements, keep_most_stable


def _grasp(part: str, tag: float) -> SynthGrasp:
    """A placeholder grasp on `part`, told apart by `tag` in its translation."""
    return SynthGrasp("obj", part, "lift", np.zeros(48), np.zeros(10), np.full(3, tag), np.zeros((778, 3)))


def test_the_steadiest_per_part_are_kept_in_their_order():
    grasps = [_grasp("body", 0), _grasp("body", 1), _grasp("handle", 2), _grasp("body", 3), _grasp("handle", 4)]
    moved = np.array([5.0, 0.5, 9.0, 2.0, 1.0])
    kept = keep_most_stable(grasps, moved, per_part=1)
    assert [g.trans[0] for g in kept] == [1, 4]
    kept = keep_most_stable(grasps, moved, per_part=2)
    assert [g.trans[0] for g in kept] == [1, 2, 3, 4]  # every handle grasp stays: the part has only two
    # ties keep the earlier candidate; a failed simulation ranks last
    assert [g.trans[0] for g in keep_most_stable(grasps[:2], np.array([1.0, 1.0]), 1)] == [0]
    assert [g.trans[0] for g in keep_most_stable(grasps[:2], np.array([FAILED_CM, 10.7]), 1)] == [1]


def test_bad_arguments_are_refused_by_name():
    grasps = [_grasp("body", 0), _grasp("body", 1)]
    with pytest.raises(ValueError, match=r"displacement_cm has shape \(3,\), expected \(2,\)"):
        keep_most_stable(grasps, np.zeros(3), 1)
    with pytest.raises(ValueError, match="per_part must be >= 1, got 0"):
        keep_most_stable(grasps, np.zeros(2), 0)


@pytest.mark.slow
def test_a_grasp_holds_better_than_a_hand_that_misses_the_object(tmp_path):
    # A refined handle grasp against the same hand moved 30 cm away: the object in the far hand falls freely,
    # 10.7 cm in the 35-step drop (simulation.py's closed form), and that candidate is the one dropped.
    params = build_synthetic_hand("right")
    layer = ManoLayer(params=params, use_pca=False, flat_hand_mean=True)
    rng = np.random.default_rng(3)
    obj = make_object("mug", rng, "mug-stable")
    handle = [g for g in synthesize_grasps(obj, params, layer, per_part=4, rng=rng, steps=60)
              if g.affordance == "handle-grasp"]
    far = SynthGrasp(**{**handle[0].__dict__, "verts": handle[0].verts + np.array([0.3, 0, 0], np.float32)})
    candidates = [far, *handle]
    moved = drop_displacements(obj, candidates, np.asarray(params.f, np.int64), work_dir=tmp_path)
    assert moved.shape == (5,) and np.all(moved < FAILED_CM)
    assert moved[0] == pytest.approx(10.7, abs=0.2)
    assert moved[1:].min() < 3.0  # at least one of four handle grasps holds the mug
    kept = keep_most_stable(candidates, moved, per_part=4)
    assert len(kept) == 4 and all(k is not far for k in kept)
    assert list(tmp_path.glob("*_vhacd.obj"))  # the decomposition went where it was told
