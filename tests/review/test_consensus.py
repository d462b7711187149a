"""An item's state from the decisions in force on it: latest wins for one review, majority for overlap items."""

from __future__ import annotations

import pytest

from review.consensus import Vote, item_state, latest_per_reviewer
from schemas.review import QueueItem


def item(reviews: int = 2, predicted: str = "wrap-grasp") -> QueueItem:
    return QueueItem(cycle=0, position=0, sample_id="grab-0000000000000000", dataset="grab", object_category="mug",
                     predicted=predicted, confidence=0.9, reviews=reviews)


def vote(i: int, reviewer: str, kind: str = "accepted", label: str | None = None) -> Vote:
    return Vote(id=i, reviewer=reviewer, kind=kind, label=label, comment=f"c{i}", at=f"2026-01-01T00:00:{i:02d}+00:00")


def test_one_review_the_latest_decision_wins_whoever_made_it():
    state = item_state(item(1), [vote(2, "bob", "rejected"), vote(1, "ann")])
    assert (state.state, state.reviewer, state.comment, state.reviewers) == ("rejected", "bob", "c2", ("ann", "bob"))


def test_overlap_item_is_pending_until_its_second_reviewer():
    state = item_state(item(2), [vote(1, "ann")])
    assert (state.state, state.label, state.reviewers) == ("pending", None, ("ann",))
    # the same reviewer twice is still one voter: their later decision replaces the earlier one
    assert item_state(item(2), [vote(1, "ann"), vote(2, "ann", "rejected")]).state == "pending"


def test_two_reviewers_who_agree_decide_it():
    state = item_state(item(2), [vote(1, "ann"), vote(3, "bob")])
    assert (state.state, state.label, state.reviewer, state.comment) == ("accepted", "wrap-grasp", "ann, bob", "c3")
    relabelled = item_state(item(2), [vote(1, "ann", "relabelled", "lever"), vote(2, "bob", "relabelled", "lever")])
    assert (relabelled.state, relabelled.label) == ("relabelled", "lever")


@pytest.mark.parametrize("second", [("rejected", None), ("relabelled", "lever"), ("skipped", None)])
def test_two_reviewers_who_differ_dispute_it(second):
    state = item_state(item(2), [vote(1, "ann"), vote(2, "bob", *second)])
    assert (state.state, state.label, state.reviewer) == ("disputed", None, "ann, bob")


def test_relabels_to_different_classes_are_different_votes():
    state = item_state(item(2), [vote(1, "ann", "relabelled", "lever"), vote(2, "bob", "relabelled", "press")])
    assert state.state == "disputed"


def test_a_third_decision_makes_the_majority():
    votes = [vote(1, "ann"), vote(2, "bob", "rejected"), vote(3, "cat", "rejected")]
    state = item_state(item(2), votes)
    assert (state.state, state.reviewer, state.reviewers) == ("rejected", "bob, cat", ("ann", "bob", "cat"))
    # three different votes: still no majority (1 of 3 is not more than half)
    assert item_state(item(2), [*votes[:2], vote(3, "cat", "skipped")]).state == "disputed"


def test_latest_per_reviewer_keeps_commit_order_of_the_latest_votes():
    kept = latest_per_reviewer([vote(3, "ann", "rejected"), vote(1, "ann"), vote(2, "bob")])
    assert [(v.reviewer, v.id) for v in kept] == [("bob", 2), ("ann", 3)]


def test_no_votes_is_pending():
    assert item_state(item(1), []).state == "pending" and item_state(item(3), []).reviewers == ()
