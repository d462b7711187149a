from collections import Counter

import numpy as np
import pytest
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from schemas.affordance import AFFORDANCES, AFFORDPOSE_LABEL_IDS
from tasks.synth.objects import CATEGORIES, MAX_VERTICES, SynthObject, make_object, make_objects

# (category, part name, affordance) pairs the design asks for.
REQUIRED_PARTS = [
    ("mug", "handle", "handle-grasp"), ("mug", "body", "wrap-grasp"), ("mug", "bottom", "support"),
    ("bottle", "cap", "twist"), ("bottle", "body", "wrap-grasp"),
    ("handle-bottle", "handle", "handle-grasp"), ("handle-bottle", "body", "wrap-grasp"),
    ("handle-bottle", "cap", "twist"),
    ("jar", "lid", "twist"), ("jar", "body", "wrap-grasp"),
    ("dispenser", "pump", "press"), ("dispenser", "body", "wrap-grasp"),
    ("faucet", "lever", "lever"), ("faucet", "spout", "no_affordance"), ("faucet", "base", "no_affordance"),
    ("laptop", "lid", "lift"), ("laptop", "lid_edge", "pull"), ("laptop", "base", "support"),
    ("knife", "handle", "handle-grasp"), ("knife", "blade", "no_affordance"),
    ("scissors", "ring_left", "handle-grasp"), ("scissors", "ring_right", "handle-grasp"),
    ("scissors", "blade_left", "no_affordance"), ("scissors", "blade_right", "no_affordance"),
    ("pot", "handle_left", "lift"), ("pot", "handle_right", "lift"), ("pot", "body", "wrap-grasp"),
    ("bag", "strap_front", "lift"), ("bag", "body", "no_affordance"),
    ("keyboard", "keys", "press"), ("keyboard", "case", "support"),
    ("earphone", "headband", "lift"), ("earphone", "cup_left", "press"), ("earphone", "cup_right", "press"),
]

# Largest bounding-box extent, metres: what such an object measures in the real world.
SIZE_RANGES = {
    "bag": (0.25, 0.5), "bottle": (0.18, 0.3), "dispenser": (0.12, 0.25), "earphone": (0.15, 0.25),
    "faucet": (0.1, 0.25), "handle-bottle": (0.2, 0.32), "jar": (0.07, 0.16), "keyboard": (0.35, 0.45),
    "knife": (0.19, 0.33), "laptop": (0.3, 0.45), "mug": (0.08, 0.13), "pot": (0.2, 0.34), "scissors": (0.1, 0.18),
}
LABEL_IDS = {name: label for label, name in AFFORDPOSE_LABEL_IDS.items()}


@pytest.fixture(scope="module")
def objects() -> list[SynthObject]:
    return make_objects(2, seed=0)


def by_category(objects: list[SynthObject]) -> dict[str, SynthObject]:
    return {obj.category: obj for obj in objects}


def naive_winding_number(vertices: np.ndarray, faces: np.ndarray, point: np.ndarray) -> float:
    """Sum of the triangles' solid angles seen from `point` over 4 pi (van Oosterom & Strackee): the number
    of closed outward shells containing the point."""
    a, b, c = (vertices[faces[:, k]].astype(np.float64) - point for k in range(3))
    la, lb, lc = (np.linalg.norm(v, axis=1) for v in (a, b, c))
    numerator = np.einsum("ij,ij->i", a, np.cross(b, c))
    denominator = la * lb * lc + (a * b).sum(1) * lc + (b * c).sum(1) * la + (c * a).sum(1) * lb
    return float(2 * np.arctan2(numerator, denominator).sum() / (4 * np.pi))


def ray_hits(vertices: np.ndarray, faces: np.ndarray, origin: np.ndarray, direction: np.ndarray) -> bool:
    """Whether the ray origin + t * direction, t > 0, crosses any triangle (Moller-Trumbore, all faces at once)."""
    a, b, c = (vertices[faces[:, k]].astype(np.float64) for k in range(3))
    e1, e2 = b - a, c - a
    p = np.cross(direction, e2)
    det = (e1 * p).sum(1)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = origin - a
    u = (s * p).sum(1) * inv
    q = np.cross(s, e1)
    v = (q @ direction) * inv
    t = (e2 * q).sum(1) * inv
    return bool((ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)).any())


def components(obj: SynthObject) -> list[np.ndarray]:
    """Faces of each connected piece of the mesh (faces joined through shared vertices)."""
    f = obj.faces.astype(np.int64)
    rows = np.repeat(np.arange(len(f)), 3)
    graph = coo_matrix((np.ones(len(rows)), (rows, f.ravel())), shape=(len(f), len(obj.vertices)))
    count, vertex_component = connected_components((graph.T @ graph).tocsr(), directed=False)
    face_component = vertex_component[f[:, 0]]
    return [f[face_component == k] for k in range(count) if (face_component == k).any()]


def test_one_object_per_category_with_stable_ids(objects):
    assert [obj.category for obj in objects] == [c for c in CATEGORIES for _ in range(2)]
    assert len(CATEGORIES) == 13 and len({obj.object_id for obj in objects}) == 26
    assert objects[0].object_id == "bag-000" and objects[1].object_id == "bag-001"


def test_required_part_affordances(objects):
    table = {(obj.category, part.name): part.affordance for obj in objects for part in obj.parts}
    for category, name, affordance in REQUIRED_PARTS:
        assert table.get((category, name)) == affordance, (category, name)


def test_every_action_occurs(objects):
    seen = {a for obj in objects for a in obj.affordances()}
    assert set(AFFORDANCES[1:]) <= seen


