"""The pseudo_label flow end to end on toy tables: train (2 epochs), measure, label, publish."""

import numpy as np
import pytest

from flows.pseudo_label import pseudo_label
from schemas.rows import PseudoLabel, Sample
from tasks.store.read import open_table
from tasks.store.write import write_table
from tests.factories import sample_dicts

pytestmark = [pytest.mark.server, pytest.mark.slow]


def _table(path, n, start, labelled):
    rows = []
    for i, row in enumerate(sample_dicts(n, start=start, num_points=256)):
        row["hand_verts"] = np.random.default_rng(start + i).normal(scale=0.03, size=(778, 3)) + np.array([0, 0.08, 0])
        if not labelled:
            row["affordance"] = None
        rows.append(row)
    write_table(path, rows, Sample)
    return path


def test_pseudo_label_flow_writes_labels_report_and_plots(prefect_harness, tmp_path):
    labelled = _table(tmp_path / "tables" / "affordpose", 48, 0, labelled=True)
    target = _table(tmp_path / "tables" / "oakink", 7, 100, labelled=False)
    report = pseudo_label(labelled_table=str(labelled), target_tables=[str(target)], out_dir=str(tmp_path / "pl"),
                          epochs=2)
    assert "Classifier accuracy" in report and "Default rule" in report
    labels = list(open_table(tmp_path / "tables" / "labels", PseudoLabel).iter_rows())
    assert len(labels) == 7 and {r.cycle for r in labels} == {0}
    for name in ("training_curve.png", "confusion_test.png", "report.md", "summary.json"):
        assert (tmp_path / "pl" / name).stat().st_size > 100, name
    assert len(list((tmp_path / "pl" / "checkpoints").glob("point_bert-*.pt"))) == 1


def test_pseudo_label_flow_with_a_saved_checkpoint_labels_as_the_run_that_trained_it(prefect_harness, tmp_path):
    labelled = _table(tmp_path / "tables" / "affordpose", 24, 0, labelled=True)
    target = _table(tmp_path / "tables" / "grab", 5, 200, labelled=False)
    pseudo_label(labelled_table=str(labelled), target_tables=[str(target)], out_dir=str(tmp_path / "a"), epochs=1)
    trained = list(open_table(tmp_path / "tables" / "labels", PseudoLabel).iter_rows())
    (checkpoint,) = (tmp_path / "a" / "checkpoints").glob("point_bert-*.pt")
    report = pseudo_label(labelled_table=str(labelled), target_tables=[str(target)], out_dir=str(tmp_path / "b"),
                          checkpoint=str(checkpoint), cycle=1)
    assert checkpoint.name.removeprefix("point_bert-").removesuffix(".pt") in report
    assert not (tmp_path / "b" / "training_curve.png").exists()  # nothing was trained
    rows = open_table(tmp_path / "tables" / "labels", PseudoLabel).iter_rows()
    loaded = {r.sample_id: r for r in rows if r.cycle == 1}
    assert len(loaded) == 5
    for row in trained:
        assert loaded[row.sample_id].predicted == row.predicted
        assert loaded[row.sample_id].checkpoint_sha256 == row.checkpoint_sha256
        np.testing.assert_allclose(loaded[row.sample_id].probabilities, row.probabilities, atol=1e-5)


def test_pseudo_label_flow_refuses_a_table_without_labelled_samples(prefect_harness, tmp_path):
    unlabelled = _table(tmp_path / "tables" / "oakink", 4, 0, labelled=False)
    with pytest.raises(ValueError, match="no labelled samples"):
        pseudo_label(labelled_table=str(unlabelled), target_tables=[str(unlabelled)], out_dir=str(tmp_path / "pl"),
                     epochs=1)
