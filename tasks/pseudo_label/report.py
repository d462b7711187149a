"""What the classifier training stage reports: confusion matrix, accuracy, two PNG plots and Markdown tables
(for Prefect artifacts and BENCHMARKS.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from schemas.affordance import AFFORDANCES, NUM_AFFORDANCES
from tasks.pseudo_label.confidence_filter import ClassStats, RuleReport
from tasks.runtime.progress_line import bar, time_left

# Plots are drawn on a bare Figure with the Agg canvas, not pyplot: no global state, so tasks in a thread
# pool can plot at once, and no display is needed. Fixed inches x dpi give a fixed pixel size.
DPI = 100
CURVE_SIZE_IN = (8.0, 5.0)  # -> 800 x 500 px
CONFUSION_SIZE_IN = (8.0, 7.0)  # -> 800 x 700 px


def _check_classes(values: np.ndarray, name: str, num_classes: int) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,), got shape {values.shape}")
    if len(values) and not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{name} must be integer class indices, got dtype {values.dtype}")
    if len(values) and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"{name} must lie in [0, {num_classes}), got range [{values.min()}, {values.max()}]")
    return values.astype(np.int64)


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_classes: int = NUM_AFFORDANCES) -> np.ndarray:
    """truth (N,), predicted (N,) -> (C, C) int64 with M[a, b] = |{i : truth_i = a and predicted_i = b}|
    (rows = truth, columns = prediction). N = 0 gives a zero matrix."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    truth = _check_classes(truth, "truth", num_classes)
    predicted = _check_classes(predicted, "predicted", num_classes)
    if truth.shape != predicted.shape:
        raise ValueError(f"truth and predicted must have the same shape, got {truth.shape} and {predicted.shape}")
    flat = np.bincount(truth * num_classes + predicted, minlength=num_classes * num_classes)  # cell a*C+b
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    """truth (N,), predicted (N,) -> (1 / N) sum_i [truth_i = predicted_i]; ValueError when N = 0."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if truth.ndim != 1 or truth.shape != predicted.shape:
        raise ValueError(f"truth and predicted must be (N,) of one shape, got {truth.shape} and {predicted.shape}")
    if len(truth) == 0:
        raise ValueError("truth is empty: accuracy of no samples is undefined")
    return float((truth == predicted).mean())


# ------------------------------------------------------------------------------------------------- plots


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attaches the canvas; no bbox_inches="tight", which would change the pixel size
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _history_column(history: list[dict], key: str) -> np.ndarray:
    values = np.array([float(record[key]) for record in history])
    if key.endswith("_acc") and ((values < 0) | (values > 1)).any():
        raise ValueError(f"history {key!r} must be fractions in [0, 1], got range [{values.min()}, {values.max()}]")
    return values


def plot_training_curve(history: list[dict], path: str | Path,
                        title: str = "Affordance classifier training") -> Path:
    """PNG (800 x 500 px) of train and val accuracy (%) per epoch, and train loss on a right-hand axis when
    every record has "train_loss". history: [{"epoch", "train_acc", "val_acc"[, "train_loss"]}, ...]."""
    if not history:
        raise ValueError("history is empty: nothing to plot")
    missing = [(i, key) for i, record in enumerate(history) for key in ("epoch", "train_acc", "val_acc")
               if key not in record]
    if missing:
        raise ValueError(f"history records lack keys (record, key): {missing[:5]}")
    epoch = _history_column(history, "epoch")
    fig = Figure(figsize=CURVE_SIZE_IN, layout="constrained")
    ax = fig.add_subplot()
    ax.plot(epoch, 100 * _history_column(history, "train_acc"), "o-", color="tab:blue", label="train accuracy")
    ax.plot(epoch, 100 * _history_column(history, "val_acc"), "s-", color="tab:orange", label="val accuracy")
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title=title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if all("train_loss" in record for record in history):
        loss_ax = ax.twinx()
        loss_ax.plot(epoch, _history_column(history, "train_loss"), "--", color="tab:gray", label="train loss")
        loss_ax.set_ylabel("cross-entropy loss")
        more_handles, more_labels = loss_ax.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    ax.legend(handles, labels, loc="center right")  # one legend for both axes
    return _save(fig, path)


def _row_normalised(matrix: np.ndarray) -> np.ndarray:
    # colour = share of the true class's samples, so small classes are as readable as large ones
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape), where=totals > 0)


def plot_confusion(matrix: np.ndarray, class_names: Sequence[str], path: str | Path,
                   title: str = "Confusion matrix") -> Path:
    """PNG (800 x 700 px) heatmap of a (C, C) confusion matrix (rows = truth): colour = row-normalised share
    M[a, b] / sum_b M[a, b] (0 for an empty row), text = the count."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"matrix must be square (C, C), got shape {matrix.shape}")
    if len(class_names) != len(matrix):
        raise ValueError(f"class_names has {len(class_names)} names for a {len(matrix)}-class matrix")
    share = _row_normalised(matrix)
    fig = Figure(figsize=CONFUSION_SIZE_IN, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="share of the true class")
    for (a, b), count in np.ndenumerate(matrix):
        ax.text(b, a, str(int(count)), ha="center", va="center", fontsize=9,
                color="white" if share[a, b] > 0.5 else "black")  # dark cells need light text
    ticks = np.arange(len(matrix))
    ax.set_xticks(ticks, labels=list(class_names), rotation=45, ha="right")
    ax.set_yticks(ticks, labels=list(class_names))
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------- tables


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")  # a raw pipe or newline would break the row


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """GitHub Markdown table: a header line, a separator and one line per row (len(rows) + 2 lines)."""
    if not headers:
        raise ValueError("headers must name at least one column")
    bad = [i for i, row in enumerate(rows) if len(row) != len(headers)]
    if bad:
        raise ValueError(f"rows {bad[:5]} do not have {len(headers)} cells like headers")
    lines = [headers, ["---"] * len(headers), *rows]
    return "\n".join("| " + " | ".join(_cell(value) for value in line) + " |" for line in lines)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def summary_table(split_accuracy: dict[str, float]) -> str:
    """Markdown table "split | accuracy %" with one row per split, in the dict's order; accuracies as fractions."""
    return markdown_table(["split", "accuracy %"], [[split, _percent(acc)] for split, acc in split_accuracy.items()])


