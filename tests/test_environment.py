"""The set-up installed what the stages load at run time (system libraries included)."""

import numpy as np


def test_open3d_loads_and_samples():
    """open3d needs the system library libusb-1.0, which `make setup` installs."""
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.random.default_rng(0).normal(size=(500, 3))))
    assert len(cloud.farthest_point_down_sample(64).points) == 64


def test_trimesh_has_embree_and_rtree():
    import trimesh

    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    assert trimesh.ray.has_embree, "embreex missing: containment queries would be ~200x slower"
    assert box.contains([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]]).tolist() == [True, False]
    closest, distance, _ = trimesh.proximity.closest_point(box, [[2.0, 0.0, 0.0]])  # needs rtree
    assert np.allclose(closest[0], [0.5, 0.0, 0.0])
    assert np.isclose(distance[0], 1.5)


def test_torch_and_prefect_versions():
    import prefect
    import torch

    assert prefect.__version__.startswith("3.8."), prefect.__version__
    assert torch.__version__.startswith("2.")
