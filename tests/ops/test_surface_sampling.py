import numpy as np
import pytest
from scipy.stats import chisquare

from ops.surface_sampling import face_areas, sample_surface

# Two disjoint triangles, areas 0.5 and 4.5 (ratio 1 : 9).
PAIR_VERTICES = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 0, 1], [8, 0, 1], [5, 3, 1]], np.float64)
PAIR_FACES = np.array([[0, 1, 2], [3, 4, 5]])


def random_mesh(rng: np.random.Generator, num_vertices: int = 30, num_faces: int = 40):
    vertices = rng.normal(size=(num_vertices, 3))
    faces = np.stack([rng.choice(num_vertices, 3, replace=False) for _ in range(num_faces)])
    return vertices, faces


def naive_barycentric(point: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, float]:
    """Barycentric weights of the point's projection on the triangle's plane, and its distance to that plane."""
    basis = np.column_stack([b - a, c - a])
    (u, v), *_ = np.linalg.lstsq(basis, point - a, rcond=None)
    projection = a + basis @ np.array([u, v])
    return np.array([1 - u - v, u, v]), float(np.linalg.norm(point - projection))


def test_points_lie_on_their_faces():
    vertices, faces = random_mesh(np.random.default_rng(0))
    sample = sample_surface(vertices, faces, 500, np.random.default_rng(1))
    assert sample.points.shape == (500, 3) and sample.points.dtype == np.float32
    assert sample.face_index.dtype == np.int64 and sample.labels is None
    for point, face in zip(sample.points.astype(np.float64), sample.face_index, strict=True):
        weights, distance = naive_barycentric(point, *vertices[faces[face]])
        assert distance < 1e-5
        assert weights.min() > -1e-5 and weights.max() < 1 + 1e-5


def test_face_frequencies_follow_area():
    counts = np.bincount(sample_surface(PAIR_VERTICES, PAIR_FACES, 20000, np.random.default_rng(2)).face_index,
                         minlength=2)
    assert chisquare(counts, 20000 * np.array([0.1, 0.9])).pvalue > 1e-3
    assert abs(counts[0] / 20000 - 0.1) < 0.01


def test_face_frequencies_follow_area_on_many_faces():
    vertices, faces = random_mesh(np.random.default_rng(3))
    areas = face_areas(vertices, faces)
    counts = np.bincount(sample_surface(vertices, faces, 40000, np.random.default_rng(4)).face_index,
                         minlength=len(faces))
    assert chisquare(counts, 40000 * areas / areas.sum()).pvalue > 1e-3


def test_face_areas_match_heron():
    vertices, faces = random_mesh(np.random.default_rng(5), num_faces=5)
    for face, area in zip(faces, face_areas(vertices, faces), strict=True):
        sides = [np.linalg.norm(vertices[face[i]] - vertices[face[(i + 1) % 3]]) for i in range(3)]
        s = sum(sides) / 2
        assert area == pytest.approx(np.sqrt(s * np.prod([s - x for x in sides])), rel=1e-6)


def test_points_uniform_inside_a_triangle():
    # Midpoint subdivision cuts a triangle into four of equal area: each must get a quarter of the points.
    sample = sample_surface(PAIR_VERTICES[:3], PAIR_FACES[:1], 20000, np.random.default_rng(6))
    x, y = sample.points[:, 0], sample.points[:, 1]
    quarter = np.select([x > 0.5, y > 0.5, x + y < 0.5], [0, 1, 2], default=3)
    assert chisquare(np.bincount(quarter, minlength=4)).pvalue > 1e-3


def test_labels_match_a_naive_loop():
    rng = np.random.default_rng(7)
    vertices, faces = random_mesh(rng)
    vertex_labels = rng.integers(0, 10, len(vertices)).astype(np.int8)
    sample = sample_surface(vertices, faces, 400, np.random.default_rng(8), vertex_labels)
    assert sample.labels.dtype == np.int8
    checked = 0
    for point, face, label in zip(sample.points.astype(np.float64), sample.face_index, sample.labels, strict=True):
        weights, _ = naive_barycentric(point, *vertices[faces[face]])
        top = np.sort(weights)
        if top[2] - top[1] < 1e-4:  # float32 points: too close to call
            continue
        assert label == vertex_labels[faces[face][weights.argmax()]]
        checked += 1
    assert checked > 390


def test_deterministic_for_a_seed():
    vertices, faces = random_mesh(np.random.default_rng(9))
    first = sample_surface(vertices, faces, 50, np.random.default_rng(10))
    again = sample_surface(vertices, faces, 50, np.random.default_rng(10))
    np.testing.assert_array_equal(first.points, again.points)
    np.testing.assert_array_equal(first.face_index, again.face_index)


@pytest.mark.parametrize(
    ("vertices", "faces", "n", "message"),
    [
        (np.zeros((0, 3)), np.zeros((0, 3), int), 5, "vertices"),
        (PAIR_VERTICES, np.zeros((0, 3), int), 5, "faces"),
        (PAIR_VERTICES, np.array([[0, 1, 6]]), 5, "faces index"),
        (PAIR_VERTICES, np.array([[0, 1, -1]]), 5, "faces index"),
        (PAIR_VERTICES, PAIR_FACES.astype(float), 5, "integer"),
        (np.array([[0, 0, 0], [1, 1, 1], [2, 2, 2.0]]), np.array([[0, 1, 2]]), 5, "zero total area"),
        (np.where(np.arange(18).reshape(6, 3) == 4, np.nan, PAIR_VERTICES), PAIR_FACES, 5, "NaN"),
        (PAIR_VERTICES[:, :2], PAIR_FACES, 5, "vertices"),
        (PAIR_VERTICES, PAIR_FACES, 0, "n must be"),
    ],
)
def test_rejects_bad_input(vertices, faces, n, message):
    with pytest.raises(ValueError, match=message):
        sample_surface(vertices, faces, n, np.random.default_rng(0))


def test_rejects_labels_of_the_wrong_length():
    with pytest.raises(ValueError, match="vertex_labels"):
        sample_surface(PAIR_VERTICES, PAIR_FACES, 5, np.random.default_rng(0), np.zeros(5, np.int8))
