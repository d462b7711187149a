"""The demo's steps as plain functions: build toy inputs, write them with rejects, read them back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from schemas.manifest import Lineage
from schemas.rows import Reject, Sample
from tasks.table_read import open_table
from tasks.table_write import TableWriter, write_table
from tasks.toy_samples import STAGE_VERSION, corrupt, toy_samples

# Inputs the demo breaks on purpose, to show that bad rows land in the rejects table with a reason.
DEMO_CORRUPTIONS = {5: "nan_pose", 11: "points_shape", 17: "unknown_affordance"}


@dataclass(frozen=True)
class DemoCounts:
    inputs: int
    rows: int
    rejects: int
    rows_read: int
    samples_path: Path
    rejects_path: Path


def write_demo_tables(tables_dir: Path, n_samples: int, seed: int, rows_per_shard: int) -> DemoCounts:
    """Write `n_samples` toy inputs (a few deliberately broken) to tables_dir/{samples,rejects}."""
    inputs = toy_samples(n_samples, seed=seed)
    for index, how in DEMO_CORRUPTIONS.items():
        if index < len(inputs):
            inputs[index] = corrupt(inputs[index], how)
    lineage = Lineage(stage="demo", stage_version=STAGE_VERSION, params={"n_samples": n_samples, "seed": seed})
    samples_path, rejects_path = tables_dir / "samples", tables_dir / "rejects"
    with TableWriter(samples_path, Sample, lineage=lineage, on_invalid="collect",
                     rows_per_shard=rows_per_shard) as writer:
        writer.write(inputs)
    write_table(rejects_path, writer.rejects, Reject, lineage=lineage, rows_per_shard=rows_per_shard)
    rows_read = sum(1 for _ in open_table(samples_path, Sample).iter_rows())
    return DemoCounts(inputs=len(inputs), rows=writer.manifest.num_rows, rejects=len(writer.rejects),
                      rows_read=rows_read, samples_path=samples_path, rejects_path=rejects_path)


def check_counts(counts: DemoCounts) -> None:
    """The contract every stage keeps: input count = rows + rejects, and what was written reads back."""
    if counts.inputs != counts.rows + counts.rejects:
        raise RuntimeError(f"{counts.inputs} inputs but {counts.rows} rows + {counts.rejects} rejects")
    if counts.rows_read != counts.rows:
        raise RuntimeError(f"{counts.samples_path}: wrote {counts.rows} rows, read back {counts.rows_read}")
