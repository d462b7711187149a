import random
from collections import Counter
from pathlib import Path

import pytest

from review.simulated import (
    choose_decision,
    review_queue_over_http,
    review_until_complete,
    start_review_server,
    stop_review_server,
)
from review.store import ReviewStore
from schemas.affordance import AFFORDANCES
from schemas.review import QueueItem

N = 40


def _queue(cycle: int) -> tuple[list[QueueItem], dict[str, str]]:
    """N items, every third prediction wrong; truth: sample_id -> true class (AffordPose spelling for some)."""
    items, truth = [], {}
    for i in range(N):
        true = AFFORDANCES[1 + i % 8]
        predicted = AFFORDANCES[1 + (i + 1) % 8] if i % 3 == 0 else true
        sample_id = f"toy-{i:016x}"
        items.append(QueueItem(cycle=cycle, position=i, sample_id=sample_id, dataset="toy", object_category="mug",
                               predicted=predicted, confidence=0.9))
        truth[sample_id] = true.capitalize() if i % 2 else true
    return items, truth


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> tuple[str, Path]:
    """One real review server for the module, with identical queues in cycles 0..4 (one per test)."""
    store_path = tmp_path_factory.mktemp("review") / "review.sqlite"
    store = ReviewStore(store_path)
    for cycle in range(4):
        store.create_queue(cycle, _queue(cycle)[0])
    # cycle 4: every fourth item asks for two reviewers
    store.create_queue(4, [i.model_copy(update={"reviews": 2 if i.position % 4 == 0 else 1}) for i in _queue(4)[0]])
    process, base_url = start_review_server(store_path, store_path.parent / "images")
    yield base_url, store_path
    stop_review_server(process)


def _labels(store_path: Path, cycle: int) -> dict[str, str | None]:
    return {s.item.sample_id: s.label for s in ReviewStore(store_path).items(cycle)}


def test_choose_decision_from_truth():
    rng = random.Random(0)
    right, wrong = _queue(0)[0][1], _queue(0)[0][0]
    assert choose_decision(right, right.predicted, rng, 0.0).decision == "accepted"
    relabel = choose_decision(wrong, "Lever", rng, 0.0)
    assert (relabel.decision, relabel.label) == ("relabelled", "lever")
    assert choose_decision(wrong, "lever", rng, 1.0).decision == "accepted"  # always wrong: accepts a wrong label
    mistakes = [choose_decision(right, right.predicted, rng, 1.0) for _ in range(40)]
    assert {m.decision for m in mistakes} == {"rejected", "relabelled"}
    assert all(m.label != right.predicted for m in mistakes)
    with pytest.raises(ValueError, match="juggle"):
        choose_decision(right, "juggle", rng, 0.0)


@pytest.mark.server
def test_no_errors_gives_the_truth(server):
    base_url, store_path = server
    items, truth = _queue(0)
    counts = review_queue_over_http(base_url, 0, truth)
    wrong = sum(item.predicted != truth[item.sample_id].lower() for item in items)
    assert counts == {"accepted": N - wrong, "rejected": 0, "relabelled": wrong, "skipped": 0}
    assert _labels(store_path, 0) == {sid: label.lower() for sid, label in truth.items()}
    assert review_queue_over_http(base_url, 0, truth) == dict.fromkeys(counts, 0)  # nothing pending: no-op


@pytest.mark.server
def test_errors_are_seeded(server):
    base_url, store_path = server
    _, truth = _queue(1)
    truth = {sid: label.lower() for sid, label in truth.items()}
    first = review_queue_over_http(base_url, 1, truth, error_rate=0.3, seed=7, reviewer="sim-a")
    second = review_queue_over_http(base_url, 2, truth, error_rate=0.3, seed=7, reviewer="sim-b")
    assert first == second
    labels = _labels(store_path, 1)
    assert labels == _labels(store_path, 2)
    mistakes = sum(labels[sid] != truth[sid] for sid in truth)
    assert 0 < mistakes < N
    assert Counter(s.reviewer for s in ReviewStore(store_path).items(2)) == {"sim-b": N}


@pytest.mark.server
def test_unknown_cycle_and_missing_truth(server):
    base_url, _ = server
    with pytest.raises(RuntimeError, match="cycle 9"):
        review_queue_over_http(base_url, 9, {})
    with pytest.raises(ValueError, match="toy-0000000000000000"):
        review_queue_over_http(base_url, 3, {})
    with pytest.raises(ValueError, match="error_rate"):
        review_queue_over_http(base_url, 3, {}, error_rate=1.5)


@pytest.mark.server
def test_simulated_reviewers_complete_an_overlap_queue_and_break_its_ties(server):
    base_url, store_path = server
    truth = _queue(4)[1]
    done = review_until_complete(base_url, 4, truth, error_rate=0.3, seed=5)
    store = ReviewStore(store_path)
    assert store.progress(4).complete
    states = store.items(4)
    overlap = [s for s in states if s.item.reviews == 2]
    assert len(overlap) == N // 4 and all(len(s.reviewers) >= 2 for s in overlap)
    assert all(s.reviewers == ("simulated",) for s in states if s.item.reviews == 1)
    assert sum(done["simulated-2"].values()) == N // 4  # the second reviewer saw the overlap items only
    labels = store.reviewer_labels(4)
    ties = [s for s in overlap if len(s.reviewers) == 3]  # where the first two disagreed, a third decided
    assert ties and all(labels[s.item.sample_id]["simulated"] != labels[s.item.sample_id]["simulated-2"] for s in ties)
    assert all(s.state != "disputed" for s in states)
