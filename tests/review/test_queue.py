"""Which pseudo-labels go to review: stratified, seeded, only the cycle's accepted labels."""

from __future__ import annotations

import random
from collections import Counter
from itertools import pairwise

import numpy as np
import pytest

from review.queue import allocate, sample_queue, table_candidates
from schemas.affordance import AFFORDANCES
from schemas.rows import PseudoLabel
from tasks.store.write import write_table

# Accepted labels per predicted class: two large classes, two rare ones (pull, lever) and one absent.
COUNTS = {"handle-grasp": 400, "press": 200, "lift": 100, "wrap-grasp": 50, "twist": 20, "support": 10, "pull": 3,
          "lever": 2}


def pseudo_label(i: int, predicted: str, accepted: bool = True, cycle: int = 0) -> PseudoLabel:
    probabilities = np.full(9, 0.01, dtype=np.float32)
    probabilities[AFFORDANCES.index(predicted)] = 0.92
    return PseudoLabel(sample_id=f"oakink-{i:016x}", stage_version="test", cycle=cycle, dataset="oakink",
                       predicted=predicted, probabilities=probabilities, confidence=0.92, score=0.92, threshold=0.5,
                       accepted=accepted, rule="class_conditional(k=3)", checkpoint_sha256="0" * 64)


def labels_with(counts: dict[str, int], start: int = 0, **options) -> list[PseudoLabel]:
    names = [name for name, n in counts.items() for _ in range(n)]
    return [pseudo_label(start + i, name, **options) for i, name in enumerate(names)]


def categories_of(labels: list[PseudoLabel]) -> dict[str, str]:
    return {label.sample_id: f"category-{int(label.sample_id[-4:], 16) % 7}" for label in labels}


def test_allocation_gives_every_class_its_minimum_and_shares_the_rest_by_remaining_count():
    available = [COUNTS.get(name, 0) for name in AFFORDANCES]
    # Minimums 0,5,5,5,5,5,5,3,2 (35); the 65 left go by the remaining 395,195,95,45,15,5 (of 750):
    # floors 34,16,8,3,1,0 (62), and the 3 left to the largest remainders: press and wrap-grasp (.9), support (.43).
    assert allocate(available, size=100, min_per_class=5) == [0, 39, 22, 13, 9, 6, 6, 3, 2]


