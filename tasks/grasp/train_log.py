"""The training log: the per-step loss history as CSV, read back, and plotted."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from tasks.grasp.config import STAGES


def write_log(path: Path, history: list[dict[str, Any]]) -> Path:
    """The loss history as CSV (one row per logged step; columns: step, stage, loss, terms, elapsed_s), atomic."""
    columns = list(dict.fromkeys(k for record in history for k in record))
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns, restval="")
        writer.writeheader()
        writer.writerows(history)
    os.replace(tmp, path)
    return path


def read_log(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open() as handle:
        return [{k: (v if k == "stage" else float(v)) for k, v in row.items() if v != ""}
                for row in csv.DictReader(handle)]


def plot_losses(path: Path, history: list[dict[str, Any]]) -> Path:
    """One panel per stage: total loss (and each term) against the global step, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = [s for s in STAGES if any(r["stage"] == s for r in history)]
    figure, axes = plt.subplots(1, max(1, len(stages)), figsize=(4.2 * max(1, len(stages)), 3.2), dpi=80,
                                squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=False):
        records = [r for r in history if r["stage"] == stage]
        terms = [k for k in records[0] if k not in ("step", "stage", "elapsed_s")]
        for term in terms:
            values = [max(r[term], 1e-8) for r in records]
            ax.plot([r["step"] for r in records], values, label=term, lw=2 if term == "loss" else 1)
        ax.set_yscale("log")
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path

