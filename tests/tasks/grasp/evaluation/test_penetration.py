"""Penetration volume and depth against boxes with known overlaps."""

import numpy as np
import pytest
import trimesh

from tasks.grasp.evaluation.contact import object_mesh, vertex_distances
from tasks.grasp.evaluation.penetration import (
    GraspGeometry,
    ObjectGrasps,
    object_geometry,
    object_voxel_centres,
    penetration,
    penetration_depth,
    penetration_volume,
)

PITCH = 0.005


def box(size, centre=(0.0, 0.0, 0.0)) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(size)
    mesh.apply_translation(centre)
    return mesh


@pytest.fixture(scope="module")
def cube():
    """A 4 cm cube at the origin and its filled 5 mm voxel centres (on multiples of the pitch: 9 per axis)."""
    obj = box((0.04, 0.04, 0.04))
    return obj, object_voxel_centres(obj, PITCH, filled=True)


def published_intersect_volume(obj_mesh: trimesh.Trimesh, hand_mesh: trimesh.Trimesh, pitch: float) -> float:
    """The published arithmetic, restated: GraspTTA `gen_diverse_grasp_ho3d.py` and FastGrasp
    `evaluation/mano_train/netscripts/intersect.py` (intersect_vox) voxelise the object with trimesh at `pitch`,
    take the voxel points as they come (no fill), count those inside the hand mesh and multiply by pitch^3 (m^3)."""
    points = obj_mesh.voxelized(pitch=pitch).points
    return float(hand_mesh.contains(points).sum() * pitch ** 3)


def test_voxel_centres_lie_on_the_pitch_lattice(cube):
    obj, filled = cube
    surface = object_voxel_centres(obj, PITCH)
    assert len(filled) == 9 ** 3 and len(surface) == 9 ** 3 - 7 ** 3  # the shell only, as published
    for centres in (filled, surface):
        np.testing.assert_allclose(centres / PITCH, np.round(centres / PITCH), atol=1e-9)


def test_box_in_box_volume_and_depth(cube):
    obj, centres = cube
    # "Hand" box x in [0.75, 4.75] cm, y and z in [-1.25, 1.25] cm: faces half a pitch off the lattice, so no
    # voxel centre sits on its surface. Overlap with the cube: 1.25 x 2.5 x 2.5 = 7.8125 cm^3.
    hand = box((0.04, 0.025, 0.025), (0.0275, 0.0, 0.0))
    result = penetration(hand, hand.vertices, obj, filled_centres=centres)
    # Published convention: only the cube's surface voxels count, here its x = 2 cm face: 5 x 5 voxels.
    assert result.volume_cm3 == pytest.approx(25 * 0.125) == pytest.approx(3.125)
    assert result.volume_cm3 == pytest.approx(published_intersect_volume(obj, hand, PITCH) * 1e6)
    # Filled lattice count: x in {1.0, 1.5, 2.0} cm, y and z in {-1, -0.5, 0, 0.5, 1} cm -> 75 voxels x 0.125 cm^3.
    assert result.filled_volume_cm3 == pytest.approx(75 * 0.125)
    # Voxel tolerance: surface voxels count as filled, at most half a voxel layer over the overlap's faces.
    assert abs(result.filled_volume_cm3 - 7.8125) <= 0.5 * PITCH * 100 * (2 * 2.5 * 2.5 + 4 * 1.25 * 2.5) + 1e-9
    # Hand corners inside the cube at (0.75, +-1.25, +-1.25) cm: nearest cube face is 2 - 1.25 = 0.75 cm away.
    assert result.depth_cm == pytest.approx(0.75)


@pytest.mark.parametrize("offset", [0.0, 0.0013, 0.0071])
def test_default_volume_equals_the_published_arithmetic(offset):
    # A sphere-ish object and a box hand at a few offsets: the default column is the published figure exactly.
    obj = trimesh.creation.icosphere(subdivisions=3, radius=0.03)
    hand = box((0.03, 0.04, 0.05), (0.025 + offset, 0.004, -offset))
    result = penetration(hand, hand.vertices, obj)
    assert result.volume_cm3 == pytest.approx(published_intersect_volume(obj, hand, PITCH) * 1e6)
    assert result.volume_cm3 > 0 and result.filled_volume_cm3 > result.volume_cm3


def test_inside_only_drops_centres_outside_a_thin_wall():
    # A 3 mm wall, z in [1.5, 4.5] mm, between the lattice planes z = 0 and 5 mm: the filled voxels are the two
    # planes' 9 x 9 centres (x, y in [-2, 2] cm, inside the 4.25 cm square), and none of them lies in the wall.
    wall = box((0.0425, 0.0425, 0.003), (0.0, 0.0, 0.003))
    assert len(object_voxel_centres(wall, PITCH, filled=True)) == 2 * 81
    assert len(object_voxel_centres(wall, PITCH, filled=True, inside_only=True)) == 0


def test_hand_enclosing_the_object_takes_every_voxel(cube):
    _, centres = cube
    hand = box((0.1, 0.1, 0.1))
    assert penetration_volume(hand, centres, PITCH) == pytest.approx(len(centres) * PITCH ** 3 * 1e6)


def test_separate_boxes_do_not_penetrate(cube):
    obj, centres = cube
    hand = box((0.02, 0.02, 0.02), (0.1, 0.0, 0.0))
    assert penetration(hand, hand.vertices, obj, filled_centres=centres) == (0.0, 0.0, 0.0)


def test_depth_is_largest_inside_distance():
    obj = object_mesh(*(lambda m: (m.vertices, m.faces))(box((0.04, 0.04, 0.04))))
    points = np.array([[0.0, 0.0, 0.0], [0.015, 0.0, 0.0], [0.05, 0.0, 0.0]])  # 2 cm deep, 0.5 cm deep, outside
    distances = vertex_distances(points, obj)
    np.testing.assert_array_equal(distances.inside, [True, True, False])
    assert penetration_depth(distances) == pytest.approx(2.0)


def test_voxel_centres_are_computed_when_not_given(cube):
    obj, centres = cube
    hand = box((0.04, 0.025, 0.025), (0.0275, 0.0, 0.0))
    assert penetration(hand, hand.vertices, obj) == penetration(hand, hand.vertices, obj, filled_centres=centres)


def test_object_geometry_scores_every_grasp_of_an_object(cube):
    obj, _ = cube
    overlapping = box((0.04, 0.025, 0.025), (0.0275, 0.0, 0.0))
    apart = box((0.02, 0.02, 0.02), (0.04, 0.0, 0.0))  # 1 cm gap to the cube's +x face
    task = ObjectGrasps(obj.vertices, obj.faces, [(m.vertices, m.faces) for m in (overlapping, apart)], PITCH)
    near, far = object_geometry(task)
    assert near == GraspGeometry(pytest.approx(25 * 0.125), pytest.approx(0.75), 0.0, pytest.approx(75 * 0.125))
    assert far == GraspGeometry(0.0, 0.0, pytest.approx(0.01), 0.0)


def test_bad_inputs_are_rejected(cube):
    obj, _ = cube
    with pytest.raises(ValueError, match="pitch"):
        object_voxel_centres(obj, 0.0)
    with pytest.raises(ValueError, match="object is empty"):
        object_mesh(np.zeros((0, 3)), np.zeros((0, 3), int))
    with pytest.raises(ValueError, match="voxel_centres"):
        penetration_volume(obj, np.zeros((4, 2)))
