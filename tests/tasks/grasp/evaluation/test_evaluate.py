"""evaluate_grasps end to end on hand-placed MANO grasps with known contact, fall and classifier answers."""

import numpy as np
import pytest
import torch
import trimesh
from matplotlib.image import imread

from models.mano import ManoLayer
from models.synthetic_hand import build_synthetic_hand
from schemas.affordance import AFFORDANCES, affordance_index
from tasks.grasp.evaluation.evaluate import GeneratedGrasp, evaluate_grasps, grid_items
from tasks.grasp.evaluation.report import render_grasp_grid
from tasks.grasp.evaluation.simulation import SimConfig

FREE_FALL_CM = 9.8 / 240 ** 2 * 35 * 36 / 2 * 100  # 35 Bullet steps of semi-implicit Euler


@pytest.fixture(scope="module")
def hand():
    params = build_synthetic_hand("right")
    layer = ManoLayer(params=params, use_pca=False)
    verts, joints = (t[0].double().numpy() / 1000 for t in layer(torch.zeros(1, 48)))
    return verts, joints, layer.th_faces.numpy()


def placed(hand, obj: trimesh.Trimesh, gap_m: float, dataset: str, heads: int, affordance: str,
           object_id: str) -> GeneratedGrasp:
    """The flat hand moved so its lowest-x vertex is gap_m beyond the object's +x side."""
    verts, joints, faces = hand
    shift = np.array([obj.bounds[1, 0] + gap_m, 0.0, 0.0]) - verts[verts[:, 0].argmin()]
    return GeneratedGrasp(object_id, verts + shift, faces, joints + shift, shift, obj.vertices, obj.faces,
                          affordance, dataset, heads)


def side_classifier(points: np.ndarray) -> np.ndarray:
    """'lift' when the joint cloud's centroid is beyond x = 10 cm (network units: / 0.15 m), i.e. the hand is far
    from the object, else 'press'."""
    logits = np.zeros((len(points), len(AFFORDANCES)))
    far = points[:, :, 0].mean(1) > 0.1 / 0.15
    logits[far, affordance_index("lift")] = 1.0
    logits[~far, affordance_index("press")] = 1.0
    return logits


@pytest.fixture(scope="module")
def grasps(hand):
    cube, ball = trimesh.creation.box((0.04, 0.04, 0.04)), trimesh.creation.icosphere(2, 0.025)
    out = [placed(hand, cube, 0.002 * i, "OakInk", 1, "press", "cube") for i in range(3)]  # touching
    out += [placed(hand, ball, 0.001, "OakInk", 2, "press", "ball") for _ in range(2)]  # touching, identical
    out += [placed(hand, cube, 0.2 + 0.01 * i, "GRAB", 4, "lift", "cube") for i in range(4)]  # far away
    return out


@pytest.fixture(scope="module")
def report(grasps):
    return evaluate_grasps(grasps, side_classifier, classifier_points=256, sim_config=SimConfig(), workers=1)


def test_one_row_per_dataset_and_heads(report):
    assert [(g.dataset, g.dam_heads, g.num_grasps) for g in report.groups] == [("OakInk", 1, 3), ("OakInk", 2, 2),
                                                                                 ("GRAB", 4, 4)]
    assert len(report.scores) == 9


def test_known_answers(report):
    touching, identical, far = report.groups
    assert touching.contact_ratio_percent == 100.0 and far.contact_ratio_percent == 0.0
    assert far.penetration_volume_cm3 == 0.0 and far.penetration_depth_cm == 0.0
    # A hand 20 cm away does not touch the object: it falls freely, the same distance every time.
    assert far.sim_displacement_cm == pytest.approx(FREE_FALL_CM, rel=1e-6) and far.sim_failed == 0
    assert far.sim_displacement_std_cm == pytest.approx(0.0, abs=1e-9)
    # Two and four grasps are far below 5 x 20: diversity is not scored, and the row says why.
    assert identical.entropy is None and identical.cluster_size is None
    assert "needs at least 100" in identical.diversity_note
    assert touching.acc_percent == 100.0 and far.acc_percent == 100.0
    # Both contact conventions: touching hands are within 5 mm; only penetrating ones have a volume > 0.
    assert far.contact_ratio_volume_percent == 0.0 and touching.filled_penetration_volume_cm3 is not None
    assert touching.contact_ratio_volume_percent == pytest.approx(
        100.0 * np.mean([s.penetration_volume_cm3 > 0 for s in report.scores[:3]]))


