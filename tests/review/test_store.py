"""The review store: idempotent queues, an append-only trail with undo, concurrent reviewers and crash safety."""

from __future__ import annotations

import multiprocessing
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from review.store import ReviewStore
from schemas.review import DecisionIn, QueueItem

ROOT = Path(__file__).resolve().parents[2]


def sample_id(i: int) -> str:
    return f"grab-{i:016x}"


def queue(n: int, cycle: int = 0, predicted: str = "wrap-grasp", category: str = "mug") -> list[QueueItem]:
    return [QueueItem(cycle=cycle, position=i, sample_id=sample_id(i), dataset="grab", object_category=category,
                      predicted=predicted, confidence=0.9) for i in range(n)]


def decision(i: int, kind: str = "accepted", reviewer: str = "alice", **extra: str) -> DecisionIn:
    return DecisionIn(sample_id=sample_id(i), decision=kind, reviewer=reviewer, **extra)


@pytest.fixture
def store(tmp_path: Path) -> ReviewStore:
    store = ReviewStore(tmp_path / "review" / "review.sqlite")
    store.create_queue(0, queue(5))
    return store


# --------------------------------------------------------------------------------------------------- queues


def test_new_store_is_a_wal_database_with_the_queue(store):
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.cycles() == [0]
    assert [s.item.position for s in store.items(0)] == [0, 1, 2, 3, 4]
    assert {s.state for s in store.items(0)} == {"pending"}
    assert store.flow_run_id(0) is None


def test_create_queue_again_with_the_same_items_is_a_no_op_that_records_the_flow_run(store):
    store.decide(0, decision(0))
    store.create_queue(0, queue(5), flow_run_id="run-1")
    assert store.flow_run_id(0) == "run-1"
    assert len(store.items(0)) == 5 and len(store.trail(0)) == 1
    assert store.item(0, 0).state == "accepted"  # the decision survives the retried create
    store.create_queue(0, queue(5))
    assert store.flow_run_id(0) == "run-1"  # not given: kept
    store.set_flow_run(0, "run-2")
    assert store.flow_run_id(0) == "run-2"


@pytest.mark.parametrize("items", [queue(4), queue(6), list(reversed(queue(5)))], ids=["fewer", "more", "reordered"])
def test_create_queue_with_other_items_for_an_existing_cycle_names_the_cycle(store, items):
    items = [item.model_copy(update={"position": i}) for i, item in enumerate(items)]
    with pytest.raises(ValueError, match="cycle 0 already has a review queue"):
        store.create_queue(0, items)


def test_create_queue_checks_cycle_positions_and_duplicates(store):
    with pytest.raises(ValueError, match="belongs to cycle 0, not to cycle 1"):
        store.create_queue(1, queue(3, cycle=0))
    with pytest.raises(ValueError, match="position 1; expected 0"):
        store.create_queue(1, queue(3, cycle=1)[1:])
    items = queue(2, cycle=1)
    with pytest.raises(ValueError, match="appears twice"):
        store.create_queue(1, [items[0], items[0].model_copy(update={"position": 1})])
    assert store.cycles() == [0]  # nothing half-written


def test_unknown_cycle_position_and_sample_are_named(store):
    with pytest.raises(KeyError, match="cycle 7"):
        store.items(7)
    with pytest.raises(KeyError, match="cycle 7"):
        store.set_flow_run(7, "run")
    with pytest.raises(KeyError, match=r"position 5 .* cycle 0 \(positions 0..4\)"):
        store.item(0, 5)
    with pytest.raises(KeyError, match=f"{sample_id(99)}.*cycle 0"):
        store.decide(0, decision(99))
    with pytest.raises(ValueError, match="reviewer 'bad name!'"):
        store.undo(0, "bad name!")


# ------------------------------------------------------------------------------------------ decide and undo


