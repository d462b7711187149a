import numpy as np
import pytest

from review.truth import table_truth_keys, truth_for
from schemas.rows import Sample
from tasks.ingest.pipeline import ingest
from tasks.store.read import open_table
from tasks.store.write import write_table
from tasks.synth.datasets import synthesize_datasets

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("truth")
    summary = synthesize_datasets(root / "ds", categories=["mug", "pot"], datasets=["oakink", "grab", "ho3d"],
                                  steps=2)
    tables = {}
    for fmt in ("oakink", "grab", "ho3d"):
        ingest(fmt, summary.root / fmt, root / "tables" / fmt, summary.mano_root, num_points=64)
        tables[fmt] = list(open_table(root / "tables" / fmt, Sample).iter_rows())
    return summary, tables


@pytest.mark.parametrize("fmt", ["oakink", "grab", "ho3d"])
def test_every_ingested_sample_finds_its_grasps_affordance(synthetic, fmt):
    summary, tables = synthetic
    truth = truth_for(summary.root, tables[fmt])
    assert len(truth) == len(tables[fmt]) == summary.grasps[fmt]
    # A mug's parts are handle (handle-grasp), body (wrap-grasp) and lid; a pot's handles and lid: both present.
    assert {"handle-grasp", "wrap-grasp"} <= set(truth.values())


@pytest.mark.parametrize("fmt", ["oakink", "grab", "ho3d"])
def test_five_columns_of_the_table_match_as_the_rows_do(synthetic, tmp_path, fmt):
    """The self-training flow matches from five columns read in batches (not every sample's points)."""
    summary, tables = synthetic
    write_table(tmp_path / fmt, tables[fmt], Sample)
    assert truth_for(summary.root, table_truth_keys([tmp_path / fmt])) == truth_for(summary.root, tables[fmt])


def test_a_changed_pose_is_an_error_not_a_guess(synthetic):
    summary, tables = synthetic
    sample = tables["oakink"][0]
    changed = sample.model_copy(update={"hand_pose": sample.hand_pose + np.float32(0.05)})
    with pytest.raises(ValueError, match=f"sample {sample.sample_id}: nearest synthetic grasp differs"):
        truth_for(summary.root, [changed])
