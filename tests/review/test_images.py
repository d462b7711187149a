from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from review.images import cycle_images_dir, render_queue_images
from schemas.review import QueueItem
from schemas.rows import Sample
from tasks.store.write import write_table
from tests.factories import sample_dicts

HAND_FACES = np.random.default_rng(0).integers(0, 778, size=(64, 3))  # a few random triangles: fast to draw


def _with_meshes(rows: list[dict], seed: int) -> list[dict]:
    """Toy samples carry only points and MANO parameters; give each an object mesh and random hand vertices."""
    rng = np.random.default_rng(seed)
    box = trimesh.creation.box(extents=(0.06, 0.06, 0.1))
    for row in rows:
        row["object_vertices"] = box.vertices.astype(np.float32)
        row["object_faces"] = box.faces.astype(np.int32)
        row["hand_verts"] = (rng.normal(scale=0.02, size=(778, 3)) + np.array([0.07, 0.0, 0.0])).astype(np.float32)
    return rows


def _items(rows: list[dict], cycle: int = 0) -> list[QueueItem]:
    return [QueueItem(cycle=cycle, position=i, sample_id=row["sample_id"], dataset=row["dataset"],
                      object_category=row["object_category"], predicted="press", confidence=0.9)
            for i, row in enumerate(rows)]


@pytest.fixture
def tables(tmp_path: Path) -> tuple[list[Path], list[dict]]:
    first, second = _with_meshes(sample_dicts(2, num_points=16), 0), _with_meshes(sample_dicts(1, start=5), 1)
    write_table(tmp_path / "a", first, Sample)
    write_table(tmp_path / "b", second, Sample)
    return [tmp_path / "a", tmp_path / "b"], [second[0], first[1]]  # queue order differs from table order


def test_one_png_per_item_named_by_position(tmp_path, tables):
    table_paths, rows = tables
    out = cycle_images_dir(tmp_path / "images", 3)
    paths = render_queue_images(_items(rows, 3), table_paths, HAND_FACES, out)
    assert paths == {rows[0]["sample_id"]: out / "0.png", rows[1]["sample_id"]: out / "1.png"}
    assert out == tmp_path / "images" / "3"
    for path in paths.values():
        image = np.asarray(Image.open(path).convert("RGB"))
        assert image.shape[1] == 2 * image.shape[0]  # two square views side by side
        assert (image < 250).any(axis=2).mean() > 0.02  # something is drawn
    # a picture and the 3-D geometry per item, no temporary files left
    assert sorted(p.name for p in out.iterdir()) == ["0.geometry.json", "0.png", "1.geometry.json", "1.png"]


def test_rendering_is_idempotent(tmp_path, tables):
    table_paths, rows = tables
    items = _items(rows)
    paths = render_queue_images(items, table_paths, HAND_FACES, tmp_path / "out")
    stamps = {sid: p.stat().st_mtime_ns for sid, p in paths.items()}
    # Everything present: no table is read at all (these paths do not exist).
    assert render_queue_images(items, [tmp_path / "missing"], HAND_FACES, tmp_path / "out") == paths
    paths[rows[1]["sample_id"]].unlink()
    render_queue_images(items, table_paths, HAND_FACES, tmp_path / "out")
    assert paths[rows[0]["sample_id"]].stat().st_mtime_ns == stamps[rows[0]["sample_id"]]
    assert paths[rows[1]["sample_id"]].is_file()


def test_missing_sample_is_named(tmp_path, tables):
    table_paths, rows = tables
    items = [*_items(rows), QueueItem(cycle=0, position=2, sample_id="toy-00000000deadbeef", dataset="toy",
                                      object_category="mug", predicted="lift", confidence=0.5)]
    with pytest.raises(ValueError, match="toy-00000000deadbeef"):
        render_queue_images(items, table_paths, HAND_FACES, tmp_path / "out")


def test_sample_without_a_mesh_is_named(tmp_path):
    rows = sample_dicts(1)
    rows[0]["hand_verts"] = np.zeros((778, 3), np.float32)
    write_table(tmp_path / "t", rows, Sample)
    with pytest.raises(ValueError, match=f"{rows[0]['sample_id']}.*no object mesh"):
        render_queue_images(_items(rows), [tmp_path / "t"], HAND_FACES, tmp_path / "out")
