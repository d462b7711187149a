"""The fit-mano figure: the error distribution, and the median and worst fits drawn over the dataset's hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tasks.fit_mano.stage import FitSummary


def fit_figure(summary: FitSummary, path: Path) -> Path:
    """Histogram of mean and max error per hand, then the median and the worst fit (by mean error) from one view:
    the dataset's hand vertices in grey, the fitted MANO vertices coloured by their distance to them (mm)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.spatial import cKDTree

    order = np.argsort(summary.mean_mm)
    picks = {"median fit": summary.sample_ids[order[len(order) // 2]], "worst fit": summary.sample_ids[order[-1]]}
    fig = plt.figure(figsize=(13, 4.2))
    ax = fig.add_subplot(1, 3, 1)
    bins = np.linspace(0, max(max(summary.max_mm), 1.0), 30)
    ax.hist(summary.mean_mm, bins=bins, alpha=0.8, label="mean per hand")
    ax.hist(summary.max_mm, bins=bins, alpha=0.5, label="max per hand")
    ax.set_xlabel("distance, hand-mesh vertex to fitted MANO surface (mm)")
    ax.set_ylabel("hands")
    ax.set_title(f"{len(summary.sample_ids)} hands fitted")
    ax.legend()
    for k, (title, sample_id) in enumerate(picks.items(), start=2):
        row, fit = summary.fits[sample_id]
        target, verts = np.asarray(row.hand_verts), fit.vertices
        ax = fig.add_subplot(1, 3, k, projection="3d")
        ax.scatter(*target.T, s=2, c="0.6", label=row.hand_model)
        distance = cKDTree(target).query(verts)[0] * 1000
        points = ax.scatter(*verts.T, s=3, c=distance, cmap="viridis", vmin=0, vmax=max(10.0, distance.max()),
                            label="MANO fit")
        fig.colorbar(points, ax=ax, shrink=0.6, label="mm to the dataset's hand")
        ax.set_title(f"{title}: {sample_id}\nmean {fit.mean_error_mm:.1f} mm, max {fit.max_error_mm:.1f} mm",
                     fontsize=9)
        ax.set_axis_off()
        span = np.ptp(target, axis=0).max() / 2
        centre = target.mean(0)
        for axis, c in zip("xyz", centre, strict=True):
            getattr(ax, f"set_{axis}lim")(c - span, c + span)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
