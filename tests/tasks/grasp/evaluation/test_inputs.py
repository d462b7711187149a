"""The evaluation's inputs: objects from the annotated table joined with the samples tables' meshes (test split
preferred, objects without a mesh counted), K generated grasps per object as GeneratedGrasps, HEADS=FILE
parsing and the heads check."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import trimesh

from schemas.annotated import AnnotatedRow
from schemas.rows import Sample
from tasks.grasp.config import preset_config
from tasks.grasp.data import items_from_rows, mano_layer
from tasks.grasp.evaluation.evaluate import check_grasp
from tasks.grasp.evaluation.inputs import (
    EmptySplit,
    check_heads,
    generate_for_objects,
    parse_checkpoints,
    select_objects,
)
from tasks.grasp.sample import load_grasp_generator
from tasks.grasp.train import train_grasp_model
from tasks.store.write import write_table
from tests.grasp_factories import annotated_rows, fake_embed, single_thread, write_annotated


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_thread()


def write_samples(tables: Path, rows: list[AnnotatedRow], skip_objects: tuple[str, ...] = ()) -> None:
    """One samples table per dataset under `tables`, a sphere mesh (the row's points' radius) per sample_id,
    except rows of `skip_objects` (written without a mesh)."""
    by_dataset: dict[str, list[Sample]] = {}
    for row in rows:
        radius = float(np.linalg.norm(row.object_points, axis=1).mean())
        mesh = trimesh.creation.icosphere(subdivisions=2, radius=radius)
        with_mesh = row.object_id not in skip_objects
        by_dataset.setdefault(row.dataset, []).append(Sample(
            sample_id=row.sample_id, stage_version="test", dataset=row.dataset, split=row.split,
            source_path=f"{row.sample_id}.obj", content_hash=hashlib.sha256(row.sample_id.encode()).hexdigest(),
            object_id=row.object_id, object_category=row.object_class,
            object_vertices=np.asarray(mesh.vertices, np.float32) if with_mesh else None,
            object_faces=np.asarray(mesh.faces, np.int32) if with_mesh else None,
            object_points=row.object_points, hand_verts=np.zeros((778, 3), np.float32)))
    for dataset, samples in by_dataset.items():
        write_table(tables / dataset, samples, Sample)


def train_tiny(rows: list[AnnotatedRow], out: Path, heads: int) -> Path:
    """A tiny generator trained for 2 steps per stage (seconds): proves the path, learns nothing."""
    mano, _ = mano_layer()
    items = items_from_rows(rows, mano, fake_embed, num_points=64)
    config = preset_config("tiny", 2, dam_heads=heads, device="cpu", num_points=64, batch_size=4, ddim_steps=5)
    return train_grasp_model(items, mano, config, out).model_path


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("tables")
    rows = write_annotated(root / "annotated", n=6, affordpose=2, other_split=1)
    write_samples(root, rows, skip_objects=("obj3",))
    return root, rows


def test_objects_join_meshes_and_count_the_ones_without(tables):
    root, _ = tables
    found = select_objects(root / "annotated", root, per_dataset=10)
    assert found.split == "all"  # the table has no test rows
    assert found.candidates == {"affordpose": 2, "oakink": 4}  # distinct objects per dataset
    assert found.without_mesh == {"affordpose": 1, "oakink": 1}  # obj3 in each
    assert sorted((o.dataset, o.object_id) for o in found.objects) == [
        ("affordpose", "obj2"), ("oakink", "obj0"), ("oakink", "obj1"), ("oakink", "obj2")]
    first = found.objects[0]
    assert first.object_faces.shape[1] == 3 and first.affordance_map.shape == (len(first.object_points),)
    assert "oakink: 3 objects evaluated of 4 (1 without a mesh, skipped)" in found.summary()
    assert [o.dataset for o in select_objects(root / "annotated", root, per_dataset=1).objects] == [
        "affordpose", "oakink"]


def test_test_split_is_preferred_when_present(tmp_path):
    rows = annotated_rows(n=6, affordpose=0, other_split=0)
    rows[1].split = "test"
    write_table(tmp_path / "annotated", rows, AnnotatedRow)
    write_samples(tmp_path, rows)
    found = select_objects(tmp_path / "annotated", tmp_path, per_dataset=5)
    assert found.split == "test" and [o.sample_id for o in found.objects] == [rows[1].sample_id]


def test_split_test_without_test_rows_is_refused_naming_the_table_and_split(tables):
    root, _ = tables
    with pytest.raises(EmptySplit, match=f"annotated table {root / 'annotated'}: split 'test' has no rows"):
        select_objects(root / "annotated", root, per_dataset=2, split="test")
    with pytest.raises(ValueError, match="split 'held-out' is not one of auto, test, val, all"):
        select_objects(root / "annotated", root, per_dataset=2, split="held-out")
    assert select_objects(root / "annotated", root, per_dataset=2, split="all").split == "all"


def test_by_affordance_takes_each_object_once_per_affordance_with_its_instruction(tmp_path):
    rows = annotated_rows(n=6, affordpose=0, other_split=0)  # objects obj0..obj3; affordance i % 3
    write_table(tmp_path / "annotated", rows, AnnotatedRow)
    write_samples(tmp_path, rows)
    pairs = select_objects(tmp_path / "annotated", tmp_path, per_dataset=10, by_affordance=True).objects
    expected = {(r.object_id, r.affordance, r.instruction) for r in rows}
    assert sorted((o.object_id, o.affordance, o.instruction) for o in pairs) == sorted(expected)
    assert len(select_objects(tmp_path / "annotated", tmp_path, per_dataset=10).objects) == 4  # one per object


def test_no_mesh_anywhere_is_an_error_naming_the_table(tmp_path):
    write_annotated(tmp_path / "annotated", n=3, affordpose=0, other_split=0)
    with pytest.raises(ValueError, match="no object with a mesh"):
        select_objects(tmp_path / "annotated", tmp_path / "nowhere", per_dataset=2)


def test_generated_grasps_are_valid_tagged_and_deterministic(tables, tmp_path):
    root, rows = tables
    generator = load_grasp_generator(train_tiny(rows, tmp_path / "h2", heads=2), "cpu")
    objects = select_objects(root / "annotated", root, per_dataset=2).objects
    grasps = generate_for_objects(generator, objects, k=3, embed=fake_embed, seed=1)
    assert len(grasps) == 3 * len(objects)
    for i, grasp in enumerate(grasps):
        check_grasp(i, grasp)  # shapes, meshes, affordance name
        assert grasp.dam_heads == 2 and np.isfinite(grasp.joints).all()
    # joints come from the same MANO call as the vertices: the wrist sits inside the hand's bounding box
    wrist, verts = grasps[0].joints[0], grasps[0].hand_verts
    assert (wrist > verts.min(0) - 0.02).all() and (wrist < verts.max(0) + 0.02).all()
    again = generate_for_objects(generator, objects, k=3, embed=fake_embed, seed=1)
    assert np.array_equal(again[4].hand_verts, grasps[4].hand_verts)
    with pytest.raises(ValueError, match="given for 4 DAM heads but its DAM has 2"):
        check_heads({4: "x.pt"}, {4: generator})
    # the sampler's settings reach every grasp: the training config's guidance by default, another when given
    default = generate_for_objects(generator, objects, k=3, embed=fake_embed, seed=1,
                                   guidance=generator.train_config.guidance)
    assert np.array_equal(default[4].hand_verts, grasps[4].hand_verts)
    unguided = generate_for_objects(generator, objects, k=3, embed=fake_embed, seed=1, guidance=0.0, ddim_steps=5)
    assert not np.allclose(unguided[4].hand_verts, grasps[4].hand_verts)


@pytest.mark.parametrize("spec,message", [("2", "not HEADS=FILE"), ("two=a.pt", "not HEADS=FILE"),
                                          ("2=", "not HEADS=FILE")])
def test_parse_checkpoints_names_the_bad_entry(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_checkpoints([spec])
    assert parse_checkpoints(["1=a.pt", "4=b.pt"]) == {1: "a.pt", 4: "b.pt"}
    with pytest.raises(ValueError, match="given twice"):
        parse_checkpoints(["1=a.pt", "1=b.pt"])
