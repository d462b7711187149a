"""Review queue items and reviewer decisions: what the web app shows and what a person decides.

A decision never overwrites another: every click is a new row in the audit trail, and an item's state is its
latest effective decision (an `undo` cancels the decision it names, which brings back the one before it).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.affordance import AffordanceName

Decision = Literal["accepted", "rejected", "relabelled", "skipped"]
ItemStateName = Literal["pending", "accepted", "rejected", "relabelled", "skipped", "disputed"]
DECISIONS: tuple[str, ...] = ("accepted", "rejected", "relabelled", "skipped")
REVIEWER_PATTERN = r"^[A-Za-z0-9_.@\-]{1,64}$"
MAX_REVIEWS = 5  # reviewers one item can ask for: two for the overlap share, more only by hand


class QueueItem(BaseModel):
    """One pseudo-label put in front of a reviewer. position: 0-based order in the queue of its cycle."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cycle: int = Field(ge=0)
    position: int = Field(ge=0)
    sample_id: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    object_category: str = Field(min_length=1, description="Shown as text, never as markup.")
    predicted: AffordanceName
    confidence: float = Field(ge=0.0, le=1.0)
    reviews: int = Field(1, ge=1, le=MAX_REVIEWS,
                         description="Reviewers who must decide it: 1, or 2 for the overlap share that measures "
                                     "how far reviewers agree (review/consensus.py).")


class DecisionIn(BaseModel):
    """A reviewer's decision on one item, as the web app and the simulated reviewer send it."""

    model_config = ConfigDict(extra="forbid")

    sample_id: str = Field(min_length=1)
    decision: Decision
    label: AffordanceName | None = Field(None, description="The correct class; required for relabelled only.")
    reviewer: str = Field(pattern=REVIEWER_PATTERN)
    comment: str = Field("", max_length=2000)

    @model_validator(mode="after")
    def _label_only_when_relabelled(self) -> DecisionIn:
        if self.decision == "relabelled" and self.label is None:
            raise ValueError("decision 'relabelled' needs a label (one of the 9 classes)")
        if self.decision != "relabelled" and self.label is not None:
            raise ValueError(f"decision {self.decision!r} takes no label; use 'relabelled' to change the class")
        return self


class ItemState(BaseModel):
    """An item with its current state. label: the class the item joins training with (predicted when
    accepted, the reviewer's when relabelled), None otherwise. An item several reviewers must decide is
    `disputed` while their decisions have no majority (review/consensus.py); `reviewer` then names every one of
    them, otherwise the reviewer(s) whose decision stands. reviewers: everyone with a decision in force on it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: QueueItem
    state: ItemStateName
    label: AffordanceName | None = None
    reviewer: str | None = None
    comment: str = ""
    decided_at: str | None = Field(None, description="ISO-8601 UTC time of the effective decision.")
    reviewers: tuple[str, ...] = ()


class DecisionRecord(BaseModel):
    """One row of the audit trail. kind 'undo' cancels decision `undoes` (an id of an earlier row)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    cycle: int
    sample_id: str
    kind: Literal["accepted", "rejected", "relabelled", "skipped", "undo"]
    label: AffordanceName | None
    reviewer: str
    comment: str
    at: str
    undoes: int | None = None


class Progress(BaseModel):
    """decided = items whose state is neither pending nor disputed (skipped counts: the reviewer looked at it;
    a disputed item waits for a further decision, so the queue is not complete while one is left)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cycle: int
    total: int
    decided: int
    by_state: dict[str, int]

    @property
    def complete(self) -> bool:
        return self.total > 0 and self.decided == self.total


class ReviewResult(BaseModel):
    """What resumes the paused self-training flow: the cycle and its final item states (one per item)."""

    model_config = ConfigDict(extra="forbid")

    cycle: int = Field(ge=0)
    items: list[ItemState]
