import numpy as np
import pytest
from PIL import Image

from schemas.affordance import AFFORDANCES
from tasks.pseudo_label.confidence_filter import evaluate_rule
from tasks.pseudo_label.report import (
    accuracy,
    confusion_matrix,
    markdown_table,
    plot_confusion,
    plot_training_curve,
    rule_table,
    summary_table,
)

C = 9


def labels(seed: int, n: int = 500) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, C, n)
    return truth, np.where(rng.random(n) < 0.7, truth, rng.integers(0, C, n))


def naive_confusion(truth, predicted, num_classes):
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for t, p in zip(truth.tolist(), predicted.tolist(), strict=True):
        matrix[t][p] += 1
    return matrix


@pytest.mark.parametrize("seed", range(3))
def test_confusion_matrix_equals_naive(seed):
    truth, predicted = labels(seed)
    result = confusion_matrix(truth, predicted)
    assert result.dtype == np.int64 and result.shape == (C, C) and result.sum() == len(truth)
    np.testing.assert_array_equal(result, naive_confusion(truth, predicted, C))


def test_confusion_matrix_rows_are_truth_and_edge_cases():
    np.testing.assert_array_equal(confusion_matrix(np.array([0, 0, 1]), np.array([1, 1, 1]), 2), [[0, 2], [0, 1]])
    np.testing.assert_array_equal(confusion_matrix(np.zeros(0, int), np.zeros(0, int), 3), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="predicted must lie in"):
        confusion_matrix(np.array([0]), np.array([9]))
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(np.array([0, 1]), np.array([0]))


def test_accuracy_equals_naive_and_rejects_empty():
    truth, predicted = labels(4)
    assert accuracy(truth, predicted) == sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)
    with pytest.raises(ValueError, match="truth is empty"):
        accuracy(np.zeros(0, int), np.zeros(0, int))


def history(with_loss: bool) -> list[dict]:
    records = []
    for epoch in range(1, 11):
        record = {"epoch": epoch, "train_acc": 1 - 0.6 / epoch, "val_acc": 1 - 0.7 / epoch}
        if with_loss:
            record["train_loss"] = 2.0 / epoch
        records.append(record)
    return records


@pytest.mark.parametrize("with_loss", [True, False])
def test_training_curve_png(tmp_path, with_loss):
    path = plot_training_curve(history(with_loss), tmp_path / "plots" / "curve.png")
    assert path.exists() and path.stat().st_size > 5000
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (800, 500)
    with pytest.raises(ValueError, match="lack keys"):
        plot_training_curve([{"epoch": 1, "train_acc": 0.5}], tmp_path / "bad.png")
    with pytest.raises(ValueError, match="fractions"):
        plot_training_curve([{"epoch": 1, "train_acc": 50.0, "val_acc": 0.5}], tmp_path / "bad.png")


def test_confusion_png(tmp_path):
    truth, predicted = labels(5)
    truth[truth == 3] = 2  # an empty true row must still plot (row-normalised to zeros, not NaN)
    path = plot_confusion(confusion_matrix(truth, predicted), AFFORDANCES, tmp_path / "confusion.png", "val split")
    assert path.exists() and path.stat().st_size > 5000
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (800, 700)
    with pytest.raises(ValueError, match="class_names has 2 names"):
        plot_confusion(np.eye(3, dtype=int), ["a", "b"], tmp_path / "bad.png")


def test_markdown_table_shape_and_escaping():
    table = markdown_table(["a", "b"], [[1, "x|y"], [2.5, None]])
    lines = table.splitlines()
    assert lines == ["| a | b |", "| --- | --- |", "| 1 | x\\|y |", "| 2.5 | None |"]
    with pytest.raises(ValueError, match="rows \\[0\\]"):
        markdown_table(["a", "b"], [[1]])


def test_summary_table():
    lines = summary_table({"train": 0.9811, "val": 0.979, "test": 0.9848}).splitlines()
    assert len(lines) == 2 + 3 and lines[0] == "| split | accuracy % |" and lines[2] == "| train | 98.11 |"


def test_rule_table_rows():
    truth, predicted = labels(6)
    accepted = np.random.default_rng(6).random(len(truth)) < 0.5
    reports = {"class_conditional": evaluate_rule(accepted, predicted, truth, rule="class_conditional", k=3.0),
               "logit_zscore": evaluate_rule(np.zeros(len(truth), bool), predicted, truth)}
    overall, per_class = rule_table(reports).split("\n\n")
    overall_lines, per_class_lines = overall.splitlines(), per_class.splitlines()
    assert len(overall_lines) == 2 + 2 and len(per_class_lines) == 2 + 2 * C
    assert overall_lines[0] == "| rule | k | accepted | acceptance rate % | precision % |"
    assert overall_lines[2].startswith(f"| class_conditional | 3 | {accepted.sum()} / {len(truth)} |")
    assert overall_lines[3].endswith("| 0.00 | n/a |") and "nan" not in rule_table(reports).lower()


def test_epoch_line_shows_progress_and_time_left():
    from tasks.pseudo_label.report import epoch_line

    record = {"epoch": 10, "train_loss": 0.8123, "train_acc": 0.9, "val_acc": 0.85}
    line = epoch_line(record, epochs=40, elapsed_s=30.0, width=8)
    assert line.startswith("epoch  10/40 [##------] loss 0.812")
    assert line.endswith("3.0 s/epoch, 1m30s left")
    with pytest.raises(ValueError, match=r"epoch 41 is outside 1\.\.40"):
        epoch_line(record | {"epoch": 41}, epochs=40, elapsed_s=1.0)


def test_class_stats_table_shows_n_per_class_and_which_statistics():
    from tasks.pseudo_label.confidence_filter import fit_class_stats
    from tasks.pseudo_label.report import class_stats_table

    probs = np.full((12, 9), 0.01)
    probs[:, 0] = 0.92 + np.linspace(0, 1e-3, 12)
    probs[:, 1] -= np.linspace(0, 1e-3, 12)  # rows still sum to 1
    stats = fit_class_stats(probs, np.zeros(12, int))
    lines = class_stats_table(stats).splitlines()
    assert "n correct" in lines[0] and "statistics" in lines[0]
    assert lines[2].split("|")[2].strip() == "12" and lines[2].split("|")[5].strip() == "own"
    assert lines[3].split("|")[2].strip() == "0" and lines[3].split("|")[5].strip() == "pooled"
