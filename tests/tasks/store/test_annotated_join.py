"""The annotated join: every labelled sample joins with its instruction and map, or is a reject with a reason."""

import numpy as np
import pytest

from schemas.affordance_map import AffordanceMapRow
from schemas.annotated import AnnotatedRow
from schemas.instruction import InstructionRow
from schemas.mano_fit import USABLE_FIT_MEAN_MM, ManoFitRow
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


def _graspit(row: dict, k: int) -> Sample:
    """An AffordPose-like labelled sample whose hand is a GraspIt!-style mesh (no MANO parameters)."""
    verts = np.random.default_rng(k).normal(scale=0.03, size=(946, 3))
    return Sample.model_validate(row | {"affordance": "wrap-grasp", "hand_pose": None, "hand_betas": None,
                                        "hand_trans": None, "hand_verts": verts, "hand_model": "graspit_manohand",
                                        "hand_faces": np.array([[0, 1, 2], [2, 3, 4]]), "hand_dofs": np.zeros(16)})


def _fit(sample: Sample, error_mm: float) -> ManoFitRow:
    return ManoFitRow(sample_id=sample.sample_id, stage_version="t", dataset=sample.dataset,
                      hand_model="graspit_manohand", hand_pose=np.full(48, 0.1), hand_betas=np.zeros(10),
                      hand_trans=np.array([0.01, 0.02, 0.03]), mean_error_mm=error_mm, max_error_mm=2 * error_mm,
                      steps=300)


def test_a_usable_mano_fit_gives_a_graspit_hand_its_mano_parameters() -> None:
    """Fits at or under USABLE_FIT_MEAN_MM join (the generator can train on them); worse ones do not."""
    good, poor, unfitted = (_graspit(r, k) for k, r in enumerate(sample_dicts(3, num_points=32)))
    instructions = {s.sample_id: _instruction(s, "wrap-grasp") for s in (good, poor, unfitted)}
    fits = {good.sample_id: _fit(good, USABLE_FIT_MEAN_MM), poor.sample_id: _fit(poor, USABLE_FIT_MEAN_MM + 0.1)}
    rows, counts = join_rows([good, poor, unfitted], {}, instructions, {}, [], fits)
    by_id = {r.sample_id: r for r in rows}
    assert counts.joined == 3 and counts.fitted == 1 and "1 non-MANO hands with a fitted MANO hand" in counts.summary()
    joined = by_id[good.sample_id]
    assert joined.hand_model == "graspit_manohand" and joined.mano_fit_error_mm == USABLE_FIT_MEAN_MM
    np.testing.assert_allclose(joined.hand_pose, 0.1)
    np.testing.assert_allclose(joined.hand_trans, [0.01, 0.02, 0.03])
    assert joined.hand_verts.shape == (946, 3) and joined.hand_faces.shape == (2, 3)
    for sid in (poor.sample_id, unfitted.sample_id):
        assert by_id[sid].hand_pose is None and by_id[sid].mano_fit_error_mm is None


def test_a_mano_pose_on_a_graspit_hand_needs_its_fit_error() -> None:
    sample = _graspit(sample_dicts(1, num_points=32)[0], 0)
    row = join_rows([sample], {}, {sample.sample_id: _instruction(sample, "wrap-grasp")}, {}, [])[0][0]
    with pytest.raises(ValueError, match="without a fit error"):
        AnnotatedRow.model_validate(row.model_dump() | {"hand_pose": np.zeros(48), "hand_betas": np.zeros(10),
                                                        "hand_trans": np.zeros(3)})