def test_allocation_ties_go_to_class_order_and_small_sizes_lower_the_minimum():
    assert allocate([10, 10], size=5, min_per_class=0) == [3, 2]
    assert allocate([10] * 9, size=4, min_per_class=5) == [1, 1, 1, 1, 0, 0, 0, 0, 0]
    assert allocate([10] * 9, size=20, min_per_class=5) == [3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert allocate([3, 4], size=100, min_per_class=5) == [3, 4]  # fewer than size: all


@pytest.mark.parametrize("seed", range(20))
def test_allocation_invariants_on_random_counts(seed):
    rng = random.Random(seed)
    available = [rng.choice([0, 1, 2, 7, 30, 300]) for _ in range(9)]
    size, min_per_class = rng.randint(1, 150), rng.randint(0, 8)
    counts = allocate(available, size, min_per_class)
    assert sum(counts) == min(size, sum(available))
    assert all(0 <= k <= n for k, n in zip(counts, available, strict=True))
    if sum(min(min_per_class, n) for n in available) <= size:
        assert all(k >= min(min_per_class, n) for k, n in zip(counts, available, strict=True))


def test_queue_is_stratified_shuffled_and_numbered():
    labels = labels_with(COUNTS)
    items = sample_queue(labels, categories_of(labels), cycle=0, size=100)
    assert [item.position for item in items] == list(range(100))
    assert len({item.sample_id for item in items}) == 100
    by_class = Counter(item.predicted for item in items)
    assert by_class == {"handle-grasp": 39, "press": 22, "lift": 13, "wrap-grasp": 9, "twist": 6, "support": 6,
                        "pull": 3, "lever": 2}
    runs = sum(a.predicted != b.predicted for a, b in pairwise(items))
    assert runs > 30  # shuffled: not one block per class (a grouped order would change class 7 times)


def test_queue_items_carry_the_label_and_its_object_category():
    labels = labels_with({"press": 3})
    categories = {label.sample_id: "<b>kettle</b>" for label in labels}
    items = sample_queue(labels, categories, cycle=0)
    assert {(i.dataset, i.object_category, i.predicted, round(i.confidence, 4), i.cycle) for i in items} == {
        ("oakink", "<b>kettle</b>", "press", 0.92, 0)}


def test_rare_class_gets_its_minimum():
    labels = labels_with({"handle-grasp": 1000, "lever": 7})
    items = sample_queue(labels, categories_of(labels), cycle=0, size=100, min_per_class=5)
    counts = Counter(item.predicted for item in items)
    # lever: 5 first, then a 90 * 2 / 997 = 0.18 share of the 90 left (0 more); a plain random sample of 100
    # would hold 0.7 lever items on average.
    assert counts == {"handle-grasp": 95, "lever": 5}


def test_same_seed_same_queue_whatever_the_input_order():
    labels = labels_with(COUNTS)
    categories = categories_of(labels)
    shuffled = random.Random(1).sample(labels, len(labels))
    first = sample_queue(labels, categories, cycle=0, seed=3)
    assert sample_queue(shuffled, categories, cycle=0, seed=3) == first
    other = sample_queue(labels, categories, cycle=0, seed=4)
    assert [i.sample_id for i in other] != [i.sample_id for i in first]
    assert Counter(i.predicted for i in other) == Counter(i.predicted for i in first)  # the allocation is fixed


def test_overlap_share_asks_two_reviewers_for_that_many_items_of_the_same_queue():
    labels = labels_with(COUNTS)
    categories = categories_of(labels)
    plain = sample_queue(labels, categories, cycle=0, seed=3)
    overlap = sample_queue(labels, categories, cycle=0, seed=3, overlap=0.1)
    assert [i.sample_id for i in overlap] == [i.sample_id for i in plain]  # drawn after the queue: same queue
    assert Counter(i.reviews for i in overlap) == {1: 90, 2: 10} and {i.reviews for i in plain} == {1}
    assert sample_queue(labels, categories, cycle=0, seed=3, overlap=0.1) == overlap  # seeded
    small = labels_with({"lift": 3})
    assert sum(i.reviews == 2 for i in sample_queue(small, categories_of(small), cycle=0, overlap=0.1)) == 1
    with pytest.raises(ValueError, match=r"overlap must be a share in \[0, 1\], got 1.5"):
        sample_queue(small, categories_of(small), cycle=0, overlap=1.5)


def test_fewer_accepted_labels_than_size_go_to_review_all():
    labels = labels_with({"lift": 20, "twist": 10})
    items = sample_queue(labels, categories_of(labels), cycle=0, size=100)
    assert sorted(i.sample_id for i in items) == sorted(label.sample_id for label in labels)
    assert [i.position for i in items] == list(range(30))


def test_only_accepted_labels_of_the_cycle():
    wanted = labels_with({"lift": 8, "press": 4})
    others = (labels_with({"lift": 50}, start=100, accepted=False)
              + labels_with({"press": 50}, start=200, cycle=1))
    labels = wanted + others
    items = sample_queue(labels, categories_of(labels), cycle=0, size=100)
    assert {i.sample_id for i in items} == {label.sample_id for label in wanted}
    assert sample_queue(labels, categories_of(labels), cycle=2) == []


def test_queue_from_the_labels_table_equals_the_queue_from_the_rows(tmp_path):
    """Self-training keeps a cycle's labels in the labels table only: the queue it draws from six columns of the
    table (accepted rows of the cycle) must be the queue the rows themselves give, other cycles and rejected
    labels left out."""
    labels = (labels_with(COUNTS) + labels_with({"lift": 30}, start=5000, accepted=False)
              + labels_with({"press": 40}, start=6000, cycle=1))
    random.Random(1).shuffle(labels)
    write_table(tmp_path / "labels", labels, PseudoLabel)
    picked = table_candidates(tmp_path / "labels", cycle=0)
    assert sorted(c.sample_id for c in picked) == sorted(
        label.sample_id for label in labels if label.accepted and label.cycle == 0)
    categories = categories_of(labels)
    assert sample_queue(picked, categories, cycle=0, seed=5, overlap=0.1) == sample_queue(
        labels, categories, cycle=0, seed=5, overlap=0.1)
    assert [c.sample_id for c in table_candidates(tmp_path / "labels", cycle=1)] != []
    assert table_candidates(tmp_path / "labels", cycle=2) == []


def test_bad_arguments_are_named():
    labels = labels_with({"lift": 3})
    with pytest.raises(ValueError, match="size must be >= 1, got 0"):
        sample_queue(labels, categories_of(labels), cycle=0, size=0)
    with pytest.raises(ValueError, match="min_per_class must be >= 0, got -1"):
        sample_queue(labels, categories_of(labels), cycle=0, min_per_class=-1)
    categories = categories_of(labels)
    del categories[labels[1].sample_id]
    with pytest.raises(ValueError, match=f"no object_category for sample_id '{labels[1].sample_id}'"):
        sample_queue(labels, categories, cycle=0)
    with pytest.raises(ValueError, match="two labels in cycle 0"):
        sample_queue([labels[0], labels[0]], categories_of(labels), cycle=0)


def test_rows_an_earlier_run_left_in_the_labels_table_are_not_drawn(tmp_path):
    """The labels table keeps earlier runs' rows of the same cycle number; a cycle draws only from the ids it
    labelled (a stale accepted row of a sample merged earlier, or gone, must not be reviewed or merged again)."""
    labels = labels_with({"lift": 6, "press": 4})
    write_table(tmp_path / "labels", labels, PseudoLabel)
    stale = {labels[0].sample_id, labels[7].sample_id}
    labelled = [label.sample_id for label in labels if label.sample_id not in stale]
    picked = table_candidates(tmp_path / "labels", cycle=0, labelled=labelled)
    assert sorted(c.sample_id for c in picked) == sorted(labelled)
    from tasks.pseudo_label.self_training_loop import cycle_labels

    rows = [row for batch in cycle_labels(tmp_path / "labels", 0, labelled, batch_rows=3) for row in batch]
    assert sorted(r.sample_id for r in rows) == sorted(labelled) and all(isinstance(r, PseudoLabel) for r in rows)
    want = [label for label in labels if label.sample_id in labelled]
    assert [(r.sample_id, r.predicted, r.confidence, r.accepted) for r in rows] == [
        (w.sample_id, w.predicted, w.confidence, w.accepted) for w in want]
    assert all(np.array_equal(r.probabilities, w.probabilities) for r, w in zip(rows, want, strict=True))
