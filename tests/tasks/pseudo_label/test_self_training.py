import numpy as np
import pytest

from schemas.affordance import AFFORDANCES
from schemas.review import ItemState, QueueItem
from schemas.rows import PseudoLabel
from tasks.pseudo_label.label_quality import wilson_interval
from tasks.pseudo_label.self_training import CycleRecord, cycle_table, low_confidence, merge_cycle

SHA = "a" * 64


def _label(i: int, predicted: str = "lift", accepted: bool = True, cycle: int = 0) -> PseudoLabel:
    probabilities = np.full(9, 0.02, np.float32)
    probabilities[AFFORDANCES.index(predicted)] = 0.84
    return PseudoLabel(sample_id=f"oakink-{i:016x}", stage_version="t", cycle=cycle, dataset="oakink",
                       predicted=predicted, probabilities=probabilities, confidence=0.84, score=0.84, threshold=0.5,
                       accepted=accepted, rule="class_conditional(k=3)", checkpoint_sha256=SHA)


def _state(label: PseudoLabel, state: str, position: int, new_label: str | None = None) -> ItemState:
    item = QueueItem(cycle=label.cycle, position=position, sample_id=label.sample_id, dataset="oakink",
                     object_category="mug", predicted=label.predicted, confidence=label.confidence)
    final = {"accepted": label.predicted, "relabelled": new_label}.get(state)
    return ItemState(item=item, state=state, label=final, reviewer="ann" if state != "pending" else None)


@pytest.fixture
def cycle():
    labels = [_label(0), _label(1), _label(2), _label(3), _label(4, accepted=False), _label(5)]
    review = [_state(labels[0], "accepted", 0), _state(labels[1], "rejected", 1),
              _state(labels[2], "relabelled", 2, "twist"), _state(labels[3], "skipped", 3)]
    return labels, review


def test_gate_passed_merges_accepted_and_relabelled_never_rejected_or_unaccepted(cycle):
    labels, review = cycle
    merged = {m.sample_id: m for m in merge_cycle(labels, review, gate_passed=True)}
    assert set(merged) == {labels[i].sample_id for i in (0, 2, 3, 5)}
    assert merged[labels[2].sample_id].affordance == "twist" and merged[labels[2].sample_id].origin == "relabelled"
    assert merged[labels[2].sample_id].confidence == pytest.approx(0.02)  # the model's probability of "twist"
    assert {merged[labels[i].sample_id].origin for i in (0, 3, 5)} == {"validated"}


def test_gate_failed_keeps_only_the_reviewers_labels(cycle):
    labels, review = cycle
    merged = merge_cycle(labels, review, gate_passed=False)
    assert [(m.sample_id, m.affordance, m.origin) for m in merged] == [(labels[2].sample_id, "twist", "relabelled")]


def test_no_review_merges_nothing(cycle):
    labels, _ = cycle
    assert merge_cycle(labels, None, gate_passed=True) == []


def test_low_confidence_covers_exactly_the_unmerged(cycle):
    labels, review = cycle
    merged = {m.sample_id for m in merge_cycle(labels, review, gate_passed=True)}
    rest = low_confidence(labels, merged)
    assert {r.sample_id for r in rest} == {labels[1].sample_id, labels[4].sample_id}
    assert {r.origin for r in rest} == {"low_confidence"} and {r.affordance for r in rest} == {"lift"}


def test_cycle_table_prints_interval_and_gate():
    records = [CycleRecord(0, 95, 90, 90 / 95, 0.98, 1.0, 88, wilson_interval(86, 88), True, 89, 89 / 95),
               CycleRecord(1, 6, 0, 0.0, 0.98, 1.0, 0, None, None, 0, 89 / 95, note="no label passed")]
    table = cycle_table(records).splitlines()
    assert len(table) == 4
    assert "| 0 | 95 | 90 (94.7 %) | 98.0 | 100.0 | 88 | 97.7 [92.1, 99.4] | passed | 89 | 93.7 |" in table[2]
    assert table[3].endswith("| n/a | n/a | 0 | 93.7 | no label passed |")


def test_decision_rows_carry_the_final_states(cycle):
    from tasks.pseudo_label.self_training import decision_rows

    _, review = cycle
    rows = decision_rows(review)
    assert [(r.sample_id, r.state, r.label) for r in rows] == [
        (s.item.sample_id, s.state, s.label) for s in review]
    assert rows[2].label == "twist" and rows[1].label is None and {r.cycle for r in rows} == {0}


def test_a_disputed_item_never_joins_even_when_the_gate_passes(cycle):
    labels, review = cycle
    review = [*review, _state(labels[5], "disputed", 4)]
    merged = {m.sample_id for m in merge_cycle(labels, review, gate_passed=True)}
    assert labels[5].sample_id not in merged and labels[0].sample_id in merged
