"""The demo flow: write the toy tables, read them back, and report where they are."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from schemas.rows import Reject, Sample
from tasks.demo import DemoCounts, check_counts, write_demo_tables
from tasks.table_inspect import human_bytes, summarise
from tasks.table_read import open_table


@task(name="write-demo-tables")
def write_demo_tables_task(tables_dir: Path, n_samples: int, seed: int, rows_per_shard: int) -> DemoCounts:
    return write_demo_tables(tables_dir, n_samples, seed, rows_per_shard)


@task(name="report-tables")
def report_task(counts: DemoCounts) -> str:
    check_counts(counts)
    lines = ["| table | rows | shards | size | path |", "| --- | ---: | ---: | ---: | --- |"]
    for path, model in ((counts.samples_path, Sample), (counts.rejects_path, Reject)):
        s = summarise(open_table(path, model))
        lines.append(f"| {s.table} | {s.num_rows} | {s.num_shards} | {human_bytes(s.bytes)} | `{s.path}` |")
    lines.append(f"\n{counts.inputs} inputs = {counts.rows} rows + {counts.rejects} rejects; "
                 f"{counts.rows_read} rows read back.")
    rejects = list(open_table(counts.rejects_path, Reject).iter_rows())
    if rejects:
        lines.append("\nRejected (broken on purpose, to show the rejects table):\n")
        lines += [f"- `{r.source}`: {r.reason}" for r in rejects]
    report = "\n".join(lines)
    create_markdown_artifact(markdown=report, key="demo-tables", description="Tables written by the demo")
    return report


@flow(name="demo", log_prints=True)
def demo(data_root: str = "afford-data", n_samples: int = 64, seed: int = 0, rows_per_shard: int = 16) -> str:
    """Write a small toy samples table (a few inputs broken on purpose) and its rejects, read them back."""
    counts = write_demo_tables_task(Path(data_root) / "tables", n_samples, seed, rows_per_shard)
    return report_task(counts)
