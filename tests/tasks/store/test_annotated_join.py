"""The annotated join: every labelled sample joins with its instruction and map, or is a reject with a reason."""

import numpy as np

from schemas.affordance_map import AffordanceMapRow
from schemas.instruction import InstructionRow
from schemas.rows import AffordanceLabel, Sample
from tasks.store.annotated_join import join_rows
from tests.factories import sample_dicts

SHA = "c" * 64


def _instruction(sample: Sample, affordance: str) -> InstructionRow:
    return InstructionRow(sample_id=sample.sample_id, stage_version="t", dataset=sample.dataset,
                          object_class=sample.object_category, affordance=affordance,
                          instruction=f"Hold the {sample.object_category}", variant=0, generator="template",
                          model="template", prompt_version="t", fallback=False)


def _samples():
    rows = sample_dicts(5, num_points=32)
    labelled = Sample.model_validate(rows[0] | {"affordance": "wrap-grasp"})  # part labels: top half id 5
    targets = [Sample.model_validate(r | {"dataset": "oakink", "affordance": None, "object_point_labels": None})
               for r in rows[1:]]
    return labelled, targets


def test_join_sources_maps_and_reports_every_sample() -> None:
    labelled, (mapped, no_map, no_instruction, unlabelled) = _samples()
    labels = {s.sample_id: AffordanceLabel(sample_id=s.sample_id, stage_version="t", dataset="oakink",
                                           affordance="press", origin="validated", cycle=1, confidence=0.9,
                                           checkpoint_sha256=SHA) for s in (mapped, no_map, no_instruction)}
    instructions = {s.sample_id: _instruction(s, a) for s, a in
                    ((labelled, "wrap-grasp"), (mapped, "press"), (no_map, "press"))}
    probabilities = np.linspace(0, 1, 32, dtype=np.float32)
    maps = {mapped.sample_id: AffordanceMapRow(sample_id=mapped.sample_id, stage_version="t", dataset="oakink",
                                               object_class="x", affordance="press", instruction="Hold the x",
                                               probabilities=probabilities, checkpoint_sha256="d" * 64,
                                               text_encoder="e")}
    rejects = []
    rows, counts = join_rows([labelled, mapped, no_map, no_instruction, unlabelled], labels, instructions, maps,
                             rejects)
    assert (counts.samples, counts.joined, counts.rejected, counts.unlabelled) == (5, 2, 2, 1)
    by_id = {r.sample_id: r for r in rows}
    truth = by_id[labelled.sample_id]
    assert truth.label_source == "ground_truth" and truth.map_source == "part_labels"
    np.testing.assert_array_equal(truth.affordance_map, (labelled.object_point_labels == 5).astype(np.float32))
    predicted = by_id[mapped.sample_id]
    assert predicted.label_source == "validated" and predicted.map_source == "model"
    assert predicted.classifier_checkpoint_sha256 == SHA and predicted.map_checkpoint_sha256 == "d" * 64
    np.testing.assert_array_equal(predicted.affordance_map, probabilities)
    reasons = {r.sample_id: (r.field, r.reason) for r in rejects}
    field, reason = reasons[no_map.sample_id]
    assert field == "affordance_map" and "run the affordance stage" in reason
    assert reasons[no_instruction.sample_id][0] == "instruction"
    assert "5 samples -> 2 annotated rows" in counts.summary()
