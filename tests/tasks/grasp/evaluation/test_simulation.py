"""Simulation displacement: free fall matches the closed form, a supported object stays, failures are flagged."""

import numpy as np
import pytest
import trimesh

from tasks.grasp.evaluation.simulation import SimConfig, SimJob, decompose_object, simulate_grasp, simulate_many

G = 9.8
DT = 1.0 / 240.0


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    mesh = trimesh.creation.box((0.04, 0.04, 0.04))
    mesh.apply_translation((0.01, -0.02, 0.03))  # off the origin: the body must start at the centroid
    return mesh, decompose_object(mesh.vertices, mesh.faces, tmp_path_factory.mktemp("vhacd"))


def floor(top_z: float) -> trimesh.Trimesh:
    slab = trimesh.creation.box((0.3, 0.3, 0.01))
    slab.apply_translation((0.0, 0.0, top_z - 0.005))
    return slab


def test_decomposition_is_centred_on_the_volume_centroid(cube):
    _, decomposition = cube
    assert decomposition.obj_path is not None and decomposition.obj_path.stat().st_size > 0
    np.testing.assert_allclose(decomposition.centroid, [0.01, -0.02, 0.03], atol=1e-9)


def test_decomposition_is_cached_by_mesh(cube):
    mesh, decomposition = cube
    again = decompose_object(mesh.vertices, mesh.faces, decomposition.obj_path.parent)
    assert again.obj_path == decomposition.obj_path
    assert not list(decomposition.obj_path.parent.glob("*.tmp.obj"))  # written under a temporary name, renamed


@pytest.mark.parametrize("steps", [35, 240])
def test_free_fall_matches_half_g_t_squared(cube, steps):
    _, decomposition = cube
    result = simulate_grasp(decomposition, None, None, SimConfig(steps=steps))
    t = steps * DT
    # Bullet integrates semi-implicitly: after n steps the drop is g dt^2 n (n + 1) / 2 exactly, which is
    # 0.5 g t^2 plus g dt t / 2 (2.9 % at 35 steps, 0.4 % at 240).
    assert result.ok
    assert result.displacement_cm == pytest.approx(G * DT ** 2 * steps * (steps + 1) / 2 * 100, rel=1e-6)
    assert result.displacement_cm == pytest.approx(0.5 * G * t ** 2 * 100, abs=G * DT * t / 2 * 100 + 1e-6)


def test_gravity_axis_is_configurable(cube):
    _, decomposition = cube
    down_z = simulate_grasp(decomposition, None, None, SimConfig(steps=35))
    down_y = simulate_grasp(decomposition, None, None, SimConfig(steps=35, gravity_axis=(0.0, 1.0, 0.0)))
    assert down_y.displacement_cm == pytest.approx(down_z.displacement_cm, rel=1e-9)


def test_object_resting_on_a_static_hand_barely_moves(cube):
    mesh, decomposition = cube
    slab = floor(mesh.bounds[0, 2])
    result = simulate_grasp(decomposition, slab.vertices, slab.faces, SimConfig(steps=120))
    assert result.ok and result.displacement_cm < 0.3  # contact margins only; a free fall would be 14.5 cm


def test_open_object_fails_with_a_reason(tmp_path):
    mesh = trimesh.creation.box((0.04, 0.04, 0.04))
    decomposition = decompose_object(mesh.vertices, mesh.faces[:-2], tmp_path)
    result = simulate_grasp(decomposition, None, None)
    assert not result.ok and result.displacement_cm is None
    assert "watertight" in result.reason


@pytest.mark.slow
def test_pool_keeps_job_order_and_flags_failures(cube, tmp_path):
    mesh, _ = cube
    open_box = trimesh.creation.box((0.04, 0.04, 0.04))
    slab = floor(mesh.bounds[0, 2])
    objects = {"cube": (mesh.vertices, mesh.faces), "open": (open_box.vertices, open_box.faces[:-2])}
    jobs = [SimJob(slab.vertices, slab.faces, "cube"), SimJob(None, None, "cube"), SimJob(None, None, "open")]
    results = simulate_many(jobs, objects, tmp_path, SimConfig(steps=35), workers=2)
    assert results[0].ok and results[0].displacement_cm < 0.3
    assert results[1].displacement_cm == pytest.approx(G * DT ** 2 * 35 * 36 / 2 * 100, rel=1e-6)
    assert not results[2].ok and "watertight" in results[2].reason


def test_unknown_object_key_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="not given"):
        simulate_many([SimJob(None, None, "missing")], {}, tmp_path)


@pytest.mark.parametrize("field, value", [("steps", 0), ("time_step", 0.0), ("object_mass", 0.0),
                                          ("gravity_axis", (0.0, 0.0, 0.0)), ("friction", -1.0)])
def test_bad_config_is_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        SimConfig(**{field: value})
