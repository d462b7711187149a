"""bench_generator's arithmetic: goals marked met or not with the gap, methods pooled over datasets by grasp
count (entropy: the smallest dataset's), each requested affordance's part of the pooled displacement, training
options typed and refused by name, seconds per stage from a warm-started history."""

import pytest

from bench.bench_generator import displacement_sources, goal_lines, parse_options, pooled, stage_seconds


def _row(method, dataset, heads, n, contact, disp, entropy):
    return {"method": method, "dataset": dataset, "dam_heads": heads, "num_grasps": n, "sim_failed": 1,
            "contact_ratio_percent": contact, "sim_displacement_cm": disp, "penetration_depth_cm": 0.5,
            "penetration_volume_cm3": 2.0, "acc_percent": "n/a", "entropy": entropy, "cluster_size": 1.5}


ROWS = [_row("model", "grab", 4, 100, 80.0, 4.0, 2.9), _row("model", "oakink", 4, 300, 100.0, 2.0, 2.6),
        _row("model", "oakink", 1, 50, 10.0, 9.0, "n/a"), _row("retrieval", "grab", 0, 100, 90.0, 3.0, 2.8)]


def test_pooled_weights_by_grasps_and_keeps_the_smallest_entropy():
    model = pooled(ROWS, "model", 4)
    assert model["num_grasps"] == 400 and model["sim_failed"] == 2
    assert model["contact_ratio_percent"] == pytest.approx(95.0)  # (80 * 100 + 100 * 300) / 400
    assert model["sim_displacement_cm"] == pytest.approx(2.5)
    assert model["entropy"] == 2.6 and model["acc_percent"] == "n/a"
    assert pooled(ROWS, "tta", 0) == {}


def test_goal_lines_mark_met_and_not_met_with_the_gap():
    lines = goal_lines(pooled(ROWS, "model", 4), pooled(ROWS, "retrieval", 0))
    assert "- contact_ratio_percent >= 90.0: 95.00 (met)" in lines
    assert "- sim_displacement_cm <= 2.5: 2.50 (met)" in lines
    assert "- entropy >= 2.7: 2.60 (not met, short by 0.10)" in lines
    assert "- acc_percent >= 70.0: n/a (not measured)" in lines
    assert any(line.startswith("- better than retrieval on contact_ratio_percent") and line.endswith("(met)")
               for line in lines)
    worse = goal_lines(pooled(ROWS, "model", 1), pooled(ROWS, "retrieval", 0))
    assert "- contact_ratio_percent >= 90.0: 10.00 (not met, short by 80.00)" in worse
    assert any("retrieval on sim_displacement_cm" in line and line.endswith("(not met)") for line in worse)


def _aff(method, heads, affordance, n, disp):
    return {"method": method, "dam_heads": heads, "affordance": affordance, "num_grasps": n,
            "contact_ratio_percent": 100.0, "sim_displacement_cm": disp}


def test_displacement_sources_split_the_pooled_mean_by_affordance():
    rows = [_aff("model", 4, "handle-grasp", 60, 0.5), _aff("model", 4, "press", 40, 8.0),
            _aff("model", 1, "press", 100, 1.0), _aff("ground_truth", 0, "press", 10, 1.0),
            _aff("ground_truth", 0, "wrap-grasp", 10, 3.0), _aff("tta", 0, "lift", 5, "n/a")]
    line = displacement_sources(rows, "model", 4, 2.5)
    # press: 40 of 100 grasps at 8 cm is 3.2 cm of the pooled (60 * 0.5 + 40 * 8) / 100 = 3.5 cm, listed first
    assert "pooled 3.50 cm over 100 grasps): press 40 x 8.00 -> 3.20, handle-grasp 60 x 0.50 -> 0.30;" in line
    assert line.endswith("press alone adds 3.20 cm, over the 2.5 cm goal whatever the other grasps do")
    truth = displacement_sources(rows, "ground_truth", 0, 2.5)  # 1.5 + 0.5 = 2.0 cm: no part over the goal
    assert "of ground_truth" in truth and "pooled 2.00 cm" in truth
    assert truth.endswith("no affordance alone adds more than the 2.5 cm goal")
    assert displacement_sources(rows, "tta", 0, 2.5) == ""  # no measured displacement: no line
    assert displacement_sources(rows, "retrieval", 0, 2.5) == ""


def test_options_are_typed_and_bad_ones_refused_by_name():
    assert parse_options(["dam_steps=800", "lr=0.002", "w_cmap=1"]) == {"dam_steps": 800, "lr": 0.002, "w_cmap": 1.0}
    with pytest.raises(ValueError, match="'epochs=3': expected NAME=VALUE"):
        parse_options(["epochs=3"])
    with pytest.raises(ValueError, match=r"dam_steps takes a number \(int\), got 'many'"):
        parse_options(["dam_steps=many"])


def test_stage_seconds_restart_with_a_new_process_clock():
    own = [{"stage": "autoencoder", "elapsed_s": 5}, {"stage": "autoencoder", "elapsed_s": 10},
           {"stage": "diffusion", "elapsed_s": 40}, {"stage": "dam", "elapsed_s": 55}]
    assert stage_seconds(own) == {"autoencoder": 10.0, "diffusion": 30.0, "dam": 15.0}
    warm = [*own[:3], {"stage": "dam", "elapsed_s": 3}, {"stage": "dam", "elapsed_s": 12}]  # DAM: a new process
    assert stage_seconds(warm)["dam"] == 12.0
