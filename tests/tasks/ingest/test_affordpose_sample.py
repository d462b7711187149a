"""An AffordPose file shaped like the official sample (GentlesJan/AffordPose, samples/data.json: a Wrap-grasp
bottle, 0.096 x 0.238 x 0.096 m, GraspIt!'s 946-vertex ManoHand touching it) ingests as one row that the
classifier, the review pictures and the affordance stage accept. With AFFORD_AFFORDPOSE_SAMPLE pointing at the
official data.json, the same checks run on it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import trimesh

from models.synthetic_hand import build_synthetic_hand, write_synthetic_mano
from ops.render import render_pair
from schemas.hand import hand_faces_for
from schemas.rows import Sample
from tasks.affordance.data import items_from_samples
from tasks.ingest.affordpose import write_affordpose
from tasks.ingest.common import GraspRecord
from tasks.ingest.pipeline import ingest
from tasks.pseudo_label.classifier_data import sample_cloud
from tasks.store.read import open_table
from tasks.synth.manohand import manohand_from_mano

SAMPLE_ENV = "AFFORD_AFFORDPOSE_SAMPLE"
BOTTLE_EXTENTS_M = (0.096, 0.238, 0.096)
GAP_M = 0.0005  # the synthetic hand's nearest vertex sits 0.5 mm off the bottle


def _bottle() -> trimesh.Trimesh:
    """A closed cylinder of the sample bottle's extents, its axis along y."""
    bottle = trimesh.creation.cylinder(radius=BOTTLE_EXTENTS_M[0] / 2, height=BOTTLE_EXTENTS_M[1], sections=48)
    bottle.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
    return bottle


def _sample_shaped_file(root: Path) -> Path:
    """bottle/3574/3574_Wrap-grasp/1.json with a 946-vertex hand whose nearest vertex is GAP_M off the bottle
    (part labels as in the sample: 5 below the shoulder, 6 above)."""
    hand = build_synthetic_hand()
    built = manohand_from_mano(hand.v_template, np.zeros(48), hand)
    bottle = _bottle()
    # Put the palm against the bottle's side (+x), then slide it until its nearest vertex is GAP_M away.
    vertices = built.vertices - built.vertices.mean(axis=0) + [0.1, 0.0, 0.0]
    outside = -trimesh.proximity.signed_distance(bottle, vertices)
    vertices = vertices - [outside.min() - GAP_M, 0.0, 0.0]
    labels = np.where(bottle.vertices[:, 1] > 0.06, 6, 5).astype(np.int8)
    record = GraspRecord(category="bottle", object_id="3574", object_vertices=bottle.vertices,
                         object_faces=bottle.faces, object_vertex_labels=labels, affordance="wrap-grasp",
                         hand_verts=vertices, hand_faces=built.faces, hand_dofs=built.dofs,
                         palm_rotation=built.palm_rotation, palm_translation=built.palm_translation)
    return write_affordpose(root, [record])[0]


def _official_sample(root: Path) -> Path:
    source = os.environ.get(SAMPLE_ENV)
    if not source:
        pytest.skip(f"{SAMPLE_ENV} is not set (path to data.json from GentlesJan/AffordPose samples/)")
    if not Path(source).is_file():
        pytest.fail(f"{SAMPLE_ENV}={source}: no such file")
    target = root / "bottle" / "3574" / "3574_Wrap-grasp" / "1.json"
    target.parent.mkdir(parents=True)
    shutil.copyfile(source, target)
    return target


@pytest.mark.parametrize("make_file", [_sample_shaped_file, _official_sample], ids=["sample-shaped", "official"])
def test_an_affordpose_file_like_the_official_sample_ingests_and_every_stage_accepts_it(tmp_path, make_file):
    datasets = tmp_path / "affordpose"
    path = make_file(datasets)
    assert json.loads(path.read_text())["afford_name"] == "Wrap-grasp"
    write_synthetic_mano(tmp_path / "mano")
    counts = ingest("affordpose", datasets, tmp_path / "tables" / "affordpose", tmp_path / "mano", num_points=512)
    assert (counts.rows, counts.rejects) == (1, 0)
    row = next(open_table(tmp_path / "tables" / "affordpose", Sample).iter_rows())

    assert row.hand_model == "graspit_manohand" and row.hand_verts.shape == (946, 3)
    assert row.hand_faces.shape == (1828, 3) and row.hand_dofs.shape == (16,) and row.hand_pose is None
    np.testing.assert_allclose(np.ptp(row.object_vertices, axis=0), BOTTLE_EXTENTS_M, atol=0.001)
    assert row.affordance == "wrap-grasp" and row.object_category == "bottle"
    bottle = trimesh.Trimesh(row.object_vertices, row.object_faces, process=False)
    nearest = np.abs(trimesh.proximity.signed_distance(bottle, row.hand_verts)).min()
    assert nearest <= 0.001, f"hand's nearest vertex is {nearest * 1000:.2f} mm from the bottle"

    cloud = sample_cloud(row, 256)  # the classifier's input
    assert cloud.shape == (256, 3) and np.isfinite(cloud).all()
    picture = render_pair(tmp_path / "review.png", row.object_vertices, row.object_faces, row.hand_verts,
                          hand_faces_for(row.hand_faces, build_synthetic_hand().f))  # as the review pictures
    assert picture.stat().st_size > 1000
    items = items_from_samples([row])  # the affordance stage's training items: one per labelled part
    assert sorted(items.affordances) and len(items.points) >= 1 and items.targets.sum() > 0
