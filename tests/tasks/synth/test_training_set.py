"""The generator's training set: the tiny set preset built through the real `annotate` flow holds MANO grasps in
train and test (held-out objects of the seen classes), is reused by a second build with the same preset and
seed, and a split with no object is refused naming the table and split."""

import json

import pytest

from tasks.grasp.evaluation.inputs import EmptySplit
from tasks.synth.training_set import SET_FILE, SET_PRESETS, _spec_dict, build_training_set, check_split


def test_set_presets_are_registered_and_refused_by_name():
    assert SET_PRESETS.default == "generator-train" and "generator-tiny" in SET_PRESETS
    big = SET_PRESETS["generator-train"]
    # the floor: >= 8 objects per category, ~5,000 MANO grasps (about 2.3 graspable parts per object)
    assert big.objects_per_category >= 8
    assert 3 * len(big.categories) * big.objects_per_category * 2 * big.grasps_per_part >= 4_500
    with pytest.raises(ValueError, match="'huge' is not registered"):
        build_training_set("/nonexistent", "huge")


def test_the_stable_preset_differs_only_in_candidates_and_old_sets_still_match():
    plain, stable = SET_PRESETS["generator-train"], SET_PRESETS["generator-train-stable"]
    assert stable.candidates == 2 and plain.candidates == 1
    assert {**stable.__dict__, "candidates": 1} == plain.__dict__
    # a set written before `candidates` existed kept every grasp; its training_set.json has no such key
    assert "candidates" not in _spec_dict("generator-train")
    assert _spec_dict("generator-train-stable")["candidates"] == 2


def test_a_split_without_objects_is_refused_naming_table_and_split(tmp_path):
    counts = {"objects": {"train": 12, "val": 2}}
    with pytest.raises(EmptySplit, match=f"annotated table {tmp_path}: split 'test' has no object"):
        check_split(counts, "test", tmp_path)
    check_split(counts, "train", tmp_path)


def test_a_data_root_holding_data_it_did_not_write_is_refused_and_kept(tmp_path):
    table = tmp_path / "tables" / "oakink"
    table.mkdir(parents=True)
    (table / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match=f"{tmp_path / 'tables'} holds data no generator-set build wrote"):
        build_training_set(tmp_path, "generator-tiny", log=lambda line: None)
    assert (table / "manifest.json").read_text() == "{}"


@pytest.mark.slow
def test_tiny_set_builds_through_annotate_with_held_out_objects_and_is_reused(tmp_path, prefect_harness):
    built = build_training_set(tmp_path, "generator-tiny", seed=0, log=lambda line: None)
    assert not built.reused and built.annotated.is_dir()
    counts = built.counts
    assert counts["mano_grasps"]["train"] > 0 and counts["objects"]["test"] >= 1
    assert set(counts["train_objects_per_class"]) <= {"bottle", "knife", "mug"}
    saved = json.loads((tmp_path / SET_FILE).read_text())
    assert saved["preset"] == "generator-tiny" and saved["built"]["peak_rss_mib"] > 0
    manifest = (built.annotated / "manifest.json").stat().st_mtime_ns
    again = build_training_set(tmp_path, "generator-tiny", seed=0, log=lambda line: None)
    assert again.reused and again.counts == counts
    assert (built.annotated / "manifest.json").stat().st_mtime_ns == manifest  # nothing rebuilt