def test_decide_undo_undo_again_and_redo_leave_the_whole_trail(store):
    first = store.decide(0, decision(0))
    assert (first.state, first.label, first.reviewer) == ("accepted", "wrap-grasp", "alice")
    assert datetime.fromisoformat(first.decided_at).utcoffset() == timedelta(0)
    second = store.decide(0, decision(1, "relabelled", label="lift", comment="it is lifted"))
    assert (second.state, second.label, second.comment) == ("relabelled", "lift", "it is lifted")

    assert store.undo(0, "alice").model_dump(include={"state", "label"}) == {"state": "pending", "label": None}
    assert store.item(0, 1).state == "pending"
    undone = store.undo(0, "alice")  # again: the decision before
    assert (undone.item.sample_id, undone.state) == (sample_id(0), "pending")
    assert store.undo(0, "alice") is None  # nothing left to undo
    redo = store.decide(0, decision(0, "rejected"))
    assert (redo.state, redo.label) == ("rejected", None)

    trail = store.trail(0)
    assert [(r.id, r.sample_id, r.kind, r.undoes) for r in trail] == [
        (1, sample_id(0), "accepted", None),
        (2, sample_id(1), "relabelled", None),
        (3, sample_id(1), "undo", 2),
        (4, sample_id(0), "undo", 1),
        (5, sample_id(0), "rejected", None),
    ]
    assert store.progress(0).by_state == {"pending": 4, "accepted": 0, "rejected": 1, "relabelled": 0, "skipped": 0,
                                          "disputed": 0}


def test_undo_brings_back_the_earlier_decision_on_the_same_item(store):
    store.decide(0, decision(2, "accepted"))
    store.decide(0, decision(2, "skipped"))
    restored = store.undo(0, "alice")
    assert (restored.state, restored.label) == ("accepted", "wrap-grasp")


def test_two_reviewers_on_one_item_the_later_wins_and_counts_once(store):
    store.decide(0, decision(0, "accepted", reviewer="alice"))
    state = store.decide(0, decision(0, "rejected", reviewer="bob"))
    assert (state.state, state.reviewer) == ("rejected", "bob")
    progress = store.progress(0)
    assert (progress.total, progress.decided) == (5, 1)
    assert (progress.by_state["rejected"], progress.by_state["accepted"]) == (1, 0)
    # alice's undo cancels her own decision only: bob's later one stays in force ...
    assert store.undo(0, "alice").state == "rejected"
    # ... and bob's undo finds alice's already cancelled, so the item is pending again.
    assert store.undo(0, "bob").state == "pending"
    assert store.undo(0, "alice") is None and store.undo(0, "bob") is None
    assert len(store.trail(0)) == 4


def test_progress_and_result_count_items(store):
    for i, kind in enumerate(["accepted", "rejected", "skipped", "accepted"]):
        store.decide(0, decision(i, kind))
    store.decide(0, decision(0, "accepted", reviewer="bob"))  # a second decision on a decided item
    progress = store.progress(0)
    assert (progress.total, progress.decided, progress.complete) == (5, 4, False)
    assert progress.by_state == {"pending": 1, "accepted": 2, "rejected": 1, "relabelled": 0, "skipped": 1,
                                "disputed": 0}
    store.decide(0, decision(4, "relabelled", label="press"))
    assert store.progress(0).complete
    result = store.result(0)
    assert result.cycle == 0 and [s.state for s in result.items] == [
        "accepted", "rejected", "skipped", "accepted", "relabelled"]
    assert [s.label for s in result.items] == ["wrap-grasp", None, None, "wrap-grasp", "press"]


def test_next_pending_goes_forward_and_wraps_around(store):
    for i in (0, 2, 3):
        store.decide(0, decision(i))
    assert store.next_pending(0).item.position == 1
    assert store.next_pending(0, after=1).item.position == 4
    assert store.next_pending(0, after=4).item.position == 1  # wrapped
    for i in (1, 4):
        store.decide(0, decision(i))
    assert store.next_pending(0) is None


def test_markup_is_stored_verbatim(tmp_path):
    store = ReviewStore(tmp_path / "review.sqlite")
    markup = "<script>alert('x')</script> & \"quotes\"; DROP TABLE decisions; --"
    store.create_queue(0, queue(1, category=markup))
    state = store.decide(0, decision(0, "rejected", comment=markup))
    assert state.item.object_category == markup and state.comment == markup
    assert store.trail(0)[0].comment == markup


