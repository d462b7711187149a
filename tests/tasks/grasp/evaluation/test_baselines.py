"""The Table 9 baselines: retrieval (training grasps of the same class and affordance, from other objects, placed
unchanged in the new object's frame) and ground truth (the object's own grasps); objects without a candidate are
left out by name; the table gains a Method column."""

import numpy as np
import pytest
import trimesh

from tasks.grasp.data import mano_layer
from tasks.grasp.evaluation.baselines import baseline_grasps, candidates, grasp_pool
from tasks.grasp.evaluation.inputs import EvalObject
from tasks.grasp.evaluation.report import GroupMetrics, render_table9
from tests.grasp_factories import annotated_rows

CLASSES = ("mug", "bottle")


@pytest.fixture(scope="module")
def rows():
    """24 MANO rows: 2 classes x 3 affordances x 4 objects; object 3 of each class is the test split."""
    base = annotated_rows(n=24, affordpose=0, other_split=0)
    out = []
    for i, row in enumerate(base):
        cls, obj = CLASSES[i % 2], (i // 2) % 4
        out.append(row.model_copy(update={
            "object_class": cls, "object_id": f"{cls}{obj}", "affordance": ("lift", "twist", "wrap-grasp")[i % 3],
            "split": "test" if obj == 3 else "train"}))
    return out


def key(trans: np.ndarray) -> tuple[float, ...]:
    """A translation as exact float32 values: what identifies the pool grasp a placed grasp came from."""
    return tuple(np.asarray(trans, np.float32).tolist())


def eval_object(row) -> EvalObject:
    mesh = trimesh.creation.icosphere(subdivisions=1, radius=0.04)
    return EvalObject(row.sample_id, row.dataset, row.object_id, row.instruction, row.affordance,
                      np.asarray(row.object_points, np.float32), np.asarray(row.affordance_map, np.float32),
                      np.asarray(mesh.vertices), np.asarray(mesh.faces), row.object_class)


def test_retrieval_places_training_grasps_of_the_same_class_and_affordance(rows):
    pool = grasp_pool(rows)
    objects = [eval_object(r) for r in rows if r.split == "test"]
    mano, _ = mano_layer()
    made, left_out = baseline_grasps(objects, pool, "retrieval", mano, k=3, seed=0)
    assert not left_out and len(made) == 3 * len(objects)
    by_trans = {key(g.mano[-3:]): g for g in pool}
    for grasp, obj in zip(made, [o for o in objects for _ in range(3)], strict=True):  # k per object, in order
        source = by_trans[key(grasp.trans)]  # the pool grasp it was placed from
        assert (source.object_class, source.affordance) == (obj.object_class, obj.affordance)
        assert source.split == "train" and source.object_id != obj.object_id
        assert grasp.method == "retrieval" and grasp.requested_affordance == obj.affordance
        assert grasp.hand_verts.shape == (778, 3) and grasp.joints.shape == (21, 3)
        assert np.array_equal(grasp.object_vertices, obj.object_vertices)  # placed on the new object


def test_ground_truth_is_the_objects_own_grasps_and_draws_are_seeded(rows):
    pool = grasp_pool(rows)
    obj = eval_object(next(r for r in rows if r.split == "test"))
    own = candidates(pool, obj, "ground_truth")
    assert own and all(g.object_id == obj.object_id and g.affordance == obj.affordance for g in own)
    mano, _ = mano_layer()
    first, _ = baseline_grasps([obj], pool, "ground_truth", mano, k=4, seed=7)
    again, _ = baseline_grasps([obj], pool, "ground_truth", mano, k=4, seed=7)
    assert [g.trans.tolist() for g in first] == [g.trans.tolist() for g in again]
    assert {key(g.trans) for g in first} <= {key(g.mano[-3:]) for g in own}


def test_an_object_without_candidates_is_left_out_by_name(rows):
    pool = grasp_pool(rows)
    kettle = eval_object(rows[0].model_copy(update={"object_class": "kettle", "object_id": "kettle0"}))
    mano, _ = mano_layer()
    made, left_out = baseline_grasps([kettle], pool, "retrieval", mano, k=2)
    assert made == [] and "no training grasps of class 'kettle' with affordance 'lift'" in left_out["oakink/kettle0"]
    with pytest.raises(ValueError, match="baseline 'nearest' is not one of retrieval, ground_truth"):
        candidates(pool, kettle, "nearest")


def test_rows_without_mano_parameters_are_not_in_the_pool():
    rows = annotated_rows(n=2, affordpose=2, other_split=0)
    assert {g.sample_id for g in grasp_pool(rows)} == {r.sample_id for r in rows if r.hand_pose is not None}


def group(method: str, heads: int, contact: float) -> GroupMetrics:
    return GroupMetrics(dataset="oakink", dam_heads=heads, num_grasps=8, penetration_volume_cm3=1.0,
                        penetration_depth_cm=0.1, sim_displacement_cm=2.0, sim_displacement_std_cm=0.5, sim_failed=0,
                        contact_ratio_percent=contact, entropy=None, cluster_size=None, acc_percent=None,
                        method=method)


def test_table9_has_a_method_column_with_the_model_first():
    table = render_table9([group("ground_truth", 0, 100.0), group("retrieval", 0, 50.0), group("model", 2, 75.0)])
    lines = table.splitlines()
    assert lines[0].startswith("| Dataset | Method | DAM heads | Grasps |")
    assert [line.split(" | ")[1:3] for line in lines[2:]] == [["model", "2"], ["retrieval", "-"], ["ground truth", "-"]]
    assert "**100.0**" in lines[4]  # the best contact ratio of the dataset is bold, whoever has it
    assert "Method" not in render_table9([group("model", 2, 75.0)])  # the model alone: the layout as before
