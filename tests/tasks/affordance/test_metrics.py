import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tasks.affordance.metrics import (
    METRICS,
    THRESHOLDS,
    MetricSummary,
    SampleMetrics,
    grouped,
    metrics_table,
    overall_table,
    sample_metrics,
    summarise,
)


def random_pair(seed: int, n: int, decimals: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A random pred map in [0, 1] (rounded to `decimals` places to force ties) and a binary gt map."""
    rng = np.random.default_rng(seed)
    pred = rng.random(n)
    if decimals is not None:
        pred = np.round(pred, decimals)
    return pred, (rng.random(n) < 0.4).astype(np.float64)


def naive_iou(pred, gt, t):
    inter = union = 0
    for p, g in zip(pred.tolist(), gt.tolist(), strict=True):
        inter += p >= t and g >= 0.5
        union += p >= t or g >= 0.5
    return 1.0 if union == 0 else inter / union


def naive_sim(pred, gt):
    ps, gs = sum(pred.tolist()), sum(gt.tolist())
    if ps == 0 or gs == 0:
        return 1.0 if ps == gs else 0.0
    return sum(min(g / gs, p / ps) for p, g in zip(pred.tolist(), gt.tolist(), strict=True))


@pytest.mark.parametrize("n", [1, 2, 7, 50, 300])
@pytest.mark.parametrize("seed", range(3))
def test_iou_and_aiou_match_naive_loop(seed, n):
    pred, gt = random_pair(seed, n)
    if gt.max() < 0.5:
        gt[0] = 1.0  # an empty ground truth is left out (tested apart)
    result = sample_metrics(pred, gt)
    assert result.iou == pytest.approx(naive_iou(pred, gt, 0.5))
    expected = sum(naive_iou(pred, gt, t) for t in THRESHOLDS.tolist()) / len(THRESHOLDS)
    assert result.aiou == pytest.approx(expected)


def test_thresholds_are_twenty_from_zero_to_one():
    assert THRESHOLDS.shape == (20,) and THRESHOLDS[0] == 0.0 and THRESHOLDS[-1] == 1.0


def iagnet_aiou_auc(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """The IAGNet evaluation's per-sample aIoU and AUC, restated (yyvhang/IAGNet `evalization.py`): binarise the
    target at >= 0.5; an all-zero target gives NaN for both (dropped later by np.nanmean); otherwise AUC is
    sklearn's roc_auc_score and aIoU the mean over 20 thresholds linspace(0, 1, 20) of |P & T| / |P | T| with
    P = pred >= threshold."""
    target = (gt >= 0.5).astype(int)
    if target.sum() == 0:
        return float("nan"), float("nan")
    ious = [np.sum((pred >= t).astype(int) & target) / np.sum((pred >= t).astype(int) | target)
            for t in np.linspace(0, 1, 20)]
    return float(np.mean(ious)), float(roc_auc_score(target, pred))


def test_empty_ground_truth_is_left_out_as_published():
    result = sample_metrics(np.zeros(5), np.zeros(5))
    assert (result.iou, result.aiou, result.auc, result.sim) == (None, None, None, None) and result.mae == 0.0
    assert math.isnan(iagnet_aiou_auc(np.zeros(5), np.zeros(5))[0])
    # A group mean over an empty-gt sample and a normal one equals np.nanmean over the published per-sample values.
    rng = np.random.default_rng(5)
    pairs = [(rng.random(30), np.zeros(30)), (rng.random(30), (rng.random(30) > 0.6).astype(float))]
    summary = summarise([sample_metrics(p, g) for p, g in pairs])
    published = np.array([iagnet_aiou_auc(p, g) for p, g in pairs])
    assert summary.values["aIoU"] == pytest.approx(np.nanmean(published[:, 0]))
    assert summary.values["AUC"] == pytest.approx(np.nanmean(published[:, 1]))
    assert summary.counts["aIoU"] == summary.counts["SIM"] == 1 and summary.counts["MAE"] == 2


@pytest.mark.parametrize("n", [2, 10, 200])
@pytest.mark.parametrize("seed", range(4))
def test_auc_matches_sklearn_with_ties(seed, n):
    pred, gt = random_pair(seed, n, decimals=1)  # 11 distinct scores: many ties
    if gt.min() == gt.max():
        gt[0] = 1.0 - gt[0]  # both classes present
    assert sample_metrics(pred, gt).auc == pytest.approx(roc_auc_score(gt, pred))


def test_auc_with_every_score_tied_is_one_half():
    assert sample_metrics(np.full(6, 0.3), np.array([0, 1, 0, 1, 1, 0.0])).auc == pytest.approx(0.5)


@pytest.mark.parametrize("gt_value", [0.0, 1.0])
def test_auc_undefined_for_one_class_gt(gt_value):
    pred, _ = random_pair(0, 12)
    assert sample_metrics(pred, np.full(12, gt_value)).auc is None


def test_auc_binarises_gt_at_one_half():
    pred = np.array([0.1, 0.2, 0.8, 0.9])
    soft = np.array([0.0, 0.49, 0.5, 1.0])
    assert sample_metrics(pred, soft).auc == pytest.approx(roc_auc_score(soft >= 0.5, pred))


@pytest.mark.parametrize("n", [1, 9, 100])
@pytest.mark.parametrize("seed", range(3))
def test_sim_and_mae_match_naive_loop(seed, n):
    pred, gt = random_pair(seed, n)
    result = sample_metrics(pred, gt)
    assert result.sim == (None if gt.max() < 0.5 else pytest.approx(naive_sim(pred, gt)))
    expected_mae = sum(abs(g - p) for p, g in zip(pred.tolist(), gt.tolist(), strict=True)) / n
    assert result.mae == pytest.approx(expected_mae)


def test_sim_of_a_map_with_itself_is_one():
    pred, _ = random_pair(5, 40)
    assert sample_metrics(pred, pred).sim == pytest.approx(1.0)


def test_sim_empty_cases():
    zeros, ones = np.zeros(4), np.ones(4)
    assert sample_metrics(zeros, zeros).sim is None  # empty ground truth: left out
    assert sample_metrics(ones, zeros).sim is None
    assert sample_metrics(zeros, ones).sim == 0.0  # nothing predicted shares no mass with the truth


def test_perfect_binary_prediction():
    _, gt = random_pair(3, 30)
    result = sample_metrics(gt.copy(), gt)
    assert result.iou == 1.0 and result.auc == 1.0 and result.mae == 0.0
    assert result.sim == pytest.approx(1.0)
    # Every threshold but t = 0 predicts exactly G; t = 0 predicts all N points, so IoU_0 = |G| / N.
    assert result.aiou == pytest.approx((19 + gt.sum() / len(gt)) / 20)


def samples(seed: int, count: int) -> list[SampleMetrics]:
    return [sample_metrics(*random_pair(seed * 1000 + i, 25)) for i in range(count)]


def test_summarise_means_equal_numpy_means():
    batch = [*samples(0, 6), sample_metrics(np.full(25, 0.2), np.zeros(25))]  # the last has no AUC
    summary = summarise(batch)
    assert summary.n == 7
    # The last has an empty ground truth: only its MAE counts.
    assert summary.counts == {"aIoU": 6, "IoU": 6, "AUC": 6, "SIM": 6, "MAE": 7}
    for metric, field in zip(METRICS, ["aiou", "iou", "auc", "sim", "mae"], strict=True):
        defined = [getattr(s, field) for s in batch if getattr(s, field) is not None]
        assert summary.values[metric] == pytest.approx(np.mean(defined))


def test_summarise_empty_is_none_not_nan():
    summary = summarise([])
    assert summary.n == 0 and all(v is None for v in summary.values.values())
    assert all(c == 0 for c in summary.counts.values())


def test_grouped_sorts_keys_and_matches_summarise():
    batch = samples(1, 7)
    keys = ["mug", "bottle", "mug", "knife", "bottle", "mug", "knife"]
    groups = grouped(batch, keys)
    assert list(groups) == ["bottle", "knife", "mug"]
    for key, summary in groups.items():
        assert summary == summarise([s for s, k in zip(batch, keys, strict=True) if k == key])


def test_grouped_rejects_mismatched_keys():
    with pytest.raises(ValueError, match="keys"):
        grouped(samples(2, 3), ["a", "b"])


def test_all_empty_gt_gives_finite_or_none_and_no_nan_in_table():
    batch = [sample_metrics(np.zeros(8), np.zeros(8)), sample_metrics(np.full(8, 0.7), np.zeros(8))]
    summary = summarise(batch)
    assert summary.values["AUC"] is None and summary.counts["AUC"] == 0
    assert all(v is None or math.isfinite(v) for v in summary.values.values())
    table = metrics_table({"cup": summary}, overall=summary)
    assert "nan" not in table.lower()
    assert "| AUC ↑ | n/a | n/a |" in table and "| aIoU ↑ | n/a | n/a |" in table
    assert "cup aIoU 0/2" in table and "OVERALL AUC 0/2" in table and "empty ground-truth map" in table


def test_metrics_table_layout():
    groups = grouped(samples(3, 4), ["mug", "bottle", "mug", "bottle"])
    overall = summarise(samples(3, 4))
    lines = metrics_table(groups, overall=overall, digits=2).splitlines()
    assert lines[0] == "| metric | bottle | mug | OVERALL |"
    assert lines[1] == "| --- | --- | --- | --- |"
    labels = [line.split(" | ")[0].removeprefix("| ") for line in lines[2:]]
    assert labels == ["aIoU ↑", "IoU ↑", "AUC ↑", "SIM ↑", "MAE ↓", "n"]
    assert lines[-1] == "| n | 2 | 2 | 4 |"
    aiou = [summary.values["aIoU"] for summary in (groups["bottle"], groups["mug"], overall)]
    assert lines[2] == "| aIoU ↑ | " + " | ".join(f"{value:.2f}" for value in aiou) + " |"
    assert len(lines) == 8  # every sample defines every metric: no footnote


def test_metrics_table_keeps_given_group_order_and_omits_overall():
    groups = {"z": summarise(samples(4, 2)), "a": summarise(samples(5, 2))}
    assert metrics_table(groups).splitlines()[0] == "| metric | z | a |"


def test_overall_table_is_one_column():
    summary = summarise(samples(6, 3))
    lines = overall_table(summary).splitlines()
    assert lines[0] == "| metric | OVERALL |"
    assert lines[-1] == "| n | 3 |"
    assert lines[4] == f"| AUC ↑ | {summary.values['AUC']:.3f} |"


def test_metrics_table_rejects_no_columns():
    with pytest.raises(ValueError, match="no columns"):
        metrics_table({})


def test_metrics_table_prints_hand_built_nan_as_na():
    values: dict[str, float | None] = dict.fromkeys(METRICS, float("nan"))
    summary = MetricSummary(values=values, counts=dict.fromkeys(METRICS, 1), n=1)
    assert "nan" not in overall_table(summary).lower()


@pytest.mark.parametrize(
    ("pred", "gt", "match"),
    [
        (np.array([0.5, -0.2]), np.array([0.0, 1.0]), r"pred: expected values in \[0, 1\], got min -0.2"),
        (np.array([0.5, 0.2]), np.array([0.0, 1.5]), r"gt: expected values in \[0, 1\].*max 1.5"),
        (np.array([0.5, np.nan]), np.array([0.0, 1.0]), "pred: expected finite"),
        (np.array([0.5, 0.2]), np.array([0.0, np.inf]), "gt: expected finite"),
        (np.zeros((2, 3)), np.zeros(6), r"pred: expected shape \(N,\)"),
        (np.zeros(3), np.zeros(0), r"gt: expected shape \(N,\) with N >= 1"),
        (np.zeros(3), np.zeros(4), "pred and gt must have the same shape"),
    ],
)
def test_bad_input_names_the_argument(pred, gt, match):
    with pytest.raises(ValueError, match=match):
        sample_metrics(pred, gt)


def test_small_round_off_outside_range_is_accepted():
    result = sample_metrics(np.array([1.0 + 1e-9, -1e-9]), np.array([1.0, 0.0]))
    assert result.iou == 1.0 and result.mae == pytest.approx(0.0)
