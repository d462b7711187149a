"""ingest_delta: content-hash keyed incremental ingestion (no Prefect)."""

import pickle

import pytest

from tasks.ingest.delta import ingest_delta, load_classifier_state, save_classifier_state, stored_hashes
from tasks.synth.datasets import synthesize_datasets
from tests.annotate_factories import add_oakink_copy, oakink_params, perturb_oakink, rows_by_id


@pytest.fixture(scope="module")
def oakink(tmp_path_factory):
    root = tmp_path_factory.mktemp("delta")
    summary = synthesize_datasets(root / "datasets", {"oakink": 1}, seed=4, grasps_per_part={"oakink": 2},
                                  categories=["mug"], datasets=["oakink"], steps=10)
    return summary.root


def test_delta_completes_only_what_changed(oakink, tmp_path):
    table, mano = tmp_path / "tables" / "oakink", oakink / "mano"
    first = ingest_delta("oakink", oakink / "oakink", table, mano, num_points=64)
    files = oakink_params(oakink)
    assert first.unchanged == 0 and len(first.changed) == len(files) >= 3 and first.removed == []
    before, version = rows_by_id(table), table.resolve()
    again = ingest_delta("oakink", oakink / "oakink", table, mano, num_points=64)
    assert again.changed == [] and again.removed == [] and again.unchanged == len(files)
    assert table.resolve() == version  # nothing to write: no new version

    perturb_oakink(files[0])
    added = add_oakink_copy(files[1])
    files[2].unlink()
    delta = ingest_delta("oakink", oakink / "oakink", table, mano, num_points=64)
    after = rows_by_id(table)
    assert len(delta.changed) == 2 and len(delta.removed) == 1 and delta.unchanged == len(files) - 2
    assert set(after) == (set(before) - set(delta.removed)) | set(delta.changed)
    for sample_id in set(before) - set(delta.removed) - set(delta.changed):
        assert after[sample_id] == before[sample_id]
    assert {after[s]["source_path"] for s in delta.changed} == {
        p.relative_to(oakink / "oakink").as_posix() for p in (files[0], added)}
    assert stored_hashes(table) == {s: r["content_hash"] for s, r in after.items()}


def test_a_file_that_breaks_is_removed_and_rejected(oakink, tmp_path):
    table, mano = tmp_path / "tables" / "oakink", oakink / "mano"
    ingest_delta("oakink", oakink / "oakink", table, mano, num_points=64)
    victim = oakink_params(oakink)[0]
    saved = victim.read_bytes()
    try:
        victim.write_bytes(saved[:20])  # truncated pickle
        delta = ingest_delta("oakink", oakink / "oakink", table, mano, num_points=64)
        assert len(delta.removed) == 1 and delta.rejects == 1 and delta.changed == []
        victim.write_bytes(saved)  # fixed again: back in, and its reject goes away
        fixed = ingest_delta("oakink", oakink / "oakink", table, mano, num_points=64)
        assert fixed.changed == delta.removed and fixed.rejects == 0
        assert not rows_by_id(tmp_path / "tables" / "rejects")
    finally:
        victim.write_bytes(saved)


def test_other_sampling_parameters_recompute_every_sample(oakink, tmp_path):
    table, mano = tmp_path / "tables" / "oakink", oakink / "mano"
    first = ingest_delta("oakink", oakink / "oakink", table, mano, num_points=64)
    other = ingest_delta("oakink", oakink / "oakink", table, mano, num_points=96)
    assert sorted(other.changed) == sorted(first.changed)
    assert {len(r["object_points"]) for r in rows_by_id(table).values()} == {96}


def test_classifier_state_round_trip_and_errors(tmp_path):
    import numpy as np

    from tasks.pseudo_label.confidence_filter import ClassStats

    stats = ClassStats(mean=np.full(9, 0.9), std=np.full(9, 0.02), count=np.arange(9), fallback=np.zeros(9, bool),
                       pooled_mean=0.9, pooled_std=0.03, k=3.0)
    path = save_classifier_state(tmp_path / "classifier.json", tmp_path / "c.pt", "a" * 64, "class_conditional",
                                 3.0, 2, stats)
    state = load_classifier_state(path)
    assert state.cycle == 2 and np.array_equal(state.class_stats().threshold(), stats.threshold())
    with pytest.raises(ValueError, match="run the full annotate flow once"):
        load_classifier_state(tmp_path / "missing.json")
    path.write_text(pickle.dumps(1).hex())
    with pytest.raises(ValueError, match="not a classifier state"):
        load_classifier_state(path)


def test_the_unchanged_check_hashes_exactly_what_the_full_load_hashes(oakink, tmp_path):
    # An incremental ingest takes a grasp whose pickle, source.txt and mesh file hash as the table says as
    # Unchanged without loading it; that is only sound if both paths hash the same bytes.
    import shutil

    from tasks.ingest.common import RawSample, Unchanged
    from tasks.ingest.mano_frame import HandTemplate
    from tasks.ingest.oakink import iter_oakink
    from tasks.ingest.pipeline import load_hand

    root = tmp_path / "oakink"
    shutil.copytree(oakink / "oakink", root)
    template = HandTemplate.from_mano(load_hand(oakink / "mano")[0])
    full = [r for r in iter_oakink(root, template) if isinstance(r, RawSample)]
    known = {r.sample_id: r.content_hash for r in full}
    assert len(full) >= 3 and all(isinstance(r, Unchanged) for r in iter_oakink(root, template, known=known))
    stale = known | {full[0].sample_id: "0" * 64}  # the table holds another hash for the first grasp
    assert [type(r) for r in iter_oakink(root, template, known=stale)] == [RawSample] + [Unchanged] * (len(full) - 1)
    mesh = root / full[0].object_mesh_path
    mesh.write_bytes(mesh.read_bytes() + b"\n# re-exported\n")  # same shape, other bytes: every grasp on it changes
    again = {r.sample_id: r for r in iter_oakink(root, template, known=known)}
    on_mesh = {r.sample_id for r in full if r.object_mesh_path == full[0].object_mesh_path}
    assert {i for i, r in again.items() if isinstance(r, RawSample)} == on_mesh
    assert all(again[i].content_hash != known[i] for i in on_mesh)
