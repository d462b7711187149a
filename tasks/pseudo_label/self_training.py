"""Self-training bookkeeping as plain functions: which labels a cycle merges, what is still unlabelled, the
low-confidence fallback, and the per-cycle table.

Merge rule of one cycle, after its review:
- a reviewed item that was rejected never joins, nor one its reviewers dispute (no majority: a person doubted it);
- a reviewed item that was relabelled joins with the reviewer's class (origin `relabelled`), gate or not: a person
  chose that class;
- every other accepted pseudo-label of the cycle (reviewed and accepted, skipped, or not in the queue) joins with
  its predicted class (origin `validated`) only when the cycle's review passed the quality gate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from schemas.affordance import AFFORDANCES
from schemas.review import ItemState
from schemas.rows import AffordanceLabel, PseudoLabel, ReviewDecision
from tasks.pseudo_label.label_quality import Interval
from tasks.pseudo_label.report import markdown_table

STAGE_VERSION = "self-training-1"


def merge_cycle(labels: Sequence[PseudoLabel], review: Sequence[ItemState] | None, gate_passed: bool
                ) -> list[AffordanceLabel]:
    """Labels of one cycle that join the training set (see the module docstring). review: the final item
    states of the cycle's queue, or None when there was no review (timed out): then nothing joins."""
    if review is None:
        return []
    decided = {state.item.sample_id: state for state in review}
    merged = []
    for label in labels:
        if not label.accepted:
            continue
        state = decided.get(label.sample_id)
        if state is not None and state.state in ("rejected", "disputed"):
            continue
        if state is not None and state.state == "relabelled":
            merged.append(_final(label, state.label, "relabelled"))
        elif gate_passed:
            merged.append(_final(label, label.predicted, "validated"))
    return merged


def decision_rows(states: Sequence[ItemState]) -> list[ReviewDecision]:
    """The final item states of a cycle as rows of the `review` table."""
    return [ReviewDecision(sample_id=s.item.sample_id, stage_version=STAGE_VERSION, cycle=s.item.cycle,
                           dataset=s.item.dataset, object_category=s.item.object_category, predicted=s.item.predicted,
                           confidence=s.item.confidence, state=s.state, label=s.label, reviewer=s.reviewer,
                           comment=s.comment, decided_at=s.decided_at) for s in states]


def low_confidence(labels: Iterable[PseudoLabel], merged: set[str]) -> list[AffordanceLabel]:
    """The model's label, flagged low_confidence, for every sample of `labels` not in `merged`."""
    return [_final(label, label.predicted, "low_confidence") for label in labels if label.sample_id not in merged]


def _final(label: PseudoLabel, affordance: str | None, origin: str) -> AffordanceLabel:
    if affordance is None:
        raise ValueError(f"sample {label.sample_id}: relabelled without a class")
    index = AFFORDANCES.index(affordance)
    return AffordanceLabel(sample_id=label.sample_id, stage_version=STAGE_VERSION, dataset=label.dataset,
                           affordance=affordance, origin=origin, cycle=label.cycle,
                           confidence=float(label.probabilities[index]), checkpoint_sha256=label.checkpoint_sha256)


@dataclass
class CycleRecord:
    """One row of the per-cycle table. Rates are fractions; reviewed_* are None when nothing was reviewed."""

    cycle: int
    unlabelled_before: int
    accepted: int
    acceptance_rate: float
    val_accuracy: float
    test_accuracy: float
    reviewed: int
    reviewed_accuracy: Interval | None
    gate_passed: bool | None
    merged: int
    coverage: float
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        row = asdict(self)
        interval = self.reviewed_accuracy
        row["reviewed_accuracy"] = None if interval is None else interval.estimate
        row["reviewed_low"] = None if interval is None else interval.low
        row["reviewed_high"] = None if interval is None else interval.high
        return row


def cycle_table(records: Sequence[CycleRecord]) -> str:
    """Markdown table of the cycles: coverage, acceptance, validation accuracy, reviewed accuracy and interval."""
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}"

    rows = []
    for r in records:
        interval = r.reviewed_accuracy
        reviewed = ("n/a" if interval is None
                    else f"{pct(interval.estimate)} [{pct(interval.low)}, {pct(interval.high)}]")
        gate = {None: "n/a", True: "passed", False: "failed"}[r.gate_passed]
        rows.append([r.cycle, r.unlabelled_before, f"{r.accepted} ({pct(r.acceptance_rate)} %)", pct(r.val_accuracy),
                     pct(r.test_accuracy), r.reviewed, reviewed, gate, r.merged, pct(r.coverage), r.note or ""])
    return markdown_table(["cycle", "unlabelled", "accepted by rule", "val acc %", "test acc %", "reviewed",
                           "reviewed acc % [95 % CI]", "gate", "merged", "coverage %", "note"], rows)