def class_stats_table(stats: ClassStats) -> str:
    """Markdown table of the class-conditional rule's statistics: per class, n correct held-out predictions,
    mu, sigma, whether the pooled values stand in (too few samples) and the acceptance threshold."""
    threshold = stats.threshold()
    rows = [[name, str(int(stats.count[c])), f"{stats.mean[c]:.4f}", f"{stats.std[c]:.4f}",
             "pooled" if stats.fallback[c] else "own", f"{threshold[c]:.4f}"] for c, name in enumerate(AFFORDANCES)]
    return markdown_table(["predicted class", "n correct", "mean", "std", "statistics", f"threshold (k={stats.k:g})"],
                          rows)


def rule_table(reports: dict[str, RuleReport]) -> str:
    """Two Markdown tables, a blank line apart: one row per rule (rule, k, accepted, acceptance rate %,
    precision %), then one row per rule and predicted class. Undefined rates (nothing to divide) read n/a."""
    overall = [[name, "n/a" if r.k is None else f"{r.k:g}", f"{r.accepted} / {r.n}", _percent(r.acceptance_rate),
                _percent(r.precision)] for name, r in reports.items()]
    per_class = [[name, row.name, row.n, row.accepted, _percent(row.acceptance_rate), _percent(row.precision)]
                 for name, r in reports.items() for row in r.per_class]
    return (markdown_table(["rule", "k", "accepted", "acceptance rate %", "precision %"], overall) + "\n\n"
            + markdown_table(["rule", "predicted class", "predicted", "accepted", "acceptance rate %",
                              "precision %"], per_class))


def epoch_line(record: dict[str, float], epochs: int, elapsed_s: float, width: int = 20) -> str:
    """One progress line per epoch, readable in Prefect's log and a terminal alike, e.g.
    "epoch  12/50 [####----------------] loss 0.812  train 0.873  val 0.862  3.6 s/epoch, 2m17s left"."""
    epoch = int(record["epoch"])
    if not 1 <= epoch <= epochs:
        raise ValueError(f"record epoch {epoch} is outside 1..{epochs}")
    per_epoch = elapsed_s / epoch
    return (f"epoch {epoch:>3}/{epochs} {bar(epoch, epochs, width)} loss {record['train_loss']:.3f}  "
            f"train {record['train_acc']:.3f}  val {record['val_acc']:.3f}  {per_epoch:.1f} s/epoch, "
            f"{time_left(elapsed_s, epoch, epochs)}")
