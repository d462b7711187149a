"""Inference speed rows (one-pass sampler and the test-time-optimisation baseline) are finite and positive, and the
baseline's refinement lowers the contact + penetration objective of a hand pushed into the object."""

import math

import numpy as np
import pytest

from models.grasp_losses import estimate_normals
from tasks.grasp.evaluation.report import render_table5
from tasks.grasp.evaluation.speed import refine_grasps, speed_rows
from tasks.grasp.sample import load_grasp_generator, sample_grasps
from tests.grasp_factories import annotated_rows, fake_embed, single_thread, sphere_points
from tests.tasks.grasp.evaluation.test_inputs import train_tiny


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    return load_grasp_generator(train_tiny(annotated_rows(n=6), tmp_path_factory.mktemp("g") / "m", heads=1), "cpu")


@pytest.fixture(scope="module")
def target():
    points = sphere_points(64, 0.04, np.random.default_rng(0))
    return points, (points[:, 2] > 0).astype(np.float32), fake_embed(["Grip the mug"])[0]


def test_speed_rows_are_finite_positive_and_render_as_table5(generator, target):
    rows = speed_rows(generator, *target, batch_size=4, tto_steps=5, repeats=1)
    assert [r.method for r in rows] == ["Test-time optimisation (5 Adam steps)", "Ours (one pass)"]
    for row in rows:
        assert math.isfinite(row.single_s) and row.single_s > 0
        assert math.isfinite(row.batched_s) and row.batched_s > 0 and row.batch_size == 4
    table = render_table5(rows)
    assert "| Single (s / grasp) |" in table and "| Batched, 4 (s / grasp) |" in table


def test_tto_lowers_contact_and_penetration_of_a_penetrating_hand(generator, target):
    points, values, text = target
    mano = sample_grasps(generator, points, values, text, 2, seed=0).mano
    verts = sample_grasps(generator, points, values, text, 2, seed=0).verts
    mano[:, -3:] -= verts.mean(1)  # move each hand's centre onto the object's centre: deep penetration
    refined = refine_grasps(generator, mano, points, values, steps=30, lr=2e-3, normals=estimate_normals(points))
    assert len(refined.losses) == 31 and refined.losses[0] > 0
    assert refined.losses[-1] < 0.8 * refined.losses[0]
    assert refined.mano.shape == (2, 61) and np.isfinite(refined.mano).all()
    assert np.array_equal(refine_grasps(generator, mano, points, values, steps=0).mano, mano)


@pytest.mark.parametrize("kwargs,message", [({"batch_size": 0}, "batch_size"), ({"tto_steps": 0}, "tto_steps")])
def test_speed_rows_refuse_bad_sizes(generator, target, kwargs, message):
    with pytest.raises(ValueError, match=message):
        speed_rows(generator, *target, **kwargs)
