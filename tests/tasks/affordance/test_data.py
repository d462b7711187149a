"""Affordance-map items from per-point part labels: one per (sample, affordance), object split, texts."""

import numpy as np
import pytest

from schemas.instruction import InstructionRow
from schemas.rows import Sample
from tasks.affordance.data import instruction_texts, items_from_samples, object_split
from tasks.store.write import write_table
from tests.factories import sample_dicts


def _two_part_samples(n: int, num_points: int = 64) -> list[Sample]:
    """Top half wrap-grasp (id 5), bottom half press (id 3)."""
    rows = sample_dicts(n, num_points=num_points)
    for row in rows:
        row["object_point_labels"] = np.where(row["object_points"][:, 2] > 0, 5, 3).astype(np.int8)
    return [Sample.model_validate(r) for r in rows]


def test_one_item_per_sample_and_affordance_with_binary_targets() -> None:
    samples = _two_part_samples(3)
    items = items_from_samples(samples)
    assert len(items) == 6 and items.points.shape == (6, 64, 3) and items.targets.shape == (6, 64)
    assert sorted(set(items.affordances)) == ["press", "wrap-grasp"]
    for i, sample_id in enumerate(items.sample_ids):
        sample = next(s for s in samples if s.sample_id == sample_id)
        label = {"press": 3, "wrap-grasp": 5}[items.affordances[i]]
        np.testing.assert_array_equal(items.targets[i], (sample.object_point_labels == label).astype(np.float32))


def test_samples_without_usable_labels_are_reported_not_lost() -> None:
    samples = _two_part_samples(3)
    samples[0].object_point_labels = None
    samples[1].object_point_labels = np.zeros(64, np.int8)
    problems = []
    items = items_from_samples(samples, lambda row, reason: problems.append((row.sample_id, reason)))
    assert len(items) == 2
    assert [p[0] for p in problems] == [samples[0].sample_id, samples[1].sample_id]
    assert "object_point_labels: missing" in problems[0][1] and "no part carries" in problems[1][1]
    with pytest.raises(ValueError, match=f"sample {samples[0].sample_id}: object_point_labels"):
        items_from_samples(samples)


def test_split_is_by_object_and_stratified_by_class() -> None:
    items = items_from_samples(_two_part_samples(20))
    split = object_split(items, test_fraction=0.25, seed=3)
    train_objects = {items.object_ids[i] for i in split["train"]}
    test_objects = {items.object_ids[i] for i in split["test"]}
    assert not train_objects & test_objects and len(split["train"]) + len(split["test"]) == len(items)
    for category in set(items.categories):
        objects = {o for o, c in zip(items.object_ids, items.categories, strict=True) if c == category}
        assert objects & test_objects and objects & train_objects  # every class on both sides
    with pytest.raises(ValueError, match="test_fraction must be in"):
        object_split(items, test_fraction=1.0)


def test_texts_are_the_tables_then_the_templates(tmp_path) -> None:
    table = tmp_path / "instructions"
    rows = [InstructionRow(sample_id=s.sample_id, stage_version="t", dataset="affordpose", object_class="mug",
                           affordance="press", instruction=text, variant=0, generator="openai", model="m",
                           prompt_version="p", fallback=False)
            for s, text in zip(_two_part_samples(3), ["Press the mug's button", "Press the mug's button",
                                                      "Push the mug down"], strict=True)]
    write_table(table, rows, InstructionRow)
    texts = instruction_texts([("mug", "press"), ("mug", "lift")], table, template_variants=2)
    assert texts[("mug", "press")][:2] == ["Press the mug's button", "Push the mug down"]
    assert len(texts[("mug", "press")]) == 4 and len(texts[("mug", "lift")]) == 2
    assert all("mug" in t.lower() for t in texts[("mug", "lift")])


def test_texts_come_in_one_order_whatever_order_the_keys_come_in() -> None:
    """The flow passes a set of keys, whose order changes with PYTHONHASHSEED; the text order decides how the
    encoder batches and so the last bits of the features, which made two runs train different models."""
    keys = [("mug", "press"), ("bottle", "twist"), ("knife", "handle-grasp"), ("mug", "lift")]
    forward, backward = instruction_texts(keys), instruction_texts(keys[::-1])
    assert list(forward) == list(backward) == sorted(keys)
    assert [t for g in forward.values() for t in g] == [t for g in backward.values() for t in g]