def test_arrays_and_vertex_budget(objects):
    for obj in objects:
        assert obj.vertices.dtype == np.float32 and obj.vertices.shape[1] == 3
        assert obj.faces.dtype == np.int32 and obj.faces.shape[1] == 3
        assert obj.vertex_labels.dtype == np.int8 and obj.vertex_labels.shape == (len(obj.vertices),)
        assert len(obj.vertices) <= MAX_VERTICES, obj.object_id


def test_every_edge_has_two_faces_with_opposite_directions(objects):
    for obj in objects:
        f = obj.faces.astype(np.int64)
        directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        assert len({tuple(e) for e in directed.tolist()}) == len(directed), obj.object_id  # each directed once
        undirected = Counter(tuple(sorted(e)) for e in directed.tolist())
        assert set(undirected.values()) == {2}, obj.object_id
        mesh = trimesh.Trimesh(obj.vertices, obj.faces, process=False)
        assert mesh.is_watertight and mesh.is_winding_consistent


def test_each_shell_has_positive_volume_and_one_label(objects):
    for obj in objects:
        for faces in components(obj):
            a, b, c = (obj.vertices[faces[:, k]].astype(np.float64) for k in range(3))
            assert np.einsum("ij,ij->", a, np.cross(b, c)) / 6 > 0, obj.object_id
            assert len(np.unique(obj.vertex_labels[faces])) == 1, obj.object_id


def test_labels_follow_parts(objects):
    for obj in objects:
        for part in obj.parts:
            assert part.label_id == LABEL_IDS[part.affordance]
        assert set(np.unique(obj.vertex_labels).tolist()) == {p.label_id for p in obj.parts}, obj.object_id


def test_volume_centroid_at_origin(objects):
    for obj in objects:
        f, v = obj.faces.astype(np.int64), obj.vertices.astype(np.float64)
        centroid, volume = np.zeros(3), 0.0
        for i, j, k in f:  # naive: tetrahedra (origin, a, b, c)
            tet = np.dot(v[i], np.cross(v[j], v[k])) / 6
            centroid += tet * (v[i] + v[j] + v[k]) / 4
            volume += tet
        assert np.abs(centroid / volume).max() < 1e-6, obj.object_id


def test_realistic_sizes(objects):
    for obj in objects:
        low, high = SIZE_RANGES[obj.category]
        extent = float(np.ptp(obj.vertices, axis=0).max())
        assert low <= extent <= high, (obj.object_id, extent)
    mug = by_category(objects)["mug"]
    assert 0.08 <= np.ptp(mug.vertices[:, 2]) <= 0.115  # z is up


def test_part_frames_are_unit_and_orthogonal(objects):
    for obj in objects:
        for part in obj.parts:
            assert np.linalg.norm(part.axis) == pytest.approx(1) and np.linalg.norm(part.approach) == pytest.approx(1)
            assert abs(np.dot(part.axis, part.approach)) < 1e-9, (obj.object_id, part.name)
            assert part.radius > 0 and part.length > 0


def test_approach_leaves_the_object(objects):
    for obj in objects:
        for part in obj.parts:
            beyond = part.centre + part.approach * (part.radius + 0.01)
            assert abs(naive_winding_number(obj.vertices, obj.faces, beyond)) < 1e-3, (obj.object_id, part.name)


def test_approach_line_is_clear(objects):
    # A hand coming in along -approach from far away reaches the part without passing through the object.
    for obj in objects:
        for part in obj.parts:
            beyond = part.centre + part.approach * (part.radius + 0.002)
            assert not ray_hits(obj.vertices, obj.faces, beyond, part.approach), (obj.object_id, part.name)


def test_ray_check_sees_the_object():
    mug = make_object("mug", np.random.default_rng(0), "m")
    handle = mug.part("handle-grasp")
    assert ray_hits(mug.vertices, mug.faces, handle.centre + 0.03 * handle.approach, -handle.approach)


def test_surface_lies_radius_along_approach(objects):
    for obj in objects:
        mesh = trimesh.Trimesh(obj.vertices, obj.faces, process=False)
        tips = np.stack([p.centre + p.approach * p.radius for p in obj.parts])
        _, distance, _ = trimesh.proximity.closest_point(mesh, tips)
        assert distance.max() < 1.5e-3, (obj.object_id, distance)


def test_winding_number_check_sees_inside():
    # Guards the check above: a point inside a solid part must count as inside.
    bottle = make_object("bottle", np.random.default_rng(0), "b")
    body = bottle.part("wrap-grasp")
    assert naive_winding_number(bottle.vertices, bottle.faces, body.centre) == pytest.approx(1, abs=1e-6)


def test_deterministic_for_a_seed():
    first, again, other = make_objects(1, seed=5), make_objects(1, seed=5), make_objects(1, seed=6)
    for a, b, c in zip(first, again, other, strict=True):
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.vertex_labels, b.vertex_labels)
        assert not np.array_equal(a.vertices, c.vertices)
    # An object does not depend on how many others are made alongside it.
    np.testing.assert_array_equal(make_objects(2, seed=5)[0].vertices, first[0].vertices)


def test_part_lookup(objects):
    jar = by_category(objects)["jar"]
    assert jar.part("twist").name == "lid" and jar.affordances() == ["wrap-grasp", "twist"]
    with pytest.raises(ValueError, match="lever"):
        jar.part("lever")


def test_unknown_category_is_named():
    with pytest.raises(ValueError, match=r"'teapot'.*mug"):
        make_object("teapot", np.random.default_rng(0), "x")
    with pytest.raises(ValueError, match="per_category"):
        make_objects(0, seed=0)