def test_markdown_and_grid(report, grasps, tmp_path):
    lines = report.markdown.splitlines()
    assert len(lines) == 2 + 3 and lines[2].startswith("| OakInk | 1 | 3 |") and lines[4].startswith("| GRAB | 4 |")
    items = grid_items(grasps, report.scores)
    assert items[-1].caption == f"lift -> lift, {FREE_FALL_CM:.1f} cm"
    path = render_grasp_grid(tmp_path / "grid.png", items, per_object=2, panel_px=80)
    assert imread(path).shape[:2] == (160, 320)  # 2 objects x 2 grasps x 2 views
    assert report.grasps_per_second > 0 and {"penetration_contact", "simulation", "accuracy"} <= report.seconds.keys()


def test_failed_simulation_is_counted_not_scored(hand):
    cube = trimesh.creation.box((0.04, 0.04, 0.04))
    open_box = trimesh.Trimesh(cube.vertices, cube.faces[:-2], process=False)  # V-HACD needs a closed volume
    grasps = [placed(hand, cube, 0.3, "GRAB", 1, "lift", "cube"),
              placed(hand, open_box, 0.3, "GRAB", 1, "lift", "open")]
    report = evaluate_grasps(grasps, workers=1)
    assert [s.sim.ok for s in report.scores] == [True, False] and "watertight" in report.scores[1].sim.reason
    (group,) = report.groups
    # GraspTTA's convention: a simulation that could not run counts as 10 cm; the runs-only mean sits beside it.
    assert group.sim_failed == 1 and group.sim_displacement_cm == pytest.approx((FREE_FALL_CM + 10.0) / 2, rel=1e-6)
    assert group.sim_displacement_ran_cm == pytest.approx(FREE_FALL_CM, rel=1e-6)
    assert "(1 failed)" in report.markdown and group.acc_percent is None


@pytest.mark.slow
def test_process_pool_gives_the_same_scores(grasps, report):
    pooled = evaluate_grasps(grasps, side_classifier, classifier_points=256, workers=2)
    assert pooled.scores == report.scores and pooled.groups == report.groups


def test_bad_grasp_is_named(grasps):
    bad = grasps[0].__class__(**{**grasps[0].__dict__, "hand_verts": np.zeros((10, 3))})
    with pytest.raises(ValueError, match=r"grasp 1 \(object cube\): hand_verts must be \(778, 3\)"):
        evaluate_grasps([grasps[0], bad], workers=1)
    with pytest.raises(ValueError, match="at least one grasp"):
        evaluate_grasps([], workers=1)


def test_per_affordance_rows_pool_datasets(report, grasps):
    """metrics.json's by_affordance: one row per (method, heads, requested affordance) with its contact ratio and
    mean displacement; here press (touching, 5 grasps over two head counts) and lift (far away, free fall)."""
    from tasks.grasp.evaluation.summary import by_affordance

    rows = by_affordance(grasps, report)
    assert [(r["method"], r["dam_heads"], r["affordance"], r["num_grasps"]) for r in rows] == [
        ("model", 1, "press", 3), ("model", 2, "press", 2), ("model", 4, "lift", 4)]
    assert rows[0]["contact_ratio_percent"] == 100.0 and rows[2]["contact_ratio_percent"] == 0.0
    assert rows[2]["sim_displacement_cm"] == pytest.approx(FREE_FALL_CM, rel=1e-6)
    expected = np.mean([report.scores[i].sim.displacement_cm for i in range(3)])
    assert rows[0]["sim_displacement_cm"] == pytest.approx(expected)
