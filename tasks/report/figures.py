"""Each stage's figures as plain JSON data: what a run writes to `<data root>/reports/<stage>.json`, and all that
`render.py` (the Prefect artifacts, `afford report`, README's and BENCHMARKS' run tables) reads.

Only figures that a seeded run reproduces go here: counts, accuracies, metrics, the choices made. Wall-clock
times depend on the machine's load and are left out, so two runs with one seed write identical files.
No paths are stored, so the files do not depend on where the run was made.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from schemas.instruction import InstructionRow
from schemas.rows import Reject, Sample
from tasks.ingest.pipeline import IngestCounts, check_counts
from tasks.pseudo_label.confidence_filter import ClassStats, RuleReport
from tasks.pseudo_label.self_training import CycleRecord
from tasks.store.inspect import summarise
from tasks.store.read import open_table

# How many (object class, affordance) keys the instructions report quotes one instruction of.
INSTRUCTION_EXAMPLES = 12


def ingest_figures(counts: Sequence[IngestCounts]) -> dict[str, Any]:
    """Per dataset table: inputs = rows + rejects, shards and bytes; every ingest reject's reason (sorted: the
    datasets are ingested concurrently, so the rejects table's order is not the run's)."""
    check_counts(counts)
    datasets = []
    for c in counts:
        summary = summarise(open_table(c.table, Sample))
        datasets.append({"dataset": c.dataset, "inputs": c.inputs, "rows": c.rows, "rejects": c.rejects,
                         "shards": summary.num_shards, "bytes": summary.bytes})
    rejects = sorted(({"dataset": r.dataset, "reason": r.reason}
                      for r in open_table(counts[0].rejects_table, Reject).iter_rows() if r.stage == "ingest"),
                     key=lambda r: (r["dataset"], r["reason"]))
    return {"datasets": datasets, "rejects": rejects}


def classifier_figures(split_accuracy: dict[str, float], reports: dict[str, RuleReport], rule: str, reason: str,
                       stats: ClassStats | None, checkpoint_sha256: str) -> dict[str, Any]:
    """Cycle 0's classifier: accuracy per split, both confidence rules on the held-out test split (overall and per
    predicted class), the default rule and why, the class-conditional statistics with n per class."""
    return {"split_accuracy": split_accuracy, "rules": {name: asdict(r) for name, r in reports.items()},
            "rule": rule, "reason": reason, "checkpoint_sha256": checkpoint_sha256,
            "class_stats": None if stats is None else {
                "mean": stats.mean.tolist(), "std": stats.std.tolist(), "count": stats.count.tolist(),
                "fallback": stats.fallback.tolist(), "pooled_mean": stats.pooled_mean,
                "pooled_std": stats.pooled_std, "k": stats.k}}


def self_training_figures(classifier: dict[str, Any] | None, records: Sequence[CycleRecord],
                          origins: Mapping[str, int], pool: int) -> dict[str, Any]:
    """The cycles (coverage, acceptance, reviewed accuracy with its interval, gate) and where the final labels
    came from (`origins`: final labels per origin)."""
    counts = {o: int(origins.get(o, 0)) for o in ("validated", "relabelled", "low_confidence")}
    return {"classifier": classifier, "cycles": [r.as_dict() for r in records], "labelled": sum(origins.values()),
            "pool": pool, "origins": counts}


def instruction_figures(counts: Any, rows: Iterable[InstructionRow],
                        examples: int = INSTRUCTION_EXAMPLES) -> dict[str, Any]:
    """The stage's counts (InstructCounts) and one instruction per (object class, affordance) for the first
    `examples` keys in sample order."""
    chosen: dict[tuple[str, str], InstructionRow] = {}
    for row in rows:
        chosen.setdefault((row.object_class, row.affordance), row)
        if len(chosen) >= examples:
            break
    return {"counts": asdict(counts),
            "examples": [{"object_class": r.object_class, "affordance": r.affordance, "instruction": r.instruction,
                          "generator": r.generator, "fallback": r.fallback} for r in chosen.values()]}


def affordance_figures(metrics: dict[str, Any], n_train: int, n_test: int, trained: bool, checkpoint_sha256: str,
                       mapped: int, unlabelled: int, rejected: int) -> dict[str, Any]:
    """The map model's held-out metrics (overall, per object class, per action: metrics.json's numbers) and what
    inference did."""
    return {"metrics": metrics, "n_train": n_train, "n_test": n_test, "trained": trained,
            "checkpoint_sha256": checkpoint_sha256, "mapped": mapped, "unlabelled": unlabelled, "rejected": rejected}



def fit_mano_figures(provenance: dict[str, Any], summary: Any, usable_mm: float) -> dict[str, Any]:
    """`afford fit-mano` (a FitSummary): how many hands, the quantiles of mean and max error (mm) and of the contact
    IoU, how many fits are usable. A command of its own after the run, so it carries its own provenance; and a
    benchmark, so its wall time is kept (as `seconds`: the one timing in these files)."""
    return {"provenance": provenance, "hands": len(summary.sample_ids), "skipped_mano": summary.skipped_mano,
            "steps": summary.steps, "seconds": round(summary.seconds, 1),
            "mean_mm": summary.quantiles(summary.mean_mm), "max_mm": summary.quantiles(summary.max_mm),
            "contact_iou": summary.quantiles(summary.contact_iou), "usable_mm": usable_mm,
            "usable": sum(m <= usable_mm for m in summary.mean_mm)}
