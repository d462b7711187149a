"""`afford fit-mano`: fit MANO to every non-MANO hand of a samples table and write the fits.

The fit table goes beside the samples table (`<tables>/mano_fits`, upserted by sample_id); the summary carries
the error distribution and, per hand, how far the fitted MANO hand touches the object where the dataset's hand
does (contact IoU, below). tasks/fit_mano/figure.py draws it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from models.mano_pickle import ManoParams
from schemas.data_root import DataRoot
from schemas.manifest import Lineage
from schemas.mano_fit import ManoFitRow
from schemas.rows import Sample
from tasks.fit_mano.fit import ManoFit, fit_mano
from tasks.grasp.evaluation.contact import CONTACT_THRESHOLD_M
from tasks.store.read import open_table
from tasks.store.write import TableWriter

STAGE_VERSION = "fit-mano-1"


@dataclass
class FitSummary:
    """Per fitted sample: ids, mean and max error (mm), contact IoU of the fit against the dataset's hand."""

    table: Path
    sample_ids: list[str] = field(default_factory=list)
    mean_mm: list[float] = field(default_factory=list)
    max_mm: list[float] = field(default_factory=list)
    contact_iou: list[float] = field(default_factory=list)
    skipped_mano: int = 0
    steps: int = 0
    seconds: float = 0.0
    fits: dict[str, tuple[Sample, ManoFit]] = field(default_factory=dict, repr=False)

    def quantiles(self, values: list[float]) -> dict[str, float]:
        array = np.asarray(values, np.float64)
        return {q: float(np.quantile(array, p)) for q, p in (("min", 0), ("median", 0.5), ("p90", 0.9), ("max", 1))}


def contact_iou(object_points: np.ndarray, hand_a: np.ndarray, hand_b: np.ndarray,
                distance: float = CONTACT_THRESHOLD_M) -> float:
    """IoU of the object points within `distance` of hand a and of hand b (1.0 when neither touches)."""
    near_a = cKDTree(hand_a).query(object_points)[0] <= distance
    near_b = cKDTree(hand_b).query(object_points)[0] <= distance
    union = (near_a | near_b).sum()
    return float((near_a & near_b).sum() / union) if union else 1.0


def fit_table(samples: Path, params: ManoParams, out: Path | None = None, steps: int = 300,
              progress: Callable[[int], None] | None = None) -> FitSummary:
    """Fit every row of `samples` whose hand is not MANO's; write the fits to `out` (default: mano_fits beside)."""
    start = time.perf_counter()
    out = DataRoot.beside(samples, "mano_fits") if out is None else out
    rows, skipped = [], 0
    for row in open_table(samples, Sample).iter_rows():
        if row.hand_model == "mano":
            skipped += 1
        else:
            rows.append(row)
    summary = FitSummary(table=out, skipped_mano=skipped, steps=steps)
    if not rows:  # nothing to fit: no table version is written
        return summary
    fits = fit_mano([np.asarray(r.hand_verts, np.float64) for r in rows], params, steps=steps, progress=progress)
    lineage = Lineage(stage="fit-mano", stage_version=STAGE_VERSION, params={"steps": steps})
    with TableWriter(out, ManoFitRow, lineage=lineage) as writer:
        for row, fit in zip(rows, fits, strict=True):
            summary.sample_ids.append(row.sample_id)
            summary.mean_mm.append(fit.mean_error_mm)
            summary.max_mm.append(fit.max_error_mm)
            summary.contact_iou.append(contact_iou(np.asarray(row.object_points, np.float64),
                                                   np.asarray(row.hand_verts, np.float64), fit.vertices))
            summary.fits[row.sample_id] = (row, fit)
            writer.write([ManoFitRow(sample_id=row.sample_id, stage_version=STAGE_VERSION, dataset=row.dataset,
                                     hand_model=row.hand_model, hand_pose=fit.pose, hand_betas=fit.betas,
                                     hand_trans=fit.trans, mean_error_mm=fit.mean_error_mm,
                                     max_error_mm=fit.max_error_mm, steps=fit.steps)])
    summary.seconds = time.perf_counter() - start
    return summary

