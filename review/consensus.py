"""An item's state from the decisions in force on it, for items one reviewer decides and for the overlap share
that several reviewers must decide.

- One review (``item.reviews == 1``): the latest decision in force wins, whoever made it (a second reviewer who
  changes an item overrides the first, as a correction).
- Several reviews (``item.reviews == k >= 2``): each reviewer's latest decision in force is their vote; a vote is
  the decision with its label (accept, reject, relabel to X, skip). With fewer than k voters the item is
  pending. With k or more, the vote that more than half of the voters cast decides the state; without such a
  majority the item is `disputed`: unresolved, served again to a reviewer who has not decided it, and not
  counted by the quality gate, until a further decision makes a majority.

"Latest" is commit order (the store's row ids), never the clock.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.review import ItemState, QueueItem


@dataclass(frozen=True)
class Vote:
    """One decision in force: a row of the audit trail that no undo cancelled."""

    id: int
    reviewer: str
    kind: str  # accepted, rejected, relabelled or skipped
    label: str | None  # the class of a relabel, else None
    comment: str
    at: str


def latest_per_reviewer(votes: Sequence[Vote]) -> list[Vote]:
    """Each reviewer's latest vote (highest id), in the order of those ids."""
    latest: dict[str, Vote] = {}
    for vote in sorted(votes, key=lambda v: v.id):
        latest.pop(vote.reviewer, None)  # re-inserted: dict order follows the latest id
        latest[vote.reviewer] = vote
    return list(latest.values())


def item_state(item: QueueItem, votes: Sequence[Vote]) -> ItemState:
    """The state of `item` given every decision in force on it (any order; see the module docstring)."""
    if not votes:
        return ItemState(item=item, state="pending")
    ballots = latest_per_reviewer(votes)
    voters = tuple(sorted(vote.reviewer for vote in ballots))
    if item.reviews == 1:
        return _decided(item, [max(votes, key=lambda v: v.id)], voters)
    if len(ballots) < item.reviews:
        return ItemState(item=item, state="pending", reviewers=voters)
    tally = Counter((vote.kind, vote.label) for vote in ballots)
    choice, count = tally.most_common(1)[0]
    if 2 * count <= len(ballots):  # no strict majority (a tie at the top included)
        last = ballots[-1]
        return ItemState(item=item, state="disputed", reviewer=", ".join(voters), comment=last.comment,
                         decided_at=last.at, reviewers=voters)
    return _decided(item, [vote for vote in ballots if (vote.kind, vote.label) == choice], voters)


def _decided(item: QueueItem, standing: list[Vote], voters: tuple[str, ...]) -> ItemState:
    """The state the `standing` votes (all the same decision, latest last) give; label = the class it trains
    with (the predicted one when accepted, the reviewer's when relabelled)."""
    last = standing[-1]
    label = {"accepted": item.predicted, "relabelled": last.label}.get(last.kind)
    names = ", ".join(sorted({vote.reviewer for vote in standing}))
    return ItemState(item=item, state=last.kind, label=label, reviewer=names, comment=last.comment,
                     decided_at=last.at, reviewers=voters)
