"""Affordance-map figures: a valid PNG of the expected grid size on a synthetic sphere, atomic writing, input
checks that name the argument, and map_change against a hand computation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from tasks.affordance.figures import map_change, render_maps

RADIUS = 0.05  # metres: a mug-sized object


def sphere(n: int = 500) -> np.ndarray:
    """(n, 3) points spread evenly on a sphere (Fibonacci lattice), deterministic."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    angle = np.pi * (1 + 5**0.5) * i
    ring = np.sqrt(1 - z**2)
    return RADIUS * np.stack([ring * np.cos(angle), ring * np.sin(angle), z], axis=1)


def cap_map(points: np.ndarray, axis: int) -> np.ndarray:
    """v_i in [0, 1], 1 at the pole on +axis, 0 over the far half: a smooth affordance blob."""
    return np.clip(points[:, axis] / RADIUS, 0.0, 1.0)


@pytest.fixture
def scene() -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    points = sphere()
    titles = ["Grip the handle of the mug firmly with the whole hand so that it does not slip",
              "Twist the cap"]
    return points, [cap_map(points, 2), cap_map(points, 0)], titles


def test_render_maps_writes_a_png_grid(tmp_path: Path, scene) -> None:
    points, maps, titles = scene
    path = render_maps(points, maps, titles, tmp_path / "figs" / "maps.png", suptitle="sphere: two instructions")
    assert path == tmp_path / "figs" / "maps.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(path).shape[:2]
    assert height > 100 and width > 100
    assert width > height  # two map columns side by side, two view rows
    assert [p.name for p in path.parent.iterdir()] == ["maps.png"]  # no temporary file left behind


def test_render_maps_one_view_replaces_an_existing_file(tmp_path: Path, scene) -> None:
    points, maps, titles = scene
    path = tmp_path / "maps.png"
    path.write_bytes(b"stale")
    render_maps(points, maps[:1], titles[:1], path, views=[(90, 0)])
    height, width = imread(path).shape[:2]
    assert 100 < height < 2 * 320 and width > 100


@pytest.mark.parametrize(("change", "named"), [
    (lambda p, m, t: (p[:, :2], m, t), "points"),
    (lambda p, m, t: (p, [], []), "maps is empty"),
    (lambda p, m, t: (p, [m[0][:-1], m[1]], t), "maps[0]"),
    (lambda p, m, t: (p, [m[0], np.where(np.arange(len(p)) == 3, np.nan, m[1])], t), "maps[1] contains NaN"),
    (lambda p, m, t: (p, [m[0], m[1] + 0.5], t), "maps[1] must lie in [0, 1]"),
    (lambda p, m, t: (p, [m[0] - 0.5, m[1]], t), "maps[0] must lie in [0, 1]"),
    (lambda p, m, t: (p, m, t[:1]), "titles"),
])
def test_render_maps_rejects_bad_input(tmp_path: Path, scene, change, named: str) -> None:
    points, maps, titles = change(*scene)
    with pytest.raises(ValueError, match=re.escape(named)):
        render_maps(points, maps, titles, tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_render_maps_rejects_bad_views(tmp_path: Path, scene) -> None:
    with pytest.raises(ValueError, match="views"):
        render_maps(*scene, tmp_path / "bad.png", views=[(20, -60, 0)])


def test_map_change_matches_a_hand_computation() -> None:
    region = np.array([True, True, False, False, False])
    near = np.array([1.0, 0.5, 0.0, 0.25, 0.25])
    empty = np.zeros(5)
    changes = map_change(region, [near, empty])
    # inside: (1 + 0.5) / 2; outside: (0 + 0.25 + 0.25) / 3; mass: 1.5 / 2.0
    assert changes[0] == pytest.approx({"mean_inside": 0.75, "mean_outside": 0.5 / 3, "mass_inside": 0.75})
    assert changes[1] == {"mean_inside": 0.0, "mean_outside": 0.0, "mass_inside": 0.0}


def test_map_change_tells_the_two_sphere_maps_apart(scene) -> None:
    points, maps, _ = scene
    top = points[:, 2] > 0.5 * RADIUS
    on_top, on_side = map_change(top, maps)
    assert on_top["mean_inside"] > on_top["mean_outside"]
    assert on_top["mass_inside"] > on_side["mass_inside"]


@pytest.mark.parametrize(("region", "named"), [
    (np.array([1, 0, 0, 1, 0]), "bool"),
    (np.zeros(5, dtype=bool), "some but not all"),
    (np.ones(5, dtype=bool), "some but not all"),
    (np.array([True, False, False]), "maps[0]"),
])
def test_map_change_rejects_bad_input(region: np.ndarray, named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        map_change(region, [np.linspace(0, 1, 5)])
