"""The train_grasp flow at the tiny preset: reads the annotated table (AffordPose rows without MANO parameters and
rows of other splits counted and skipped), trains the three stages, writes model, checkpoint, log, curves, sampled
grasps and summary; run again on the same folder, it resumes as finished."""

import pytest

from flows.train_grasp import train_grasp
from tasks.grasp.model import read_checkpoint
from tasks.grasp.train_log import read_log
from tests.grasp_factories import single_thread, write_annotated

pytestmark = pytest.mark.server


@pytest.fixture(autouse=True)
def _one_thread():
    yield from single_thread()


def test_train_grasp_flow_end_to_end_then_resumes(prefect_harness, tmp_path):
    write_annotated(tmp_path / "annotated", n=6, affordpose=2, other_split=1)
    out = tmp_path / "grasp"
    report = train_grasp(annotated_table=str(tmp_path / "annotated"), out_dir=str(out), preset="tiny", steps=15,
                         device="cpu", preview_grasps=2)
    assert "9 rows read: 6 grasps with MANO parameters used; 2 without MANO parameters" in report
    assert "1 of other splits skipped" in report and "45/45 steps done" in report
    assert "| dam |" in report and "| autoencoder |" in report
    assert read_checkpoint(out / "checkpoints" / "last.pt")["step"] == 45
    assert read_log(out / "train_log.csv")[-1]["stage"] == "dam"
    for png in ("loss_curves.png", "samples.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert (out / "summary.md").read_text().startswith("## Grasp generator training")
    assert read_checkpoint(out / "grasp_model.pt")["meta"]["text_encoder"].startswith("all-MiniLM-L6-v2")

    again = train_grasp(annotated_table=str(tmp_path / "annotated"), out_dir=str(out), preset="tiny", steps=15,
                        device="cpu", preview_grasps=0)
    assert "resumed from step 45" in again and "samples.png" not in again


def test_a_pinned_version_the_table_has_moved_past_is_refused_by_name(tmp_path):
    # What prefect.yaml's trigger passes: the version an annotate run published. Annotated again since, the table
    # is at a newer version, and training on it would silently train on something else.
    from flows.train_grasp import check_version

    table = tmp_path / "annotated"
    write_annotated(table, n=4)
    check_version(table, 1)  # the current version: accepted
    write_annotated(table, n=4)
    with pytest.raises(ValueError, match=r"annotated_version 1: .*annotated is at version 2 now"):
        check_version(table, 1)