def test_the_trail_cannot_be_updated_or_deleted(store):
    store.decide(0, decision(0))
    with sqlite3.connect(store.path) as conn:
        for statement in ("UPDATE decisions SET kind = 'rejected'", "DELETE FROM decisions"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(statement)
    assert [r.kind for r in store.trail(0)] == ["accepted"]


def test_a_reopened_store_sees_everything(store):
    store.decide(0, decision(3, "skipped", comment="blurry"))
    reopened = ReviewStore(store.path)
    assert reopened.item(0, 3).model_dump(include={"state", "comment"}) == {"state": "skipped", "comment": "blurry"}


# ----------------------------------------------------------------------------------------------- concurrency

N_CONCURRENT = 50


def _decide_every_item(path: str, reviewer: str, kind: str, start: threading.Barrier) -> None:
    store = ReviewStore(path)
    start.wait()
    for i in range(N_CONCURRENT):
        store.decide(0, decision(i, kind, reviewer=reviewer))
        # A reviewer's pause between clicks. Without it one writer can finish all 50 while the other sits in
        # SQLite's busy back-off, and the two would never interleave.
        time.sleep(0.005)


def _assert_two_reviewers_on_every_item(store: ReviewStore) -> None:
    """No lost rows, each item counted once, and each item's state is the kind of its last row in the trail."""
    trail = store.trail(0)
    assert len(trail) == 2 * N_CONCURRENT
    switches = sum(a.reviewer != b.reviewer for a, b in pairwise(trail))
    assert switches >= 2, "the two writers never interleaved: the test did not test concurrency"
    assert sorted(r.reviewer for r in trail) == ["alice"] * N_CONCURRENT + ["bob"] * N_CONCURRENT
    last = {r.sample_id: r.kind for r in trail}
    assert {s.item.sample_id: s.state for s in store.items(0)} == last
    progress = store.progress(0)
    assert (progress.total, progress.decided) == (N_CONCURRENT, N_CONCURRENT)
    assert progress.by_state["accepted"] + progress.by_state["rejected"] == N_CONCURRENT


def test_two_threads_decide_concurrently(tmp_path):
    store = ReviewStore(tmp_path / "review.sqlite")
    store.create_queue(0, queue(N_CONCURRENT))
    start = threading.Barrier(2)
    threads = [threading.Thread(target=_decide_every_item, args=(str(store.path), who, kind, start))
               for who, kind in (("alice", "accepted"), ("bob", "rejected"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    _assert_two_reviewers_on_every_item(store)


@pytest.mark.slow
def test_two_processes_decide_concurrently(tmp_path):
    store = ReviewStore(tmp_path / "review.sqlite")
    store.create_queue(0, queue(N_CONCURRENT))
    context = multiprocessing.get_context("spawn")  # no fork of a threaded pytest process
    start = context.Barrier(2)
    processes = [context.Process(target=_decide_every_item, args=(str(store.path), who, kind, start))
                 for who, kind in (("alice", "accepted"), ("bob", "rejected"))]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0]
    _assert_two_reviewers_on_every_item(store)


# Decides item after item and prints each sample_id once decide() has returned, until it is killed.
_CRASHING_REVIEWER = """
import sys
from schemas.review import DecisionIn
from review.store import ReviewStore
store = ReviewStore(sys.argv[1])
for i in range(int(sys.argv[2])):
    state = store.decide(0, DecisionIn(sample_id=f"grab-{i:016x}", decision="accepted", reviewer="crash"))
    print(state.item.sample_id, flush=True)
"""


@pytest.mark.slow
def test_every_returned_decision_survives_sigkill(tmp_path):
    store = ReviewStore(tmp_path / "review.sqlite")
    total = 2000  # far more than it gets through before the kill
    store.create_queue(0, queue(total))
    proc = subprocess.Popen([sys.executable, "-c", _CRASHING_REVIEWER, str(store.path), str(total)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    printed = []
    for line in proc.stdout:
        printed.append(line.strip())
        if len(printed) == 25:
            break
    proc.send_signal(signal.SIGKILL)  # mid-stream: it is deciding as fast as it can
    rest, stderr = proc.communicate(timeout=30)
    printed += rest.split()  # lines it printed before dying: those decide() calls returned too
    assert proc.returncode == -signal.SIGKILL, stderr
    assert len(printed) < total, "the writer finished before it was killed"

    reopened = ReviewStore(store.path)
    with sqlite3.connect(reopened.path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    written = [r.sample_id for r in reopened.trail(0)]
    # Every returned decision is there, in order; at most one more committed before its print was reached.
    assert written[: len(printed)] == printed
    assert len(written) - len(printed) in (0, 1)
    assert reopened.progress(0).decided == len(written)


# ---------------------------------------------------------------------------------------------- overlap items


@pytest.fixture
def overlap_store(tmp_path: Path) -> ReviewStore:
    """Five items; items 1 and 3 ask for two reviewers."""
    store = ReviewStore(tmp_path / "review.sqlite")
    store.create_queue(0, [item.model_copy(update={"reviews": 2 if item.position in (1, 3) else 1})
                           for item in queue(5)])
    return store


def test_an_overlap_item_is_served_to_a_second_reviewer_only(overlap_store):
    store = overlap_store
    for i in range(5):
        store.decide(0, decision(i, reviewer="alice"))
    progress = store.progress(0)
    assert (progress.decided, progress.by_state["pending"], progress.complete) == (3, 2, False)
    assert store.next_pending(0, reviewer="alice") is None  # nothing left for alice ...
    assert store.next_pending(0, reviewer="bob").item.position == 1  # ... items 1 and 3 wait for someone else
    assert store.next_pending(0, after=1, reviewer="bob").item.position == 3


def test_a_disputed_item_keeps_the_queue_open_until_a_third_decision(overlap_store):
    store = overlap_store
    for i in range(5):
        store.decide(0, decision(i, reviewer="alice"))
    assert store.decide(0, decision(1, reviewer="bob")).state == "accepted"
    disputed = store.decide(0, decision(3, "rejected", reviewer="bob"))
    assert (disputed.state, disputed.reviewer) == ("disputed", "alice, bob")
    progress = store.progress(0)
    assert (progress.decided, progress.by_state["disputed"], progress.complete) == (4, 1, False)
    assert store.next_pending(0, reviewer="bob") is None
    assert store.next_pending(0, reviewer="carol").item.position == 3
    assert store.decide(0, decision(3, "rejected", reviewer="carol")).state == "rejected"
    assert store.progress(0).complete
    # carol's undo reopens the dispute
    assert store.undo(0, "carol").state == "disputed" and not store.progress(0).complete


def test_a_store_written_before_overlap_items_gets_the_reviews_column(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:  # the items table as stores had it before the `reviews` column
        conn.executescript("""
            CREATE TABLE queues (cycle INTEGER PRIMARY KEY, flow_run_id TEXT, created_at TEXT NOT NULL);
            CREATE TABLE items (cycle INTEGER NOT NULL REFERENCES queues(cycle), position INTEGER NOT NULL,
                sample_id TEXT NOT NULL, dataset TEXT NOT NULL, object_category TEXT NOT NULL,
                predicted TEXT NOT NULL, confidence REAL NOT NULL, PRIMARY KEY (cycle, position),
                UNIQUE (cycle, sample_id));
            INSERT INTO queues VALUES (0, NULL, '2026-01-01T00:00:00+00:00');
            INSERT INTO items VALUES (0, 0, 'grab-0000000000000000', 'grab', 'mug', 'wrap-grasp', 0.9);
        """)
    store = ReviewStore(path)
    [state] = store.items(0)
    assert (state.item.reviews, state.state) == (1, "pending")
    assert store.decide(0, decision(0)).state == "accepted"
