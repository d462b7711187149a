"""Table 9 / Table 5 Markdown and the grasp grid PNG."""

import numpy as np
import pytest
import trimesh
from matplotlib.image import imread

from tasks.grasp.evaluation.report import (
    GridGrasp,
    GroupMetrics,
    SpeedRow,
    render_grasp_grid,
    render_table5,
    render_table9,
    table9_notes,
)


def group(dataset: str, heads: int, volume: float, sim: float | None = 1.5, failed: int = 0,
          acc: float | None = 80.0) -> GroupMetrics:
    return GroupMetrics(dataset=dataset, dam_heads=heads, num_grasps=40, penetration_volume_cm3=volume,
                        penetration_depth_cm=0.4, sim_displacement_cm=sim,
                        sim_displacement_std_cm=None if sim is None else 0.5, sim_failed=failed,
                        contact_ratio_percent=97.5, entropy=2.8 + heads / 100, cluster_size=3.9, acc_percent=acc)


def test_table9_rows_order_and_bold_best():
    groups = [group("OakInk", 2, 5.3), group("GRAB", 4, 5.0), group("OakInk", 1, 6.7), group("OakInk", 4, 4.99),
              group("GRAB", 1, 5.4, sim=None, failed=40, acc=None)]
    lines = render_table9(groups).splitlines()
    assert lines[0].startswith("| Dataset | DAM heads | Grasps | Penetration volume (cm³, surface voxels) ↓")
    assert "Simulation displacement (cm, failed = 10) ↓" in lines[0] and "| ACC (%) ↑ |" in lines[0]
    assert lines[0].endswith("| Displacement, simulations that ran (cm) ↓ |")
    body = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]
    assert [(row[0], row[1]) for row in body] == [("OakInk", "1"), ("", "2"), ("", "4"), ("GRAB", "1"), ("", "4")]
    assert body[2][3] == "**4.99**" and body[0][3] == "6.70"  # smallest volume in bold, per dataset
    assert body[2][7] == "**2.84**"  # largest entropy in bold
    assert body[0][5] == "1.50 ± 0.50"
    assert body[3][5] == "n/a (40 failed)" and body[3][9] == "n/a"
    assert body[4][5] == "1.50 ± 0.50" and body[4][9] == "80.0"  # one value only: nothing to compare, no bold
    assert body[3][3] == "5.40" and body[4][3] == "**5.00**"
    assert body[0][10:] == ["n/a", "n/a", "n/a"]  # the other conventions' columns, when not measured


def test_table9_notes_say_why_a_cell_is_missing():
    groups = [GroupMetrics(**{**group("GRAB", 1, 5.0, failed=2).__dict__, "entropy": None, "cluster_size": None,
                              "diversity_note": "n/a: 40 grasps, k-means with k = 20 needs at least 100"})]
    notes = table9_notes(groups)
    assert "GRAB, 1 head(s): diversity n/a: 40 grasps" in notes and "2 simulation(s) failed" in notes
    assert render_table9(groups).splitlines()[2].split("|")[8].strip() == "n/a"


def test_table5_layout():
    text = render_table5([SpeedRow("TTA", 7.09, 1.2, 16), SpeedRow("Ours", 0.45, 0.031, 16)])
    assert text.splitlines() == ["| Method | TTA | Ours |", "|---|---|---|",
                                 "| Single (s / grasp) | 7.09s | 0.45s |",
                                 "| Batched, 16 (s / grasp) | 1.2s | 0.031s |"]


def test_empty_tables_are_rejected():
    with pytest.raises(ValueError, match="at least one group"):
        render_table9([])
    with pytest.raises(ValueError, match="at least one method"):
        render_table5([])


def test_grid_has_a_row_per_object_and_two_views_per_grasp(tmp_path):
    cube, ball = trimesh.creation.box((0.04, 0.04, 0.04)), trimesh.creation.icosphere(1, 0.02)
    hand = trimesh.creation.box((0.01, 0.05, 0.08))
    hand.apply_translation((0.03, 0.0, 0.0))
    grasps = [GridGrasp(name, mesh.vertices, mesh.faces, hand.vertices + np.array([0, 0, 0.01 * i]), hand.faces,
                        f"{name} {i}") for name, mesh in (("cube", cube), ("ball", ball)) for i in range(4)]
    path = render_grasp_grid(tmp_path / "grid.png", grasps, per_object=3, panel_px=100)
    image = imread(path)
    assert image.shape[:2] == (200, 600)  # 2 objects x (3 grasps x 2 views) panels of 100 px
    assert np.ptp(image[..., :3]) > 0.2  # something was drawn


def test_grid_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="at least one grasp"):
        render_grasp_grid(tmp_path / "g.png", [])
    cube = trimesh.creation.box((0.04, 0.04, 0.04))
    with pytest.raises(ValueError, match="per_object"):
        render_grasp_grid(tmp_path / "g.png", [GridGrasp("c", cube.vertices, cube.faces, cube.vertices, cube.faces)],
                          per_object=0)
