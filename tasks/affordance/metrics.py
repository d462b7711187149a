"""Per-sample metrics of a predicted per-point affordance map against ground truth, and Markdown tables of their
means in the layout of the AffordGrasp paper's Tables 7 (per object class) and 8 (per action).

Both maps are (N,) values in [0, 1], one per point of the object's cloud. The ground truth is binary in
practice; where a mask is needed it is G = gt >= 0.5.

Empty ground truth (no point with gt >= 0.5): aIoU, IoU, AUC and SIM are undefined (None) and left out of every
mean, as the IAGNet evaluation (yyvhang/IAGNet `evalization.py`: NaN for aIoU and AUC when the binarised target
sums to 0, then np.nanmean) and LASO's, which follows it, leave them out; the tables count how many samples each
mean covers. MAE is defined for every sample, as there. One difference, stated: IAGNet computes SIM with an eps
for such samples (about 0 against any non-zero prediction); here it is left out too, since a similarity to a map
with no mass says nothing.

- IoU at threshold t: P = pred >= t, IoU_t = |P and G| / |P or G| (point counts), for a non-empty G (so the
  union is never empty).
- IoU: IoU_t at t = 0.5.
- aIoU: the mean of IoU_t over the 20 THRESHOLDS = linspace(0, 1, 20), as the LASO (Li et al., CVPR 2024) and
  IAGNet (Yang et al., ICCV 2023) evaluations compute it. At t = 0 every point is predicted, so even a perfect
  binary prediction scores IoU_0 = |G| / N there and its aIoU is below 1 unless G covers every point.
- AUC: ROC AUC of pred scoring G, by the rank (Mann-Whitney U) formula with average ranks for ties, which equals
  sklearn.metrics.roc_auc_score. Undefined (None) when G is all true or all false: one class has no samples.
- SIM: histogram intersection sum_i min(Y_i, M_i) of Y = gt / sum(gt) and M = pred / sum(pred); an all-zero
  prediction shares no mass with the ground truth (0.0).
- MAE: mean_i |gt_i - pred_i|, per point, so in [0, 1].

Group means are taken over the samples that define a metric, with the counts kept beside them so a table can
say when a mean covers fewer samples than the group has (and why).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

THRESHOLDS = np.linspace(0.0, 1.0, 20)  # (20,) thresholds of aIoU
METRICS = ("aIoU", "IoU", "AUC", "SIM", "MAE")  # table row order
ARROWS = {"aIoU": "↑", "IoU": "↑", "AUC": "↑", "SIM": "↑", "MAE": "↓"}  # which way is better
GT_THRESHOLD = 0.5
RANGE_TOL = 1e-6  # float round-off from upstream normalisation may push a value just outside [0, 1]


@dataclass(frozen=True)
class SampleMetrics:
    """Metrics of one predicted map against its ground truth; None where undefined (empty ground truth, or AUC
    with every point positive)."""

    iou: float | None
    aiou: float | None
    auc: float | None
    sim: float | None
    mae: float

    def value(self, metric: str) -> float | None:
        """The value of one of METRICS by its table name."""
        by_name = {"aIoU": self.aiou, "IoU": self.iou, "AUC": self.auc, "SIM": self.sim, "MAE": self.mae}
        if metric not in by_name:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        return by_name[metric]


@dataclass(frozen=True)
class MetricSummary:
    """Means over a group of samples: values[m] over the counts[m] samples that define m, None if none do."""

    values: dict[str, float | None]
    counts: dict[str, int]
    n: int


def _check_map(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"{name}: expected shape (N,) with N >= 1, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: expected finite values, got {int((~np.isfinite(values)).sum())} NaN or inf")
    low, high = values.min(), values.max()
    if low < -RANGE_TOL or high > 1.0 + RANGE_TOL:
        raise ValueError(f"{name}: expected values in [0, 1], got min {low:g} and max {high:g}")
    return np.clip(values, 0.0, 1.0)


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, gt = _check_map(pred, "pred"), _check_map(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred and gt must have the same shape, got pred {pred.shape} and gt {gt.shape}")
    return pred, gt


def iou_at(pred: np.ndarray, gt_mask: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """IoU of pred >= t against gt_mask for each t: pred (N,) float, gt_mask (N,) bool, thresholds (T,) -> (T,)."""
    predicted = pred[None, :] >= thresholds[:, None]  # (T, N)
    inter = (predicted & gt_mask).sum(axis=1)
    union = (predicted | gt_mask).sum(axis=1)
    # An empty union is a correct empty prediction: 1.0, not 0 / 0.
    return np.where(union == 0, 1.0, inter / np.maximum(union, 1))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of values (N,) -> (N,) float, tied values sharing the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of each distinct value's first occurrence
    return (first + (counts + 1) / 2.0)[inverse]


def rank_auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """ROC AUC of scores (N,) for bool labels (N,); None when either class is empty.

    AUC = (R+ - n+ (n+ + 1) / 2) / (n+ n-), with R+ the sum of the positives' average ranks (Mann-Whitney U):
    the chance that a random positive outscores a random negative, ties counting one half.
    """
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = average_ranks(scores)[labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """SIM = sum_i min(gt_i / sum(gt), pred_i / sum(pred)) of two (N,) non-negative maps; 1.0 if both are zero."""
    pred_sum, gt_sum = pred.sum(), gt.sum()
    if pred_sum == 0 or gt_sum == 0:
        return 1.0 if pred_sum == gt_sum else 0.0  # both empty agree; one empty shares no mass with the other
    return float(np.minimum(gt / gt_sum, pred / pred_sum).sum())


def sample_metrics(pred: np.ndarray, gt: np.ndarray) -> SampleMetrics:
    """Metrics of one predicted map. pred: (N,) float in [0, 1]; gt: (N,) float in [0, 1], binarised at >= 0.5
    for IoU, aIoU and AUC. Raises ValueError naming the argument if either is not a finite (N,) map in [0, 1]."""
    pred, gt = _check_pair(pred, gt)
    gt_mask = gt >= GT_THRESHOLD
    if not gt_mask.any():  # empty ground truth: only MAE is defined (see the module docstring)
        return SampleMetrics(iou=None, aiou=None, auc=None, sim=None, mae=float(np.abs(gt - pred).mean()))
    return SampleMetrics(
        iou=float(iou_at(pred, gt_mask, np.array([GT_THRESHOLD]))[0]),
        aiou=float(iou_at(pred, gt_mask, THRESHOLDS).mean()),
        auc=rank_auc(pred, gt_mask),
        sim=similarity(pred, gt),
        mae=float(np.abs(gt - pred).mean()),
    )


def summarise(metrics: Sequence[SampleMetrics]) -> MetricSummary:
    """Mean of each metric over the samples that define it; an empty input gives n = 0 and all values None."""
    values: dict[str, float | None] = {}
    counts: dict[str, int] = {}
    for metric in METRICS:
        defined = [v for v in (sample.value(metric) for sample in metrics) if v is not None]
        counts[metric] = len(defined)
        values[metric] = float(np.mean(defined)) if defined else None  # never the NaN of np.mean([])
    return MetricSummary(values=values, counts=counts, n=len(metrics))


def grouped(metrics: Sequence[SampleMetrics], keys: Sequence[str]) -> dict[str, MetricSummary]:
    """Summaries per key (object class or action), keys[i] naming the group of metrics[i]; keys sorted."""
    if len(metrics) != len(keys):
        raise ValueError(f"keys must have one entry per sample: {len(keys)} keys for {len(metrics)} samples")
    groups: dict[str, list[SampleMetrics]] = {}
    for sample, key in zip(metrics, keys, strict=True):
        groups.setdefault(key, []).append(sample)
    return {key: summarise(groups[key]) for key in sorted(groups)}


def _number(value: float | None, digits: int) -> str:
    # A NaN can only come from a hand-built summary; it prints as n/a too, so no table ever says "nan".
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")  # a raw pipe or newline would break the row


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _footnote(columns: Mapping[str, MetricSummary]) -> str | None:
    short = [
        f"{name} {metric} {summary.counts[metric]}/{summary.n}"
        for name, summary in columns.items()
        for metric in METRICS
        if summary.counts[metric] < summary.n
    ]
    if not short:
        return None
    return (
        "Samples with an empty ground-truth map are left out of aIoU, IoU, AUC and SIM (as the IAGNet / LASO "
        "evaluations leave them out), and AUC is undefined where every point is positive; n/a or means over fewer "
        f"samples mark them (counts: {', '.join(short)})"
    )


def metrics_table(groups: Mapping[str, MetricSummary], overall: MetricSummary | None = None, digits: int = 3) -> str:
    """GitHub Markdown table with METRICS as rows (labelled with ↑/↓) and one column per group in the given order,
    then OVERALL if given; a last row "n" counts samples. None prints as "n/a". A footnote follows the table
    when some mean covers fewer samples than its column has."""
    if digits < 0:
        raise ValueError(f"digits must be >= 0, got {digits}")
    columns = dict(groups)
    if overall is not None:
        if "OVERALL" in columns:
            raise ValueError("groups must not contain a key 'OVERALL' when overall is given: the columns would clash")
        columns["OVERALL"] = overall
    if not columns:
        raise ValueError("groups is empty and overall is None: the table would have no columns")
    lines = [_row(["metric", *columns]), _row(["---"] * (len(columns) + 1))]
    for metric in METRICS:
        cells = [_number(summary.values[metric], digits) for summary in columns.values()]
        lines.append(_row([f"{metric} {ARROWS[metric]}", *cells]))
    lines.append(_row(["n", *(str(summary.n) for summary in columns.values())]))
    note = _footnote(columns)
    return "\n".join(lines) if note is None else "\n".join([*lines, "", note])


def overall_table(summary: MetricSummary, digits: int = 3) -> str:
    """One-column metrics_table: the column "OVERALL" only."""
    return metrics_table({}, overall=summary, digits=digits)
