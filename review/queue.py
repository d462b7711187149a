"""Which pseudo-labels a person reviews: a seeded sample of a cycle's accepted labels, stratified by predicted class.

A plain random sample of 100 would often show no example of a rare class, and its quality would go unmeasured.
So every class first gets `min_per_class` items (or all it has), and the remaining slots are shared in proportion
to what each class has left (largest-remainder rounding). The final order is shuffled, so a reviewer does not
see one class in a long run and anchor on it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.affordance import AFFORDANCES
from schemas.review import QueueItem
from schemas.rows import PseudoLabel


class Candidate(NamedTuple):
    """The fields of a pseudo-label that choosing and showing a queue item reads (a PseudoLabel has them too)."""

    sample_id: str
    dataset: str
    predicted: str
    confidence: float
    accepted: bool
    cycle: int


def table_candidates(table: str | Path, cycle: int, labelled: Collection[str] | None = None) -> list[Candidate]:
    """The accepted labels of `cycle` in the labels table, as Candidates: six columns are read and filtered in
    Arrow, so a cycle over a large pool never builds a PseudoLabel per sample to pick 100. `labelled`: the ids the
    cycle labelled (the table also keeps earlier runs' rows of the same cycle number; those are left out)."""
    from tasks.store.read import open_table  # the store is needed only here; the rest of this module is pure

    data = open_table(table, PseudoLabel).read(list(Candidate._fields))
    keep = pc.and_(data.column("accepted"), pc.equal(data.column("cycle"), cycle))
    if labelled is not None:
        keep = pc.and_(keep, pc.is_in(data.column("sample_id"), value_set=pa.array(sorted(labelled), pa.string())))
    data = data.filter(keep)
    return [Candidate(*values) for values in zip(*(data.column(f).to_pylist() for f in Candidate._fields),
                                                 strict=True)]


def candidates(labels: Sequence[PseudoLabel | Candidate], cycle: int) -> list[PseudoLabel | Candidate]:
    """The accepted labels of `cycle`, sorted by sample_id so that the sample depends on the set of labels, not
    on the order a table reader happened to return them in."""
    picked = sorted((label for label in labels if label.accepted and label.cycle == cycle), key=lambda x: x.sample_id)
    for first, second in pairwise(picked):
        if first.sample_id == second.sample_id:
            raise ValueError(f"sample_id {first.sample_id!r} has two labels in cycle {cycle}")
    return picked


def allocate(available: Sequence[int], size: int, min_per_class: int) -> list[int]:
    """Slots per class: available (C,) counts -> (C,) counts k_c <= available_c summing to min(size, sum).

    Each class first gets b_c = min(m, available_c), with m = min_per_class lowered just enough that
    sum_c b_c <= size (only when size < C * min_per_class). The R = size - sum_c b_c slots left go in proportion
    to what is left, r_c = available_c - b_c: class c gets floor(R r_c / sum r) and the slots still left go one
    each to the largest remainders (R r_c mod sum r), ties to the lower class index.
    """
    available = [int(n) for n in available]
    if sum(available) <= size:
        return available
    floor_min = min_per_class
    while sum(min(floor_min, n) for n in available) > size:
        floor_min -= 1  # size < C * min_per_class: every class gets the same smaller minimum
    base = [min(floor_min, n) for n in available]
    rest = [n - b for n, b in zip(available, base, strict=True)]
    slots, total_rest = size - sum(base), sum(rest)
    # Integer arithmetic: exact remainders, so ties are real ties and go to class order, not float noise.
    shares = [slots * r // total_rest for r in rest]
    remainders = [slots * r % total_rest for r in rest]
    by_remainder = sorted(range(len(rest)), key=lambda c: (-remainders[c], c))
    for c in by_remainder[: slots - sum(shares)]:
        shares[c] += 1  # floor_c + 1 <= ceil(R r_c / sum r) <= r_c since R <= sum r: never above what is left
    return [b + s for b, s in zip(base, shares, strict=True)]


def sample_queue(labels: Sequence[PseudoLabel | Candidate], categories: Mapping[str, str], cycle: int, size: int = 100,
                 seed: int = 0, min_per_class: int = 5, overlap: float = 0.0) -> list[QueueItem]:
    """The review queue of `cycle`: up to `size` accepted labels, stratified by predicted class (see `allocate`),
    all of them when fewer exist; in a seeded shuffled order, positions 0..n-1.

    categories: sample_id -> object_category, for every accepted label of the cycle (the reviewer sees the
    object's class). overlap: the share of items two reviewers must decide (round(overlap * n) of them, drawn
    after the queue, so the queue itself does not depend on it), which measures how far reviewers agree.
    Same labels, seed and overlap -> same queue.
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be a share in [0, 1], got {overlap}")
    if min_per_class < 0:
        raise ValueError(f"min_per_class must be >= 0, got {min_per_class}")
    pool = candidates(labels, cycle)
    missing = [label.sample_id for label in pool if label.sample_id not in categories]
    if missing:
        raise ValueError(f"no object_category for sample_id {missing[0]!r} ({len(missing)} missing in all)")
    by_class = [[label for label in pool if label.predicted == name] for name in AFFORDANCES]
    counts = allocate([len(group) for group in by_class], size, min_per_class)
    rng = np.random.default_rng(seed)
    # Draw per class in AFFORDANCES order, then shuffle: one rng, one fixed sequence of calls -> deterministic.
    chosen = [group[i] for group, k in zip(by_class, counts, strict=True)
              for i in sorted(rng.choice(len(group), size=k, replace=False))]
    order = rng.permutation(len(chosen))
    twice = overlap_positions(len(chosen), overlap, rng) if overlap > 0 else set()
    return [QueueItem(cycle=cycle, position=position, sample_id=chosen[i].sample_id, dataset=chosen[i].dataset,
                      object_category=categories[chosen[i].sample_id], predicted=chosen[i].predicted,
                      confidence=chosen[i].confidence, reviews=2 if position in twice else 1)
            for position, i in enumerate(order)]


def overlap_positions(n: int, overlap: float, rng: np.random.Generator) -> set[int]:
    """round(overlap * n) distinct positions of a queue of n (at least one when overlap > 0 and n >= 1: a share
    asked for must be measurable), drawn with `rng`."""
    count = min(n, max(1, round(overlap * n))) if overlap > 0 and n else 0
    return {int(p) for p in rng.choice(n, size=count, replace=False)}
