"""The self_training flow end to end on small synthetic datasets: a real review server and simulated reviewer,
a review that times out, and a resume from the Prefect UI's form (no decisions in the input)."""

import json
import threading
import time

import pytest

from flows.self_training import self_training
from review.store import ReviewStore
from review.truth import truth_for
from schemas.review import DecisionIn
from schemas.rows import AffordanceLabel, PseudoLabel, ReviewDecision, Sample
from tasks.ingest.formats import FORMATS
from tasks.ingest.pipeline import ingest
from tasks.store.read import open_table
from tasks.synth.datasets import synthesize_datasets

pytestmark = [pytest.mark.server, pytest.mark.slow]
TARGETS = [fmt for fmt in FORMATS if fmt != "affordpose"]


@pytest.fixture
def world(tmp_path):
    summary = synthesize_datasets(tmp_path / "datasets", objects_per_category={"affordpose": 2},
                                  grasps_per_part={"affordpose": 2}, categories=["mug", "knife", "bottle"], steps=5)
    for fmt in FORMATS:
        ingest(fmt, summary.root / fmt, tmp_path / "tables" / fmt, summary.mano_root, num_points=256)
    targets = [tmp_path / "tables" / fmt for fmt in TARGETS]
    samples = [row for table in targets for row in open_table(table, Sample).iter_rows()]
    return tmp_path, summary, targets, samples


def _run(root, summary, targets, **options):
    # k = 0: even a 2-epoch model has labels the rule accepts, so each cycle has something to review.
    return self_training(data_root=str(root), labelled_table=str(root / "tables" / "affordpose"),
                         target_tables=[str(t) for t in targets], mano_root=str(summary.mano_root), epochs=2,
                         epochs_per_cycle=1, k=0.0, queue_size=6, **options)


def test_simulated_review_labels_every_target_with_the_reviewers_answers(prefect_harness, world):
    root, summary, targets, samples = world
    report = _run(root, summary, targets, max_cycles=3, reviewer="simulated", simulated_error_rate=0.0,
                  truth_root=str(summary.root), min_lower=0.0, review_overlap=0.5)
    truth = truth_for(summary.root, samples)
    final = {r.sample_id: r for r in open_table(root / "tables" / "affordance_labels", AffordanceLabel).iter_rows()}
    assert set(final) == set(truth)  # 100 % coverage
    store = ReviewStore(root / "review" / "review.sqlite")
    reviewed = [state for cycle in store.cycles() for state in store.result(cycle).items]
    assert reviewed and all(state.state in ("accepted", "relabelled") for state in reviewed)
    # half of each queue asked for a second reviewer, who agreed (no mistakes): no third one was needed
    twice = [state for state in reviewed if state.item.reviews == 2]
    assert twice and all(state.reviewers == ("simulated", "simulated-2") for state in twice)
    assert all(state.reviewers == ("simulated",) for state in reviewed if state.item.reviews == 1)
    for state in reviewed:  # an error-free reviewer: every reviewed label that joined is the true class
        assert state.label == truth[state.item.sample_id]
        assert final[state.item.sample_id].affordance == truth[state.item.sample_id]
    exported = list(open_table(root / "tables" / "review", ReviewDecision).iter_rows())
    assert sorted((r.cycle, r.sample_id, r.state) for r in exported) == sorted(
        (s.item.cycle, s.item.sample_id, s.state) for s in reviewed)
    cycles = json.loads((root / "self_training" / "cycles.json").read_text())
    assert [c["cycle"] for c in cycles] == list(range(len(cycles))) and cycles[0]["reviewed"] == len(
        store.result(0).items)
    assert "## Self-training" in report and "coverage" in report
    # The run's state is in tables: the merged labels are exactly the final ones a person or the gate let in,
    # and the labels table holds one row per (cycle, sample) each cycle labelled (samples merged earlier skipped)
    merged = {r.sample_id: r for r in open_table(root / "self_training" / "merged_labels", AffordanceLabel).iter_rows()}
    assert {s: (r.affordance, r.origin) for s, r in merged.items()} == {
        s: (r.affordance, r.origin) for s, r in final.items() if r.origin in ("validated", "relabelled")}
    labelled = open_table(root / "tables" / "labels", PseudoLabel).read(["cycle", "sample_id"]).to_pydict()
    assert [sum(c == cycle["cycle"] for c in labelled["cycle"]) for cycle in cycles] == [
        cycle["unlabelled_before"] for cycle in cycles]
    later = {s for c, s in zip(labelled["cycle"], labelled["sample_id"], strict=True) if c > 0}
    assert not later & {s for s, r in merged.items() if r.cycle == 0}  # merged in cycle 0: not labelled again
    # A re-run finds every queue already reviewed in the store: it does not wait for anyone, and merges the same.
    again = _run(root, summary, targets, max_cycles=3, reviewer="web", review_timeout_s=5, min_lower=0.0)
    assert "timed out" not in again
    rerun = {r.sample_id: r for r in open_table(root / "tables" / "affordance_labels", AffordanceLabel).iter_rows()}
    assert {s: (r.affordance, r.origin) for s, r in rerun.items()} == {
        s: (r.affordance, r.origin) for s, r in final.items()}


def test_a_review_that_times_out_merges_nothing(prefect_harness, world):
    root, summary, targets, samples = world
    report = _run(root, summary, targets, max_cycles=2, reviewer="web", review_timeout_s=3)
    assert "review timed out after 3 s" in report
    final = list(open_table(root / "tables" / "affordance_labels", AffordanceLabel).iter_rows())
    assert len(final) == len(samples) and {r.origin for r in final} == {"low_confidence"}


def test_resume_from_the_prefect_ui_form_reads_the_decisions_from_the_store(prefect_harness, world):
    from prefect.flow_runs import resume_flow_run

    root, summary, targets, _ = world
    store_path = root / "review" / "review.sqlite"
    rejected: list[str] = []

    def review_then_resume():  # what a person does: decide in the app, then press Resume in the Prefect UI
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if store_path.exists() and 0 in ReviewStore(store_path).cycles():
                break
            time.sleep(0.5)
        store = ReviewStore(store_path)
        for state in store.items(0):
            store.decide(0, DecisionIn(sample_id=state.item.sample_id, decision="rejected", reviewer="ui"))
            rejected.append(state.item.sample_id)
        time.sleep(1)  # the flow records its run id with the queue, then pauses
        resume_flow_run(store.flow_run_id(0), run_input={"cycle": 0})

    worker = threading.Thread(target=review_then_resume, daemon=True)
    worker.start()
    _run(root, summary, targets, max_cycles=1, reviewer="web", review_timeout_s=300)
    worker.join(timeout=10)
    assert rejected
    labels = {r.sample_id: r for r in open_table(root / "tables" / "labels", PseudoLabel).iter_rows()}
    final = {r.sample_id: r for r in open_table(root / "tables" / "affordance_labels", AffordanceLabel).iter_rows()}
    for sample_id in rejected:  # rejected by the reviewer: never validated, the model's label flagged instead
        assert final[sample_id].origin == "low_confidence" and labels[sample_id].accepted
